"""An algorithm's help text, generated from its parameter definitions so each default is stated once.

Each parameter carries its own help (``setHelp``, also the dialog's tooltip); the text shown by
``shortHelpString`` and shipped in resources/help is the algorithm's description, then one line per
parameter (label, id, flags, default value read from the definition, choices, help), then the outputs
that are not parameters, then the notes (which end with a qgis_process example).
"""

from __future__ import annotations

import html

from qgis.core import QgsProcessingParameterDefinition
from qgis.PyQt.QtCore import QDate, QDateTime

ADVANCED = QgsProcessingParameterDefinition.FlagAdvanced
OPTIONAL = QgsProcessingParameterDefinition.FlagOptional


def algorithm_help(algorithm, description: str, notes: str) -> str:
    """The whole help text: an HTML fragment (the dialog's help panel, a section of resources/help), lines
    separated by <br>, an empty line between description, parameters and notes."""
    parameters = [parameter_line(definition) for definition in algorithm.parameterDefinitions()]
    outputs = other_outputs(algorithm)
    if outputs:
        parameters.append("Also returned: " + ", ".join(outputs) + ".")
    parts = [description, "<br>".join(parameters), notes]
    return "<br><br>".join(part for part in parts if part)


def parameter_line(definition) -> str:
    """<b>Label</b> (ID, optional, advanced, default …; choices …): help."""
    facts = [definition.name()]
    flags = definition.flags()
    if flags & OPTIONAL:
        facts.append("optional")
    if flags & ADVANCED:
        facts.append("advanced")
    default = default_text(definition)
    if default is not None:
        facts.append(f"default {default}")
    head = f"<b>{html.escape(definition.description())}</b> ({', '.join(facts)}{choices_text(definition)})"
    return f"{head}: {definition.help()}" if definition.help() else head


def default_text(definition) -> str | None:
    """The default as a user types or reads it; None where there is none (or for an output)."""
    value = definition.defaultValue()
    if definition.isDestination() or value is None or value == "" or value == []:
        return None
    if definition.type() == "enum":
        return enum_text(definition, value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return number_text(value)
    if isinstance(value, (QDate, QDateTime)):
        return value.toString("yyyy-MM-dd") if value.isValid() else None
    return f"<code>{html.escape(str(value))}</code>"


def number_text(value: float) -> str:
    """10.0 → 10, 0.25 → 0.25: as short as the value allows."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def enum_text(definition, value) -> str:
    """An enum default by index and label (0 = auto), or by its value for enums of static strings (bands)."""
    values = value if isinstance(value, list) else [value]
    if definition.usesStaticStrings():
        return ",".join(str(v) for v in values)
    options = definition.options()
    return ", ".join(f"{int(v)} = {html.escape(options[int(v)])}" for v in values)


def choices_text(definition) -> str:
    """The choices of an index enum as qgis_process takes them (0 = auto, 1 = …); empty otherwise."""
    if definition.type() != "enum" or definition.usesStaticStrings():
        return ""
    choices = ", ".join(f"{i} = {html.escape(option)}" for i, option in enumerate(definition.options()))
    return f"; {choices}"


def other_outputs(algorithm) -> list[str]:
    """Outputs that are not destination parameters (numbers, reports): <b>Label</b> (ID)."""
    names = {definition.name() for definition in algorithm.parameterDefinitions()}
    return [f"<b>{html.escape(output.description())}</b> ({output.name()})" for output in algorithm.outputDefinitions() if output.name() not in names]
