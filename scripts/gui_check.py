"""Runs inside desktop QGIS (``qgis --code scripts/gui_check.py``): the GUI check of the plugin.

Opens the Processing toolbox; opens the shipped model in the graphical modeler and records whether
it is valid (what "Run Model" checks; $LC_GUI_MODEL, screenshot modeler.png); opens the dialog of
each algorithm in $LC_GUI_RUNS (JSON list of {"alg", "params"}; default: $LC_GUI_ALG with
$LC_GUI_PARAMS) and runs it as the Run button does; adds the rasters in $LC_GUI_OPEN (JSON list) as
a user would by hand (Layer → Add Raster Layer); then writes what a user would see to
$LC_GUI_OUT/result.json (plugin state, toolbox, modeler, each dialog's log, the layers panel in
order with each layer's visibility, renderer and legend, the message log) and screenshots, and quits
QGIS. Used by tests/processing/test_gui.py under Xvfb.
"""

import json
import os
import traceback

from qgis.core import QgsApplication, QgsPalettedRasterRenderer, QgsProject
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QDockWidget, QTextEdit, QWidget
from qgis.utils import active_plugins, iface, plugins

OUT = os.environ["LC_GUI_OUT"]
ALG = os.environ.get("LC_GUI_ALG", "landcover:rasterizereference")
RUNS = json.loads(os.environ.get("LC_GUI_RUNS", "null") or "null") or [{"alg": ALG, "params": json.loads(os.environ.get("LC_GUI_PARAMS", "{}"))}]
MODEL = os.environ.get("LC_GUI_MODEL", "model:landcover_chain")
OPEN = json.loads(os.environ.get("LC_GUI_OPEN", "[]"))
STATE = {"alg": RUNS[0]["alg"], "messages": [], "errors": [], "runs": [], "opened": []}
_keep = []


def on_message(message, tag, level):
    STATE["messages"].append({"tag": tag, "level": int(level), "message": message})


QgsApplication.messageLog().messageReceived.connect(on_message)


def step(function):
    def wrapped(*args):
        try:
            function(*args)
        except Exception:  # noqa: BLE001 - everything goes to the result file
            STATE["errors"].append(traceback.format_exc())
            finish()

    return wrapped


@step
def open_toolbox():
    registry = QgsApplication.processingRegistry()
    STATE["active_plugins"] = sorted(active_plugins)
    STATE["plugin_loaded"] = "landcover" in plugins
    provider = registry.providerById("landcover")
    STATE["provider_algorithms"] = sorted(a.id() for a in provider.algorithms()) if provider else []
    STATE["model_registered"] = registry.algorithmById("model:landcover_chain") is not None
    toolbox = getattr(plugins.get("processing"), "toolbox", None) or iface.mainWindow().findChild(QDockWidget, "ProcessingToolbox")
    toolbox.setVisible(True)
    toolbox.raise_()
    search = getattr(toolbox, "searchBox", None)
    if search is not None:
        search.setText("Land cover")
    STATE["toolbox_visible"] = toolbox.isVisible()
    QTimer.singleShot(500, open_modeler)


@step
def open_modeler():
    """The shipped model in the graphical modeler: valid as "Run Model" checks it, no step shown invalid."""
    from processing.modeler.ModelerDialog import ModelerDialog

    model = QgsApplication.processingRegistry().algorithmById(MODEL)
    dialog = ModelerDialog.create(model.create())  # ModelerDialog keeps it; hidden, not closed, when done (no save prompt)
    dialog.show()
    valid, errors = dialog.model().validate()
    children = {cid: dialog.model().validateChildAlgorithm(cid)[0] for cid in dialog.model().childAlgorithms()}
    order = [p.parameterName() for p in dialog.model().orderedParameters()]
    STATE["modeler"] = {"valid": valid, "errors": errors, "children_valid": children, "inputs": order, "title": dialog.windowTitle()}
    QTimer.singleShot(1500, lambda: close_modeler(dialog))


@step
def close_modeler(dialog):
    STATE["modeler"]["screenshot"] = dialog.grab().save(os.path.join(OUT, "modeler.png"))
    dialog.hide()
    QTimer.singleShot(300, lambda: open_dialog(0))


@step
def open_dialog(index):
    import processing

    if index >= len(RUNS):
        QTimer.singleShot(300, open_by_hand)
        return
    run = RUNS[index]
    dialog = processing.createAlgorithmDialog(run["alg"], run["params"])
    _keep.append(dialog)
    dialog.show()
    widgets = sorted({w.metaObject().className() for w in dialog.findChildren(QWidget)})
    STATE["runs"].append({"alg": run["alg"], "dialog_title": dialog.windowTitle(), "widgets": widgets})
    if run.get("run", True):
        QTimer.singleShot(1000, lambda: run_dialog(index, dialog))
    else:  # only look at the dialog
        QTimer.singleShot(1000, lambda: look(index, dialog))


@step
def look(index, dialog):
    STATE["runs"][index]["dialog_screenshot"] = dialog.grab().save(os.path.join(OUT, f"dialog_{index}.png"))
    dialog.close()
    QTimer.singleShot(300, lambda: open_dialog(index + 1))


@step
def run_dialog(index, dialog):
    dialog.runAlgorithm()  # what the Run button does; Python algorithms run in the main thread
    QTimer.singleShot(1500, lambda: inspect(index, dialog))


@step
def inspect(index, dialog):
    log = dialog.findChild(QTextEdit, "txtLog")
    STATE["runs"][index]["dialog_log"] = log.toPlainText() if log is not None else ""
    STATE["runs"][index]["dialog_screenshot"] = dialog.grab().save(os.path.join(OUT, f"dialog_{index}.png"))
    dialog.close()
    record_layers()
    QTimer.singleShot(300, lambda: open_dialog(index + 1))


@step
def open_by_hand():
    """As a user adds a file made by the plugin: Layer → Add Raster Layer (QGIS applies the file's .qml)."""
    for path in OPEN:
        layer = iface.addRasterLayer(path, "opened by hand")
        STATE["opened"].append({"source": path, "valid": bool(layer and layer.isValid())})
    record_layers()
    canvas = iface.mapCanvas()
    layers = list(QgsProject.instance().mapLayers().values())
    if layers:
        canvas.setExtent(layers[0].extent())
        canvas.refresh()
    QTimer.singleShot(1500, screenshot)


def record_layers():
    """The layers panel from top to bottom: name, file, checked, renderer and legend."""
    layers = []
    for node in QgsProject.instance().layerTreeRoot().findLayers():
        layer = node.layer()
        entry = {"name": layer.name(), "source": layer.source(), "type": int(layer.type()), "visible": node.itemVisibilityChecked()}
        renderer = layer.renderer() if hasattr(layer, "renderer") else None
        if renderer is not None:
            entry["renderer"] = renderer.type()
            if isinstance(renderer, QgsPalettedRasterRenderer):
                entry["classes"] = [{"value": c.value, "label": c.label, "color": c.color.name()} for c in renderer.classes()]
                entry["legend"] = [label for label, _ in renderer.legendSymbologyItems()]
        layers.append(entry)
    STATE["layers"] = layers


def screenshot():
    try:
        screen = QApplication.primaryScreen()
        STATE["screenshot"] = screen.grabWindow(0).save(os.path.join(OUT, "screenshot.png"))
        STATE["window_screenshot"] = iface.mainWindow().grab().save(os.path.join(OUT, "main_window.png"))
    except Exception:  # noqa: BLE001
        STATE["errors"].append(traceback.format_exc())
    finish()


def finish():
    QTimer.singleShot(5000, lambda: os._exit(0))  # first: a window manager-less session or a modal prompt can block the exit
    with open(os.path.join(OUT, "result.json"), "w") as f:
        json.dump(STATE, f, indent=1)
    QgsProject.instance().setDirty(False)
    for dialog in _keep:
        dialog.close()
    QgsProject.instance().clear()
    QTimer.singleShot(200, iface.actionExit().trigger)


iface.mainWindow().setGeometry(0, 0, 1400, 900)  # no window manager under Xvfb to maximise it
QTimer.singleShot(1500, open_toolbox)
