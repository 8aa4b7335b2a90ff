"""The "Land cover" workbench dock in real desktop QGIS under Xvfb, end to end on the demo scene.

QGIS starts on a private profile with the plugin installed from the `make package` zip and runs
scripts/workbench_check.py: the dock opens from the toolbar, a rectangle is drawn with the mouse,
the demo STAC server's scenes are listed and one date is left out, the reference legend is shown,
Run executes the chain in a background task, the results are loaded with their legend, the report
is opened, and a click with the profile tool plots a pixel whose values are checked here against
the stack file. Screenshots are kept in build/artefacts/workbench/.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from matplotlib.image import imsave
from test_gui import ARTEFACTS, ROOT, build_zip, install_profile, pytestmark  # noqa: F401 - the same skip condition

from lc_plugin.io.rasters import read_stack
from lc_plugin.timeseries.profiles import read_pixel_class

SHOTS = ARTEFACTS.parent / "workbench"
RECT = [465300.0, 5079200.0, 466100.0, 5079800.0]  # two 1 km patches: 465_5079 and 466_5079
PIXEL = (465555.0, 5079455.0)  # a map-CRS point inside patch 465_5079
LEAVE_OUT = "2017-07-10"


@pytest.fixture(scope="module")
def workbench_run(demo_scene, tmp_path_factory):
    scene, server = demo_scene
    tmp = tmp_path_factory.mktemp("workbench")
    config, out, run_folder = tmp / "config", tmp / "out", tmp / "run"
    install_profile(config, build_zip())
    quicklook = Path(scene.root) / "quicklook.png"  # a 60 × 40 image the dock must fetch and show
    imsave(quicklook, np.linspace(0, 1, 60 * 40).reshape(40, 60))
    out.mkdir()
    (tmp / "runtime").mkdir(mode=0o700)
    env = dict(
        os.environ,
        QGIS_CUSTOM_CONFIG_PATH=str(config),
        LC_GUI_OUT=str(out),
        LC_STAC_URL=server.url,
        LC_COLLECTION=scene.collection,
        LC_AOI=scene.aoi_path,
        LC_REFERENCE=scene.reference_path,
        LC_RUN_FOLDER=str(run_folder),
        LC_LEAVE_OUT=LEAVE_OUT,
        LC_QUICKLOOK=f"{server.url}/quicklook.png",
        LC_RECT=json.dumps(RECT),
        LC_PIXEL_X=str(PIXEL[0]),
        LC_PIXEL_Y=str(PIXEL[1]),
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([*site.getsitepackages(), os.environ.get("PYTHONPATH", "")]),  # lightgbm, onnxruntime: the venv's
        XDG_RUNTIME_DIR=str(tmp / "runtime"),
    )
    env.pop("QT_QPA_PLATFORM", None)  # a real X display
    env.pop("QGIS_PLUGINPATH", None)
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", "qgis", "--noversioncheck", "--nologo", "--code", str(ROOT / "scripts" / "workbench_check.py")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "qgis_stderr.txt").write_text(proc.stdout + proc.stderr)
    for name in ("main_window.png", "dock.png", "dock_before_run.png", "profile.png", "profile_map_only.png", "result.json", "project.qgs"):
        if (out / name).exists():
            shutil.copy(out / name, SHOTS / name)
    assert (out / "result.json").exists(), f"QGIS exited {proc.returncode} without a result:\n{proc.stderr[-3000:]}"
    state = json.loads((out / "result.json").read_text())
    assert not state["errors"], state["errors"]
    state["server_requests"] = list(server.requests)
    return state, run_folder, proc


def test_dock_runs_the_chain_and_loads_styled_results(workbench_run):
    state, run_folder, proc = workbench_run
    assert state["dock_visible"] and state["toolbar_action"] == "Land cover workbench"
    assert state["area_mode"] == "drawn" and state["drawn"] == pytest.approx(RECT, abs=15)  # one screen pixel ≈ 1.4 m here
    dates = [row[0] for row in state["scenes"]]
    assert len(dates) == 27 and LEAVE_OUT in dates and dates == sorted(dates)  # the demo catalogue: 27 dates in 2017
    assert state["quicklook_size"] == [240, 160] and "GET /quicklook.png" in state["server_requests"]  # fetched, scaled to fit 240 px
    assert [row[:2] for row in state["legend"]][:2] == [["1", "cultivated land"], ["2", "forest"]] and state["legend"][1][2] == "#054907"
    assert state["legend_edits"] == [[2, "woodland", "#228b22"]] and state["edited_cell_colour"] == "#228b22"
    assert state["status"].startswith("Finished: 2 map(s)"), state["status"] + state["log"]
    assert state["ticks_during_run"] >= 5  # the event loop kept turning while the chain ran in its task
    assert state["steps"][:2] == ["Create patch grid", "Download"] and "Train classifier" in state["steps"] and state["steps"][-1] == "Mosaic"
    maps = [layer for layer in state["layers"] if layer["name"].startswith("Land cover")]
    assert {m["name"] for m in maps} == {"Land cover 465_5079", "Land cover 466_5079", "Land cover (mosaic)"}
    for layer in maps:  # forest renamed and recoloured in the legend: reference → model → maps
        assert layer["renderer"] == "paletted" and layer["visible"]
        labels = {(c["label"], c["color"]) for c in layer["classes"]}
        assert ("woodland", "#228b22") in labels and ("grassland", "#ffa500") in labels and "forest" not in {c["label"] for c in layer["classes"]}
    assert not any(layer["visible"] for layer in state["layers"] if layer["name"].startswith(("Time stack", "Interpolated", "Cloud masks")))
    assert state["reports_opened"] == [str(run_folder / "report.html")] and (run_folder / "report.html").stat().st_size > 10_000
    assert "woodland" in (run_folder / "report.html").read_text(encoding="utf-8")
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    bad = [m for m in state["messages"] if m["tag"] in ("Python error", "Python warning")]
    assert not bad, bad


def test_run_is_reproducible_from_its_files(workbench_run):
    state, run_folder, _ = workbench_run
    steps = json.loads((run_folder / "steps.json").read_text())
    filters = [s for s in steps if s["algorithm"] == "landcover:filterscenes"]
    assert len(filters) == 2 and all(s["parameters"]["EXCLUDE_DATES"] == LEAVE_OUT for s in filters)
    assert len(state["history"]) == len(steps) and state["history"][0].startswith('processing.run("landcover:creategrid"')  # Processing history
    sieves = [s for s in steps if s["algorithm"] == "landcover:sieve"]
    assert [s["parameters"]["MIN_PIXELS"] for s in sieves] == [4, 4]
    legends = [s for s in steps if s["algorithm"] == "landcover:reclassify"]
    assert [s["parameters"]["TABLE"] for s in legends] == [["2", "2", "woodland", "#228b22"]] * 2
    settings = json.loads((run_folder / "settings.json").read_text())
    assert settings["excluded_dates"] == [LEAVE_OUT] and settings["aoi"] == str(run_folder / "area.gpkg")
    parameters = json.loads((run_folder / "parameters.json").read_text())  # landcover:rungrid's PARAMETERS_FILE
    assert parameters["grid"] == str(run_folder / "grid.gpkg") and parameters["model"] == str(run_folder / "model.onnx")
    stack = read_stack(str(run_folder / "465_5079" / "filtered.tif"))
    assert LEAVE_OUT not in [d.isoformat() for d in stack.dates]


def test_settings_travel_with_the_project(workbench_run, demo_scene):
    state, run_folder, _ = workbench_run
    assert state["project_saved"] and state["project_read"]
    assert state["after_reload"] == {"min_pixels": 4, "start": "2017-01-01", "stac_url": demo_scene[1].url, "legend": [[2, "woodland", "#228b22"]]}
    saved = (SHOTS / "project.qgs").read_text()
    assert "<landcover>" in saved and "excluded_dates" in saved


def test_profile_of_a_clicked_pixel_equals_the_stack(workbench_run):
    state, run_folder, _ = workbench_run
    profile = state["profile"]
    assert state["map_tool_is_profile"] and state["profile_layers"][0].startswith("Time stack 465_5079")
    x, y = state["clicked"]
    assert (x, y) == pytest.approx(PIXEL, abs=2)
    stack_path = run_folder / "stacks" / "465_5079.tif"
    with rasterio.open(stack_path) as src:
        row, col = src.index(x, y)
    assert profile["row_col"] == [row, col]
    stack = read_stack(str(stack_path))
    assert profile["dates"] == [d.isoformat() for d in stack.dates] and profile["bands"] == stack.bands
    assert np.array_equal(np.array(profile["values"], dtype=float), stack.data[:, :, row, col].astype(float), equal_nan=True)
    mask = read_stack(str(run_folder / "465_5079" / "clm.tif"))
    assert profile["cloudy"] == (mask.data[:, 0, row, col] == 1).tolist()
    interpolated = read_stack(str(run_folder / "465_5079" / "interpolated.tif"))
    nir, red = (interpolated.band(b)[:, row, col].astype(float) for b in ("B08", "B04"))
    assert np.allclose(np.array(profile["interpolated_ndvi"], dtype=float), (nir - red) / (nir + red), equal_nan=True)
    assert profile["series_name"] == "NDVI" and profile["lines_drawn"] >= 2
    expected = read_pixel_class(str(run_folder / "465_5079" / "landcover_sieved.tif"), x, y, str(run_folder / "465_5079" / "probabilities.tif"))
    class_id, name, probabilities = profile["class"]
    assert (class_id, name) == (expected.class_id, expected.name) and probabilities == pytest.approx(expected.probabilities)
    assert name in profile["info"] and (SHOTS / "profile.png").stat().st_size > 5_000
    assert state["map_only_click"] == [True, name, 2]  # with only the map chosen: the class, no series; one marker per click
