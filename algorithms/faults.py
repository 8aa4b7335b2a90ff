"""How faults reach the user: one clear message per failure, naming the parameter, never a secret.

Why a module of its own: QGIS words some faults vaguely ("Incorrect parameter value for
STEP_DAYS", "not found" for a file that exists but is not a raster), prints an algorithm's error
three times in ``qgis_process`` (its message log has two console listeners, then its feedback
prints "ERROR:"), writes GDAL ``.aux.xml`` statistics beside the user's inputs when it opens them,
and lets SIGTERM/SIGINT kill a run without cleaning up. ``base.LandCoverAlgorithm`` calls these
helpers; the algorithms themselves stay unaware of them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator

import rasterio.errors
from osgeo import gdal
from qgis.core import (
    QgsApplication,
    QgsProcessing,
    QgsProcessingFeedback,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..lc_plugin.core.redaction import redact_text

IO_ERRORS = (OSError, rasterio.errors.RasterioError)
_NO_LIMIT = 1e300  # QGIS's "no minimum/maximum" is ±DBL_MAX


# --- inputs ------------------------------------------------------------------------------------


@contextlib.contextmanager
def reading_inputs() -> Iterator[None]:
    """Open the user's rasters without writing PAM ``.aux.xml`` files beside them (QGIS computes
    band statistics when it loads a layer) and without GDAL's own error lines on stderr (our
    message says what is wrong). Thread-local, so a run in another thread is not affected."""
    previous = gdal.GetThreadLocalConfigOption("GDAL_PAM_ENABLED", None)
    gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO")
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        yield
    finally:
        gdal.PopErrorHandler()
        gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", previous)


_HEADLESS: list[str] = []  # what headless_defaults changed, for engine_defaults to undo


def headless_defaults() -> None:
    """For a ``qgis_process run landcover:…``: QGIS loads the input layers (computing band statistics
    and writing them to ``.aux.xml`` files beside the user's rasters, printing GDAL's complaints
    about constant bands) before any code of ours runs, so PAM and GDAL's stderr lines are turned
    off from the plugin's start until the algorithm runs (``engine_defaults``), unless the user set
    GDAL_PAM_ENABLED. Other runs of qgis_process are untouched."""
    arguments = _qgis_process_arguments()
    if "run" not in arguments or not any(a.startswith("landcover:") for a in arguments) or _HEADLESS:
        return
    if gdal.GetConfigOption("GDAL_PAM_ENABLED") is None:
        gdal.SetConfigOption("GDAL_PAM_ENABLED", "NO")
        _HEADLESS.append("pam")
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    _HEADLESS.append("quiet")


def engine_defaults() -> None:
    """Undo ``headless_defaults`` once the layers are loaded: the engine reads with PAM, which some
    rasters need (georeferencing or no-data kept in a ``.aux.xml``, e.g. converted JPEG 2000 bands)."""
    if "pam" in _HEADLESS:
        gdal.SetConfigOption("GDAL_PAM_ENABLED", None)
    if "quiet" in _HEADLESS:
        gdal.PopErrorHandler()
    _HEADLESS.clear()


def _qgis_process_arguments() -> list[str]:
    """The command line when this process is qgis_process, else []."""
    arguments = QCoreApplication.arguments() if QCoreApplication.instance() is not None else []
    return arguments if arguments and os.path.basename(arguments[0]).startswith("qgis_process") else []


def check_numbers(algorithm, parameters: dict) -> str | None:
    """The first number parameter outside its range, as "NAME: value …; expected …", else None."""
    for definition in algorithm.parameterDefinitions():
        name = definition.name()
        value = parameters.get(name)
        if not isinstance(definition, QgsProcessingParameterNumber) or value is None or value == "":
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            if not isinstance(value, (str, int, float)):
                continue  # an expression or a model input: QGIS evaluates it
            return f"{name}: {value!r} is not a number; expected {_expected(definition)}."
        integer = definition.dataType() == QgsProcessingParameterNumber.Integer
        low, high = definition.minimum(), definition.maximum()
        if not math.isfinite(number) or number < low or number > high or (integer and number != int(number)):
            return f"{name}: {value} is out of range; expected {_expected(definition)}."
    return None


def _expected(definition: QgsProcessingParameterNumber) -> str:
    kind = "a whole number" if definition.dataType() == QgsProcessingParameterNumber.Integer else "a number"
    low, high = definition.minimum(), definition.maximum()
    if low > -_NO_LIMIT and high < _NO_LIMIT:
        return f"{kind} from {low:g} to {high:g}"
    if low > -_NO_LIMIT:
        return f"{kind} of at least {low:g}"
    if high < _NO_LIMIT:
        return f"{kind} of at most {high:g}"
    return kind


def check_raster_files(algorithm, parameters: dict) -> str | None:
    """The first raster parameter given as a file that is missing, empty, not a raster or truncated."""
    for definition in algorithm.parameterDefinitions():
        if not isinstance(definition, (QgsProcessingParameterRasterLayer, QgsProcessingParameterMultipleLayers)):
            continue
        if isinstance(definition, QgsProcessingParameterMultipleLayers) and definition.layerType() != QgsProcessing.TypeRaster:
            continue
        value = parameters.get(definition.name())
        for item in value if isinstance(value, (list, tuple)) else [value]:
            problem = _raster_file_problem(item) if isinstance(item, str) else None
            if problem:
                return f"{definition.name()}: {problem}; expected a raster file ({definition.description()})."
    return None


def check_files(algorithm, parameters: dict) -> str | None:
    """The first file parameter with a fixed extension (a model, a parameters file) given a file
    that does not exist or has another extension (QGIS says only "Incorrect parameter value")."""
    for definition in algorithm.parameterDefinitions():
        value = parameters.get(definition.name())
        if not isinstance(definition, QgsProcessingParameterFile) or not isinstance(value, str) or not value or not definition.extension():
            continue
        extension = "." + definition.extension().lower()
        expected = f"expected a {extension} file ({definition.description()})"
        if not os.path.isfile(value):
            return f"{definition.name()}: {value} does not exist; {expected}."
        if not value.lower().endswith(extension):
            return f"{definition.name()}: {value} is not a {extension} file; {expected}."
    return None


def _raster_file_problem(value: str) -> str | None:
    path = value.split("|")[0]
    looks_like_path = os.sep in path or "/" in path or os.path.splitext(path)[1] != ""
    if not looks_like_path or path.startswith(("/vsi", "http://", "https://")):
        return None  # a layer id or name of the project, or a remote file: QGIS resolves it
    if not os.path.exists(path):
        return f"{path} does not exist"
    if os.path.isdir(path):
        return f"{path} is a folder"
    if os.path.getsize(path) == 0:
        return f"{path} is an empty file (0 bytes)"
    with reading_inputs():
        try:
            ds = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_READONLY)
        except RuntimeError:
            ds = None
        if ds is None:
            return f"{path} is not a raster GDAL can read"
        try:
            band = ds.GetRasterBand(ds.RasterCount)
            last = band.ReadRaster(ds.RasterXSize - 1, ds.RasterYSize - 1, 1, 1) if band is not None else None
        except RuntimeError:
            last = None
        if last is None:
            return f"{path} is truncated or damaged (its last pixels cannot be read)"
    return None


# --- failures ----------------------------------------------------------------------------------


def parameter_named_in(algorithm, parameters: dict, text: str) -> str | None:
    """The parameter whose file (or, for an output, whose folder) the message ``text`` names."""
    folders = []
    for definition in algorithm.parameterDefinitions():
        for path in _paths(parameters.get(definition.name())):
            if path in text:
                return definition.name()
            if definition.isDestination() and os.path.dirname(path) and os.path.dirname(path) in text:
                folders.append(definition.name())
    return folders[0] if folders else None


def _paths(value) -> list[str]:
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        value = value.sink.staticValue()
    values = value if isinstance(value, (list, tuple)) else [value]
    return [os.path.abspath(v.split("|")[0]) for v in values if isinstance(v, str) and len(v) > 1]


def describe_io_error(algorithm, parameters: dict, exc: BaseException) -> str:
    """A file-system or GDAL error as a sentence that names the parameter whose file it concerns."""
    filename = getattr(exc, "filename", None)
    text = f"{exc} {filename or ''}"
    name = parameter_named_in(algorithm, parameters, text)
    prefix = f"{name}: " if name else ""
    if isinstance(exc, OSError):
        what = f"{exc.strerror or type(exc).__name__}: {filename}" if filename else str(exc)
        return f"{prefix}{what}. Check that the file exists and can be read, and that the output folder can be written."
    return f"{prefix}GDAL could not read or write a file ({str(exc)[:300]}). Check that the input is a complete raster and the output folder can be written."


def report_failure(algorithm, message: str, *, printed_by_qgis: bool = False) -> str:
    """The message to raise, with secrets masked; in ``qgis_process`` it is printed once.

    qgis_process logs a failed algorithm's message to two console listeners of its message log
    and prints it again as "ERROR:"; muting the log (qgis_process exits after the run) leaves one
    line. With ``--json`` qgis_process prints nothing on stdout when a run fails, and no "ERROR:"
    line either, except for a failed parameter check (``printed_by_qgis``): the error goes to
    stdout as JSON and, unless qgis_process prints it, once to stderr.
    """
    message = redact_text(message)
    arguments = _qgis_process_arguments()
    if arguments:
        QgsApplication.messageLog().blockSignals(True)
        if "--json" in arguments:
            sys.stdout.write(json.dumps({"algorithm": algorithm.id(), "error": message}, ensure_ascii=False) + "\n")  # stdout is --json's
            sys.stdout.flush()
            if not printed_by_qgis:
                sys.stderr.write(message + "\n")
    return message


@contextlib.contextmanager
def stop_on_signals(feedback: QgsProcessingFeedback) -> Iterator[list[str]]:
    """While the block runs, SIGTERM and SIGINT cancel it (as the dialog's Cancel button does) and
    the signal's name is appended to the yielded list. Only where signals can be caught: on the
    main thread, outside desktop QGIS (whose dialogs run algorithms on other threads)."""
    from .base import _gui_running  # base imports this module

    caught: list[str] = []
    if threading.current_thread() is not threading.main_thread() or _gui_running():
        yield caught
        return

    def stop(signum, _frame) -> None:
        caught.append(signal.Signals(signum).name)
        feedback.cancel()

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, stop)
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
