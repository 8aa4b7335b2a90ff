"""What every Land cover algorithm shares: metadata, help, feedback and error translation.

An algorithm subclass declares its ids, description and notes as class constants, its parameters
(each with its help) in ``initAlgorithm`` and implements ``run_step`` (``run`` is QGIS's own); this base turns engine errors into
``QgsProcessingException`` (naming the parameter) and QGIS feedback into a ``Monitor``.
"""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterNumber,
)
from qgis.PyQt.QtCore import QCoreApplication, QUrl
from qgis.PyQt.QtGui import QIcon

from ..lc_plugin.core.errors import ARGUMENT, Cancelled, LandCoverError
from ..lc_plugin.core.monitor import Monitor
from . import faults
from .help_text import algorithm_help

PLUGIN_DIR = os.path.dirname(os.path.dirname(__file__))
ICON_PATH = os.path.join(PLUGIN_DIR, "resources", "icon.svg")
ICONS_DIR = os.path.join(PLUGIN_DIR, "resources", "icons")
HELP_FILE = os.path.join(PLUGIN_DIR, "resources", "help", "index.html")  # scripts/build_help.py writes it

# Numbered so the toolbox (which sorts groups by name) lists them in the order of the workflow.
GROUPS = {
    "data": "1 Data",
    "preparation": "2 Preparation",
    "training": "3 Training",
    "classification": "4 Classification",
    "validation": "5 Validation",
}


class LandCoverAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses set ALG_ID, DISPLAY_NAME, GROUP_ID, HELP, NOTES and implement run_step()."""

    ALG_ID = ""
    DISPLAY_NAME = ""
    GROUP_ID = ""
    HELP = ""  # what the algorithm does; the parameters' help and defaults come from their definitions
    NOTES = ""  # shown after the parameters: what holds for several of them, packages needed, a qgis_process example
    # Engine arguments whose parameter id here is not their upper-case form (see ``parameter_for``).
    ARGUMENTS: dict[str, str] = {}

    def __init__(self) -> None:
        super().__init__()
        self._post_processors: list = []  # QGIS holds them weakly; keep them alive here

    def name(self) -> str:
        return self.ALG_ID

    def displayName(self) -> str:  # noqa: N802
        return self.tr(self.DISPLAY_NAME)

    def group(self) -> str:
        return self.tr(GROUPS[self.GROUP_ID])

    def groupId(self) -> str:  # noqa: N802
        return self.GROUP_ID

    def shortHelpString(self) -> str:  # noqa: N802
        """Generated (help_text.algorithm_help): description, each parameter with its help and default, notes."""
        return algorithm_help(self, self.tr(self.HELP), self.tr(self.NOTES))

    def helpUrl(self) -> str:  # noqa: N802
        """The help shipped inside the plugin (no public homepage yet), at this algorithm's section."""
        url = QUrl.fromLocalFile(HELP_FILE)
        url.setFragment(f"alg-{self.ALG_ID}")
        return url.toString()

    def svgIconPath(self) -> str:  # noqa: N802
        path = os.path.join(ICONS_DIR, f"{self.ALG_ID}.svg")
        return path if os.path.isfile(path) else ICON_PATH

    def icon(self) -> QIcon:
        return QIcon(self.svgIconPath())

    def addParameter(self, definition, createOutput: bool = True, *, help: str = "", advanced: bool = False) -> bool:  # noqa: N802, N803 (QGIS's names)
        """``help``: the parameter's help, stated here once (the dialog's tooltip and its line in shortHelpString);
        ``advanced``: shown under the dialog's Advanced parameters.
        Decimal numbers show as 0.25, not 0.250000: the widget's decimals follow the default value."""
        if help:
            definition.setHelp(self.tr(help))
        if advanced:
            definition.setFlags(definition.flags() | definition.FlagAdvanced)
        if isinstance(definition, QgsProcessingParameterNumber) and definition.dataType() == QgsProcessingParameterNumber.Double:
            metadata = definition.metadata()
            wrapper = dict(metadata.get("widget_wrapper") or {})
            if "decimals" not in wrapper:
                wrapper["decimals"] = decimals_for(definition.defaultValue())
                metadata["widget_wrapper"] = wrapper
                definition.setMetadata(metadata)
        return super().addParameter(definition, createOutput)

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("landcover", text)

    def createInstance(self) -> LandCoverAlgorithm:  # noqa: N802
        return type(self)()

    def checkParameterValues(self, parameters, context: QgsProcessingContext):  # noqa: N802
        """QGIS's checks, preceded by ours for what QGIS words vaguely: a number out of range
        (QGIS: "Incorrect parameter value") and a raster file that is empty, not a raster or
        truncated (QGIS: "not found"). Inputs are opened without writing GDAL's .aux.xml beside them."""
        with faults.reading_inputs():
            problem = (
                faults.check_numbers(self, parameters)
                or faults.check_raster_files(self, parameters)
                or faults.check_files(self, parameters)
            )
            if problem:
                return False, faults.report_failure(self, problem, printed_by_qgis=True)
            return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict:  # noqa: N802
        """Run the step; SIGTERM/SIGINT cancel it (outputs removed, exit code 1) and every failure
        becomes one clear QgsProcessingException that names the parameter, never a secret."""
        faults.engine_defaults()
        monitor = Monitor(feedback.setProgress, feedback.isCanceled, feedback.pushInfo)
        finished = False
        with faults.stop_on_signals(feedback) as caught:
            try:
                result = self.run_step(parameters, context, feedback, monitor)
                finished = True
                if caught:  # the signal came after the last cancel check: the exit code still says stopped
                    raise Cancelled(caught[0])
            except LandCoverError as exc:
                raise QgsProcessingException(faults.report_failure(self, self.engine_message(exc, parameters))) from None
            except Cancelled as exc:
                who = f"Stopped by {caught[0]}" if caught else "Cancelled by the user"
                what = "the outputs were already written" if finished else "no output was written"
                raise QgsProcessingException(faults.report_failure(self, f"{who}; {what}.")) from exc
            except QgsProcessingException as exc:  # raised by an algorithm's own parameter checks
                raise QgsProcessingException(faults.report_failure(self, str(exc))) from None
            except faults.IO_ERRORS as exc:
                message = faults.describe_io_error(self, parameters, exc)
                raise QgsProcessingException(faults.report_failure(self, message)) from None
        self.style_outputs(result, context)
        return result

    def parameter_for(self, argument: str | None) -> str | None:
        """This algorithm's parameter id for an engine argument: ``ARGUMENTS`` where the names differ,
        else the argument's upper-case form when that is a parameter here, else the argument itself."""
        if argument is None:
            return None
        if argument in self.ARGUMENTS:
            return self.ARGUMENTS[argument]
        upper = argument.upper()
        return upper if self.parameterDefinition(upper) is not None else argument

    def engine_message(self, exc: LandCoverError, parameters: dict) -> str:
        """An engine error in this algorithm's words: its parameter id where the message says
        ``{argument}``, else in front of the message (or the parameter whose file the message names)."""
        parameter = self.parameter_for(exc.argument) or faults.parameter_named_in(self, parameters, str(exc))
        if ARGUMENT in exc.template:
            return exc.render(parameter)
        return f"{parameter}: {exc}" if parameter else str(exc)

    def run_step(self, parameters, context: QgsProcessingContext, feedback: QgsProcessingFeedback, monitor: Monitor) -> dict:
        raise NotImplementedError

    # --- parameter helpers shared by the algorithms -------------------------------------------

    def parameter_error(self, name: str, message: str) -> QgsProcessingException:
        return QgsProcessingException(f"{name}: {message}")

    def raster_path(self, parameters, name: str, context: QgsProcessingContext) -> str:
        """Local file path of a raster parameter (the engine reads files, not QGIS layers)."""
        with faults.reading_inputs():
            layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, name))
        path = layer.source().split("|")[0]
        if not os.path.isfile(path):
            raise QgsProcessingException(f"{name}: {layer.name()} is not a local raster file ({path}).")
        return path

    def optional_raster_path(self, parameters, name: str, context: QgsProcessingContext) -> str | None:
        if self.parameterAsRasterLayer(parameters, name, context) is None:
            return None
        return self.raster_path(parameters, name, context)

    def raster_paths(self, parameters, name: str, context: QgsProcessingContext, required: bool = True) -> list[str]:
        with faults.reading_inputs():
            layers = self.parameterAsLayerList(parameters, name, context)
        paths = [layer.source().split("|")[0] for layer in layers]
        if not paths and required:
            raise QgsProcessingException(f"{name}: choose at least one raster.")
        return paths

    def vector_path(self, parameters, name: str, context: QgsProcessingContext, feedback) -> tuple[str, str | None]:
        """A vector parameter as (file path, layer name) that OGR can open (a temp copy if needed)."""
        path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(parameters, name, context, ["gpkg", "shp", "geojson"], "gpkg", feedback)
        if not path:
            raise QgsProcessingException(self.invalidSourceError(parameters, name))
        return path, (layer_name or None)

    def output_path(self, parameters, name: str, context: QgsProcessingContext, extensions: tuple[str, ...]) -> str:
        """Destination path, checked to carry an extension the engine writes."""
        path = self.parameterAsOutputLayer(parameters, name, context) or self.parameterAsFileOutput(parameters, name, context)
        if path and not path.lower().endswith(extensions):
            raise QgsProcessingException(f"{name}: the output must be a {' or '.join(extensions)} file, not {path}.")
        return path

    def style_as_classes(self, context: QgsProcessingContext, path: str, **placement) -> None:
        """Load a class raster with the class colours and names once the algorithm finishes."""
        self.style_output(context, path, **placement)

    def style_output(self, context: QgsProcessingContext, path: str, date=None, **placement) -> None:
        """Style ``path`` from its LC_KIND metadata when Processing loads it (GUI, runAndLoadResults);
        ``placement``: LayerStyler's hidden/below/above."""
        from .styling import LayerStyler

        if context.willLoadLayerOnCompletion(path):
            styler = LayerStyler(path, date, **placement)
            self._post_processors.append(styler)
            context.layerToLoadOnCompletionDetails(path).setPostProcessor(styler)

    def load_output(self, context: QgsProcessingContext, path: str, name: str, output_name: str, date=None) -> None:
        """Ask Processing to load ``path`` on completion (ignored by processing.run and qgis_process;
        skipped for a step of a model, whose intermediate files are not the user's results)."""
        if context.project() is None or context.willLoadLayerOnCompletion(path) or _in_model(context):
            return
        details = QgsProcessingContext.LayerDetails(name, context.project(), output_name)
        context.addLayerToLoadOnCompletion(path, details)
        self.style_output(context, path, date)

    def style_outputs(self, result: dict, context: QgsProcessingContext) -> None:
        """Every raster output that will be loaded gets the style of its kind (see styling.py)."""
        for key, description in EXTRA_LAYER_OUTPUTS.get(self.ALG_ID, ()):
            path = result.get(key) if isinstance(result, dict) else None
            if isinstance(path, str) and os.path.isfile(path) and _gui_running():
                self.load_output(context, path, self.tr(description), key)
        for value in (result or {}).values():
            for path in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(path, str) and path.lower().endswith(RASTER_EXTENSIONS) and context.willLoadLayerOnCompletion(path):
                    if context.layerToLoadOnCompletionDetails(path).postProcessor() is None:
                        self.style_output(context, path)


def decimals_for(default) -> int:
    """Decimals for a number widget: 1 for a whole default (80.0 %), else those of the default but at least 2
    (so 0.05 can be typed) and at most 4."""
    try:
        digits = len(f"{float(default):.6f}".rstrip("0").split(".")[1])
    except (TypeError, ValueError):
        return 2
    return 1 if digits == 0 else min(4, max(2, digits))


RASTER_EXTENSIONS = (".tif", ".tiff", ".vrt")

# Outputs that are not destination parameters (so Processing would not load them) but that a
# user running the dialog expects on the canvas: (output key, layer name) per algorithm id.
EXTRA_LAYER_OUTPUTS = {"download": (("OUTPUT", "Time stack"),)}


def _in_model(context: QgsProcessingContext) -> bool:
    """True for a step run by a model: models add their "Model" scope to the step's expression context."""
    scopes = context.expressionContext()
    names = {scopes.scope(i).name() for i in range(scopes.scopeCount())}
    return bool(names & {"Model", "algorithm_inputs"})


def _gui_running() -> bool:
    """True inside desktop QGIS (qgis_process and plain scripts have no iface)."""
    try:
        from qgis.utils import iface
    except ImportError:
        return False
    return iface is not None
