"""Every algorithm is documented where users look: help text naming each parameter, icon, group, help URL."""

from __future__ import annotations

import html
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
HELP_FILE = README.parent / "resources" / "help" / "index.html"
ALGORITHM_IDS = [
    "creategrid",
    "download",
    "importproducts",
    "buildstack",
    "downloadolci",
    "cloudmasks",
    "filterscenes",
    "interpolate",
    "rasterizereference",
    "train",
    "exportdataset",
    "trainsegmentation",
    "classify",
    "sieve",
    "reclassify",
    "accuracyreport",
    "mosaic",
    "splitstack",
    "validcount",
    "sampledesign",
    "areaestimate",
    "rungrid",
]


def _algorithms():
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry().providerById("landcover").algorithms()


def test_every_parameter_is_documented_in_the_help(qgis_app):
    algorithms = _algorithms()
    assert set(ALGORITHM_IDS) <= {a.name() for a in algorithms}  # other algorithms are checked the same way
    missing = []
    for algorithm in algorithms:
        help_text = algorithm.shortHelpString()
        assert "Example" in help_text and "qgis_process run landcover:" + algorithm.name() in help_text, algorithm.name()
        for parameter in algorithm.parameterDefinitions():
            if not re.search(rf"\b{re.escape(parameter.name())}\b", help_text):
                missing.append(f"{algorithm.name()}:{parameter.name()}")
    assert not missing, f"parameters missing from shortHelpString: {missing}"


def _parameter_line(algorithm, parameter) -> str:
    """The parameter's line of the generated help: from its bold label to the next line break."""
    help_text = algorithm.shortHelpString()
    start = help_text.index(f"<b>{html.escape(parameter.description())}</b> ({parameter.name()}")
    end = help_text.find("<br>", start)
    return help_text[start : end if end >= 0 else None]


def _shown_default(parameter, line: str):
    """The default the line states, read back as the definition holds it (None when it states none)."""
    if parameter.type() == "enum" and not parameter.usesStaticStrings():
        found = re.search(r"default (\d+) = ", line)
        return found and int(found.group(1))
    found = re.search(r"default (<code>.*?</code>|[^ ;,)]+(?:,[^ ;,)]+)*)", line)
    if found is None:
        return None
    text = found.group(1)
    if parameter.type() == "boolean":
        return {"yes": True, "no": False}[text]
    if parameter.type() == "number":
        return float(text)
    if parameter.type() == "enum":  # static strings (bands): comma-separated values
        return text.split(",")
    return html.unescape(text.removeprefix("<code>").removesuffix("</code>"))


def test_each_parameter_has_help_and_the_help_text_shows_its_default_as_defined(qgis_app):
    """Help is stated once, on the definition (setHelp: the dialog's tooltip); the algorithm's help text carries it
    with the default read from the definition, so the two cannot disagree."""
    checked = 0
    for algorithm in _algorithms():
        for parameter in algorithm.parameterDefinitions():
            where = f"{algorithm.name()}:{parameter.name()}"
            assert len(parameter.help()) > 10, where
            line = _parameter_line(algorithm, parameter)
            assert line.endswith(parameter.help()), where
            facts = line.split("</b> (", 1)[1].split("): ", 1)[0]
            flags = re.match(rf"{parameter.name()}(, optional)?(, advanced)?", facts)
            assert bool(flags.group(1)) == bool(parameter.flags() & parameter.FlagOptional), where
            assert bool(flags.group(2)) == bool(parameter.flags() & parameter.FlagAdvanced), where
            default = parameter.defaultValue()
            if parameter.isDestination() or default in (None, "", []):
                assert ", default " not in facts, where
                continue
            shown = _shown_default(parameter, line)
            if parameter.type() == "number":
                default = float(default)
            elif parameter.type() == "enum" and not parameter.usesStaticStrings():
                default = int(default)
                assert f"{default} = {html.escape(parameter.options()[default])}" in line, where
            assert shown == default, f"{where}: the help says {shown!r}, the definition {default!r}"
            checked += 1
    assert checked > 80


def test_a_default_changed_in_the_definition_changes_the_help(qgis_app):
    from qgis.core import QgsApplication

    train = QgsApplication.processingRegistry().algorithmById("landcover:train").create()
    assert "(SAMPLES_PER_CLASS, default 5000)" in train.shortHelpString()
    assert "(SPLIT, default 2 = block; 0 = pixel, 1 = patch, 2 = block)" in train.shortHelpString()
    train.parameterDefinition("SAMPLES_PER_CLASS").setDefaultValue(1234)
    train.parameterDefinition("SPLIT").setDefaultValue(1)
    assert "(SAMPLES_PER_CLASS, default 1234)" in train.shortHelpString() and "5000" not in train.shortHelpString()
    assert "(SPLIT, default 1 = patch; " in train.shortHelpString()


def test_no_default_value_is_repeated_by_hand(qgis_app):
    """The hand-written parts (description, notes, each parameter's help) never state a default value."""
    by_hand = re.compile(r"default[^.;<]{0,15}?\b\d")
    for algorithm in _algorithms():
        texts = [algorithm.HELP, algorithm.NOTES] + [p.help() for p in algorithm.parameterDefinitions()]
        for text in texts:
            assert not by_hand.search(text), f"{algorithm.name()}: {by_hand.search(text).group(0)!r} in {text[:80]!r}"


def test_icon_group_and_help_url_point_somewhere_real(qgis_app):
    """Groups numbered in workflow order, one icon per algorithm, Help opening the page shipped in the plugin."""
    from landcover.algorithms.base import GROUPS
    from qgis.PyQt.QtCore import QUrl

    assert sorted(GROUPS.values()) == list(GROUPS.values()) == ["1 Data", "2 Preparation", "3 Training", "4 Classification", "5 Validation"]
    page = HELP_FILE.read_text(encoding="utf-8")
    icons = set()
    for algorithm in _algorithms():
        assert not algorithm.icon().isNull(), algorithm.name()
        icons.add(algorithm.svgIconPath())
        assert algorithm.group() == GROUPS[algorithm.groupId()] and "Land cover" not in algorithm.group(), algorithm.name()
        url = QUrl(algorithm.helpUrl())
        assert url.isLocalFile() and Path(url.toLocalFile()).samefile(HELP_FILE), url
        assert f'id="{url.fragment()}"' in page, f"{algorithm.name()}: the help page has no section {url.fragment()}"
    assert len(icons) == len(_algorithms()) and all(Path(p).parent.name == "icons" for p in icons)


def test_shipped_help_page_is_current(qgis_app):
    """resources/help/index.html is what scripts/build_help.py makes of today's help texts (`make help`)."""
    import importlib.util

    from landcover.algorithms.base import GROUPS

    spec = importlib.util.spec_from_file_location("build_help", HELP_FILE.parents[2] / "scripts" / "build_help.py")
    build_help = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_help)
    assert HELP_FILE.read_text(encoding="utf-8") == build_help.help_html(_algorithms(), GROUPS), "run make help"


def test_dialog_defaults_need_only_the_required_inputs(qgis_app):
    """Every optional or advanced parameter has a default (or is optional), so a dialog run with only
    the required inputs is valid; advanced knobs are flagged advanced."""
    from qgis.core import QgsProcessingParameterDefinition

    advanced = QgsProcessingParameterDefinition.FlagAdvanced
    optional = QgsProcessingParameterDefinition.FlagOptional
    for algorithm in _algorithms():
        for parameter in algorithm.parameterDefinitions():
            if parameter.flags() & advanced:
                assert parameter.defaultValue() is not None or parameter.flags() & optional, f"{algorithm.name()}:{parameter.name()}"
    by_name = {a.name(): a for a in _algorithms()}
    flagged = {(alg, p.name()) for alg, a in by_name.items() for p in a.parameterDefinitions() if p.flags() & advanced}
    for expected in [
        ("train", "SEED"),
        ("train", "N_ESTIMATORS"),
        ("classify", "BLOCK_ROWS"),
        ("cloudmasks", "THRESHOLD"),
        ("download", "COLLECTION"),
        ("creategrid", "BUFFER"),
    ]:
        assert expected in flagged, expected


def test_metadata_is_complete_for_the_plugin_repository():
    import configparser

    parser = configparser.ConfigParser()
    parser.read(README.parent / "metadata.txt", encoding="utf-8")
    general = parser["general"]
    for key in (
        "name",
        "qgisMinimumVersion",
        "description",
        "about",
        "version",
        "author",
        "tags",
        "icon",
        "changelog",
        "hasProcessingProvider",
    ):
        assert general.get(key, "").strip(), key
    assert general["qgisMinimumVersion"] == "3.22"
    assert (README.parent / general["icon"]).is_file()
    # no made-up addresses: no homepage, tracker or e-mail until real ones exist (help ships in resources/help)
    text = (README.parent / "metadata.txt").read_text(encoding="utf-8")
    assert "example.org" not in text and "github.com/lc-plugin" not in text
    assert not {"email", "homepage", "tracker", "repository"} & set(general)


def test_only_the_data_itself_is_required(qgis_app):
    """A dialog run needs only the inputs that are data (layers, files, fields) and the period to download:
    every required number, choice, flag or text has a default."""
    from qgis.core import QgsProcessingParameterDefinition

    optional = QgsProcessingParameterDefinition.FlagOptional
    allowed = {("download", "START_DATE"), ("download", "END_DATE")}
    missing = []
    for algorithm in _algorithms():
        for parameter in algorithm.parameterDefinitions():
            if parameter.isDestination() or parameter.flags() & optional:
                continue
            if parameter.type() in ("number", "enum", "boolean", "string", "distance") and parameter.defaultValue() is None:
                if (algorithm.name(), parameter.name()) not in allowed:
                    missing.append(f"{algorithm.name()}:{parameter.name()}")
    assert not missing, f"required parameters without a default: {missing}"
