"""The workbench's run (lc_plugin.runs.workflow) through processing.run: Preview works on the patch at the area's centre."""

from __future__ import annotations

import json

from lc_plugin.io.rasters import read_class_raster
from lc_plugin.runs.workflow import WorkbenchSettings, run_workbench


def test_preview_runs_the_chain_on_the_central_patch(qgis_app, demo_scene, tmp_path):
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    scene, server = demo_scene
    shown = []
    settings = WorkbenchSettings(
        aoi=scene.aoi_path, start="2017-01-01", end="2017-12-31", stac_url=server.url, collection=scene.collection, patch_size=100,
        reference=scene.reference_path, reference_field="LULC_ID", samples_per_class=500, n_estimators=10, output_folder=str(tmp_path),
    )  # fmt: skip

    def run(alg: str, params: dict, _label: str) -> dict:
        return processing.run(f"landcover:{alg}", params, context=QgsProcessingContext(), feedback=QgsProcessingFeedback())

    result = run_workbench(run, settings, str(tmp_path), lambda path, name: shown.append(name), preview=True)
    steps = json.loads((tmp_path / "preview" / "steps.json").read_text())
    download = next(s for s in steps if s["algorithm"] == "landcover:download")
    # the demo area (465181–466181 E, 5079000–5080010 N) has its centre in the 1 km patch 465_5079 of the four it touches
    assert download["parameters"]["PATCH_ID"] == "465_5079" and len(result["maps"]) == 1
    assert [s["algorithm"].split(":")[1] for s in steps][-3:] == ["train", "classify", "accuracyreport"]
    labels, classes, _ = read_class_raster(result["maps"][0])
    assert "forest" in classes.names and labels.shape == (100, 100)
    assert shown == ["Time stack 465_5079", "Cloud masks 465_5079", "Interpolated 465_5079", "Class probabilities 465_5079", "Land cover 465_5079"]
    assert result["report"].endswith("preview/report.html") and WorkbenchSettings.from_json((tmp_path / "preview" / "settings.json").read_text()) == settings

    # the same stack as a local source, classified with the model just trained: no grid, no download, no training
    local = WorkbenchSettings(source="local", local_stacks=result["stacks"], start="2017-01-01", end="2017-12-31", model=result["model"],
                              min_pixels=4, output_folder=str(tmp_path / "local"))  # fmt: skip
    again = run_workbench(run, local, local.output_folder)
    names = [s["algorithm"].split(":")[1] for s in json.loads((tmp_path / "local" / "steps.json").read_text())]
    assert names == ["cloudmasks", "filterscenes", "interpolate", "classify", "sieve"] and "report" not in again
    assert (read_class_raster(again["maps"][0])[0] == read_class_raster(result["maps"][0])[0]).mean() > 0.95  # the preview's map, sieved


def test_cancel_stops_the_background_run_and_leaves_no_half_file(qgis_app, demo_scene, tmp_path):
    """The dock's task: Cancel during the cloud masks ends the run before training; no temporary file stays."""
    import time

    from landcover.gui.tasks import WorkbenchTask
    from qgis.core import QgsApplication

    scene, server = demo_scene
    settings = WorkbenchSettings(
        aoi=scene.aoi_path, start="2017-01-01", end="2017-12-31", stac_url=server.url, collection=scene.collection, patch_size=100,
        reference=scene.reference_path, reference_field="LULC_ID", n_estimators=10, output_folder=str(tmp_path),
    )  # fmt: skip
    task = WorkbenchTask(settings, preview=True)
    steps = []

    def on_step(_number: int, label: str) -> None:
        steps.append(label)
        if label.startswith("Cloud masks"):
            task.cancel()

    ended = []
    task.stepStarted.connect(on_step)
    task.taskCompleted.connect(lambda: ended.append("completed"))
    task.taskTerminated.connect(lambda: ended.append("terminated"))
    QgsApplication.taskManager().addTask(task)  # the manager deletes the C++ task once it ends
    deadline = time.monotonic() + 120
    while not ended and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.02)
    assert ended == ["terminated"] and "ancelled" in task.error, task.error
    assert steps[:3] == ["Create patch grid", "Download", "Cloud masks 465_5079"] and "Train classifier" not in steps
    assert not list(tmp_path.rglob("*.partial*")) and not list(tmp_path.rglob("landcover*.tif"))
