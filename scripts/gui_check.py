"""Runs inside desktop QGIS (``qgis --code scripts/gui_check.py``): the GUI check of the plugin.

Opens the Processing toolbox, opens the dialog of the algorithm named in $LC_GUI_ALG with the
parameters in $LC_GUI_PARAMS (JSON), runs it as the Run button does, then writes what a user
would see to $LC_GUI_OUT/result.json (plugin state, toolbox, dialog log, loaded layers and their
renderers, message log) and a screenshot to $LC_GUI_OUT/screenshot.png, and quits QGIS.
Used by tests/processing/test_gui.py under Xvfb.
"""

import json
import os
import traceback

from qgis.core import QgsApplication, QgsPalettedRasterRenderer, QgsProject
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QDockWidget, QTextEdit
from qgis.utils import active_plugins, iface, plugins

OUT = os.environ["LC_GUI_OUT"]
ALG = os.environ.get("LC_GUI_ALG", "landcover:rasterizereference")
PARAMS = json.loads(os.environ.get("LC_GUI_PARAMS", "{}"))
STATE = {"alg": ALG, "messages": [], "errors": []}
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
    QTimer.singleShot(500, open_dialog)


@step
def open_dialog():
    import processing

    dialog = processing.createAlgorithmDialog(ALG, PARAMS)
    _keep.append(dialog)
    dialog.show()
    STATE["dialog_title"] = dialog.windowTitle()
    QTimer.singleShot(1000, lambda: run_dialog(dialog))


@step
def run_dialog(dialog):
    dialog.runAlgorithm()  # what the Run button does; Python algorithms run in the main thread
    QTimer.singleShot(1500, lambda: inspect(dialog))


def inspect(dialog):
    try:
        log = dialog.findChild(QTextEdit, "txtLog")
        STATE["dialog_log"] = log.toPlainText() if log is not None else ""
        layers = []
        for layer in QgsProject.instance().mapLayers().values():
            entry = {"name": layer.name(), "source": layer.source(), "type": int(layer.type())}
            renderer = layer.renderer() if hasattr(layer, "renderer") else None
            if renderer is not None:
                entry["renderer"] = renderer.type()
                if isinstance(renderer, QgsPalettedRasterRenderer):
                    entry["classes"] = [{"value": c.value, "label": c.label, "color": c.color.name()} for c in renderer.classes()]
                    entry["legend"] = [label for label, _ in renderer.legendSymbologyItems()]
            layers.append(entry)
        STATE["layers"] = layers
        canvas = iface.mapCanvas()
        if layers:
            canvas.setExtent(QgsProject.instance().mapLayers()[next(iter(QgsProject.instance().mapLayers()))].extent())
            canvas.refresh()
        QTimer.singleShot(1500, lambda: screenshot(dialog))
    except Exception:  # noqa: BLE001
        STATE["errors"].append(traceback.format_exc())
        finish()


def screenshot(dialog):
    try:
        screen = QApplication.primaryScreen()
        STATE["screenshot"] = screen.grabWindow(0).save(os.path.join(OUT, "screenshot.png"))
        STATE["dialog_screenshot"] = dialog.grab().save(os.path.join(OUT, "dialog.png"))
        STATE["window_screenshot"] = iface.mainWindow().grab().save(os.path.join(OUT, "main_window.png"))
    except Exception:  # noqa: BLE001
        STATE["errors"].append(traceback.format_exc())
    finish()


def finish():
    with open(os.path.join(OUT, "result.json"), "w") as f:
        json.dump(STATE, f, indent=1)
    QgsProject.instance().setDirty(False)
    for dialog in _keep:
        dialog.close()
    QgsProject.instance().clear()
    QTimer.singleShot(200, iface.actionExit().trigger)
    QTimer.singleShot(5000, lambda: os._exit(0))  # a window manager-less session can ignore the exit


iface.mainWindow().setGeometry(0, 0, 1400, 900)  # no window manager under Xvfb to maximise it
QTimer.singleShot(1500, open_toolbox)
