"""Runs inside desktop QGIS (``qgis --code scripts/workbench_check.py``): the workbench dock end to end.

Opens the "Land cover workbench" from the plugin's toolbar, loads the demo area and reference,
draws a rectangle on the map with the mouse, lists the scenes of the demo STAC server
($LC_STAC_URL, $LC_COLLECTION), leaves one date out ($LC_LEAVE_OUT), picks the reference field,
runs, waits for the background task (counting main-loop ticks meanwhile), then clicks a pixel
($LC_PIXEL_X, $LC_PIXEL_Y, map CRS) with the profile tool. Writes what a user would see to
$LC_GUI_OUT/result.json and screenshots, and quits. Used by tests/processing/test_gui_workbench.py.
"""

import json
import os
import time
import traceback

from qgis.core import QgsApplication, QgsPalettedRasterRenderer, QgsPointXY, QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import QDate, QPoint, Qt, QTimer
from qgis.PyQt.QtTest import QTest

try:  # Qt6 moved QAction to QtGui
    from qgis.PyQt.QtGui import QAction
except ImportError:
    from qgis.PyQt.QtWidgets import QAction
from qgis.utils import iface, plugins

OUT = os.environ["LC_GUI_OUT"]
ENV = {k: os.environ[k] for k in ("LC_STAC_URL", "LC_COLLECTION", "LC_AOI", "LC_REFERENCE", "LC_RUN_FOLDER", "LC_LEAVE_OUT")}
RECT = json.loads(os.environ["LC_RECT"])  # x0, y0, x1, y1 in the map CRS
PIXEL = (float(os.environ["LC_PIXEL_X"]), float(os.environ["LC_PIXEL_Y"]))
STATE = {"errors": [], "messages": [], "ticks_during_run": 0}
ctx = {}


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


def wait_for(condition, then, timeout_ms=120_000, every_ms=200):
    """Poll ``condition`` on the event loop; call ``then`` when true, fail after ``timeout_ms``."""
    waited = [0]

    @step
    def poll():
        if condition():
            then()
        elif waited[0] > timeout_ms:
            raise TimeoutError(f"waited {timeout_ms} ms for {then.__name__}")
        else:
            waited[0] += every_ms
            QTimer.singleShot(every_ms, poll)

    QTimer.singleShot(every_ms, poll)


def canvas_pixel(x, y):
    point = iface.mapCanvas().getCoordinateTransform().transform(QgsPointXY(x, y))
    return QPoint(int(round(point.x())), int(round(point.y())))


@step
def open_dock():
    action = next(a for a in iface.mainWindow().findChildren(QAction) if a.objectName() == "Landcoverworkbench")
    STATE["toolbar_action"] = action.text()
    action.trigger()
    dock = plugins["landcover"].workbench.workbench
    ctx["dock"] = dock
    STATE["dock_visible"] = dock.isVisible()
    project = QgsProject.instance()
    aoi = QgsVectorLayer(ENV["LC_AOI"], "Demo area", "ogr")
    reference = QgsVectorLayer(ENV["LC_REFERENCE"], "Reference", "ogr")
    project.addMapLayers([aoi, reference])
    iface.mapCanvas().setExtent(aoi.extent().buffered(200))
    iface.mapCanvas().refresh()
    QTimer.singleShot(800, draw_rectangle)


@step
def draw_rectangle():
    dock = ctx["dock"]
    dock.draw_button.click()
    viewport = iface.mapCanvas().viewport()
    start, end = canvas_pixel(RECT[0], RECT[3]), canvas_pixel(RECT[2], RECT[1])
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(viewport, end)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    drawn = dock.drawn
    STATE["drawn"] = [drawn.xMinimum(), drawn.yMinimum(), drawn.xMaximum(), drawn.yMaximum()] if drawn else None
    STATE["area_mode"] = dock.area_mode()
    dock.start.setDate(QDate(2017, 1, 1))
    dock.end.setDate(QDate(2017, 12, 31))
    dock.source.setCurrentIndex(0)
    dock.stac_url.setText(ENV["LC_STAC_URL"])
    dock.collection.setText(ENV["LC_COLLECTION"])
    dock.patch_size.setValue(100)
    dock.samples.setValue(1000)
    dock.trees.setValue(10)  # a small forest: the test checks the panel, not the classifier
    dock.min_pixels.setValue(4)
    dock.output_folder.setFilePath(ENV["LC_RUN_FOLDER"])
    dock.list_button.click()
    wait_for(lambda: dock.scene_table.rowCount() > 0, scenes_listed)


@step
def scenes_listed():
    dock = ctx["dock"]
    STATE["scenes"] = [[dock.scene_table.item(r, c).text() for c in range(3)] for r in range(dock.scene_table.rowCount())]
    dock.scenes[0].quicklook = os.environ["LC_QUICKLOOK"]  # the demo catalogue has no thumbnails: one served beside it
    dock.scene_table.setCurrentCell(0, 0)
    wait_for(lambda: dock.quicklook.pixmap() is not None and not dock.quicklook.pixmap().isNull(), quicklook_shown, timeout_ms=20_000)


@step
def quicklook_shown():
    dock = ctx["dock"]
    STATE["quicklook_size"] = [dock.quicklook.pixmap().width(), dock.quicklook.pixmap().height()]
    dock.leave_out(ENV["LC_LEAVE_OUT"])
    reference = next(layer for layer in QgsProject.instance().mapLayers().values() if layer.name() == "Reference")
    dock.reference.setLayer(reference)
    dock.reference_field.setField("LULC_ID")
    rows = [(dock.legend.item(r, 0), dock.legend.item(r, 1)) for r in range(dock.legend.rowCount())]
    STATE["legend"] = [[i.text(), name.text(), name.background().color().name()] for i, name in rows]
    dock.legend.item(1, 1).setText("woodland")  # what typing into the cells does
    dock.legend.item(1, 2).setText("#228b22")
    STATE["legend_edits"] = dock.legend_edits()
    STATE["edited_cell_colour"] = dock.legend.item(1, 1).background().color().name()
    dock.widget().widget().grab().save(os.path.join(OUT, "dock_before_run.png"))  # the whole panel, not the scrolled view
    ctx["reports"] = []
    dock.open_report = ctx["reports"].append  # record instead of starting a browser under Xvfb
    dock.run_button.click()
    STATE["run_started"] = dock.task is not None
    if dock.task is None:
        STATE["errors"].append(f"run did not start: {dock.step_label.text()}")
        finish()
        return
    STATE["run_start"] = time.monotonic()
    tick()
    wait_for(lambda: dock.task is None, run_finished, timeout_ms=240_000)


def tick():
    if ctx["dock"].task is not None:
        STATE["ticks_during_run"] += 1
        QTimer.singleShot(100, tick)


@step
def run_finished():
    dock = ctx["dock"]
    STATE["run_seconds"] = round(time.monotonic() - STATE["run_start"], 1)
    STATE["status"] = dock.step_label.text()
    STATE["log"] = dock.log.toPlainText()
    STATE["steps"] = [line[2:] for line in STATE["log"].splitlines() if line.startswith("— ")]  # the dock logs each step it is told of
    STATE["reports_opened"] = ctx["reports"]
    from processing.core.ProcessingLog import ProcessingLog  # QGIS < 3.32: Processing's history

    STATE["history"] = [entry.text for entry in ProcessingLog.getLogEntries() if "landcover:" in entry.text]
    layers = []
    for layer in QgsProject.instance().mapLayers().values():
        entry = {"name": layer.name(), "source": layer.source()}
        renderer = layer.renderer() if hasattr(layer, "renderer") else None
        if renderer is not None:
            entry["renderer"] = renderer.type()
            if isinstance(renderer, QgsPalettedRasterRenderer):
                entry["classes"] = [{"value": c.value, "label": c.label, "color": c.color.name()} for c in renderer.classes()]
        node = QgsProject.instance().layerTreeRoot().findLayer(layer.id())
        entry["visible"] = bool(node and node.isVisible())
        layers.append(entry)
    STATE["layers"] = layers
    profile = plugins["landcover"].workbench.show_profile()
    ctx["profile"] = profile
    combos = (profile.stack, profile.mask, profile.interpolated, profile.class_map, profile.probabilities)
    STATE["profile_layers"] = [c.currentLayer().name() if c.currentLayer() else None for c in combos]
    QTimer.singleShot(1000, click_pixel)


@step
def click_pixel():
    profile = ctx["profile"]
    STATE["map_tool_is_profile"] = iface.mapCanvas().mapTool() is profile.tool
    where = canvas_pixel(*PIXEL)
    ctx["clicked"] = iface.mapCanvas().getCoordinateTransform().toMapCoordinates(where.x(), where.y())
    QTest.mouseClick(iface.mapCanvas().viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, where)
    wait_for(lambda: len(profile.profiles) > 0, profile_drawn, timeout_ms=10_000)


@step
def profile_drawn():
    profile = ctx["profile"]
    p = profile.profiles[0]
    STATE["clicked"] = [ctx["clicked"].x(), ctx["clicked"].y()]
    STATE["profile"] = {
        "series_name": profile.series.currentText(),
        "series_names": [profile.series.itemText(i) for i in range(profile.series.count())],
        "row_col": [p.raw.row, p.raw.col],
        "dates": [d.isoformat() for d in p.raw.dates],
        "bands": p.raw.bands,
        "values": [[None if v != v else v for v in row] for row in p.raw.values.tolist()],
        "cloudy": p.raw.cloudy.tolist() if p.raw.cloudy is not None else None,
        "interpolated_dates": [d.isoformat() for d in p.interpolated.dates] if p.interpolated else None,
        "interpolated_ndvi": [None if v != v else v for v in p.interpolated.series("NDVI").tolist()] if p.interpolated else None,
        "class": [p.pixel_class.class_id, p.pixel_class.name, p.pixel_class.probabilities] if p.pixel_class else None,
        "info": profile.info.text(),
        "lines_drawn": sum(len(ax.lines) for ax in profile.plot.figure.axes),
    }
    profile.grab().save(os.path.join(OUT, "profile.png"))
    for combo in (profile.stack, profile.mask, profile.interpolated):  # a map alone: the click gives its class only
        combo.setLayer(None)
    QTest.mouseClick(iface.mapCanvas().viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, canvas_pixel(*PIXEL))
    wait_for(lambda: len(profile.profiles) > 1, map_only_click, timeout_ms=10_000)


@step
def map_only_click():
    second = ctx["profile"].profiles[1]
    STATE["map_only_click"] = [second.raw is None and second.interpolated is None, second.pixel_class.name, len(ctx["profile"].markers)]
    QTimer.singleShot(1500, screenshots)


@step
def screenshots():
    iface.mainWindow().grab().save(os.path.join(OUT, "main_window.png"))
    ctx["dock"].widget().widget().grab().save(os.path.join(OUT, "dock.png"))
    ctx["profile"].grab().save(os.path.join(OUT, "profile_map_only.png"))
    project_round_trip()


@step
def project_round_trip():
    """Save the project, change a setting, open the project again: the panel shows the saved settings."""
    dock, project = ctx["dock"], QgsProject.instance()
    path = os.path.join(OUT, "project.qgs")
    STATE["project_saved"] = project.write(path)
    dock.min_pixels.setValue(0)
    dock.start.setDate(QDate(2020, 5, 5))
    STATE["project_read"] = project.read(path)
    STATE["after_reload"] = {
        "min_pixels": dock.min_pixels.value(),
        "start": dock.start.date().toString("yyyy-MM-dd"),
        "stac_url": dock.stac_url.text(),
        "legend": dock.legend_edits(),
    }
    finish()


def finish():
    STATE["seconds_in_qgis"] = round(time.monotonic() - STATE["started"], 1)
    with open(os.path.join(OUT, "result.json"), "w") as f:
        json.dump(STATE, f, indent=1, default=str)
    QgsProject.instance().setDirty(False)
    QgsProject.instance().clear()
    QTimer.singleShot(200, iface.actionExit().trigger)
    QTimer.singleShot(5000, lambda: os._exit(0))  # a window manager-less session can ignore the exit


iface.mainWindow().setGeometry(0, 0, 1400, 900)  # no window manager under Xvfb to maximise it
STATE["started"] = time.monotonic()
QTimer.singleShot(1500, open_dock)
