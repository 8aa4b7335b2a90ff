"""Real desktop QGIS under Xvfb with the plugin installed from the `make package` zip.

Starts ``qgis`` on a private profile, opens the Processing toolbox, opens the shipped model in the
graphical modeler, runs the Rasterize reference and Classify (with probabilities) dialogs, adds a
mosaic COG by hand (scripts/gui_check.py) and checks the message log, the model's validity, the
dialog logs, the layers panel (order, visibility) and the renderers and legends. Screenshots are
kept in build/artefacts/gui/.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.io.mosaic import mosaic_files
from lc_plugin.io.rasters import Grid, TimeStack, write_stack
from lc_plugin.ml.train import train_classifier
from lc_plugin.reference.rasterize import rasterize_reference_file

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "build" / "artefacts" / "gui"
LULC = ROOT / "demo" / "data" / "eo-learn-testpatch" / "TestEOPatch" / "vector_timeless" / "LULC.gpkg"

pytestmark = pytest.mark.skipif(
    not (shutil.which("qgis") and shutil.which("xvfb-run") and shutil.which("xauth")),
    reason="needs the qgis binary and xvfb-run/xauth (Debian packages qgis, xvfb, xauth; `make test` installs them)",
)


def build_zip() -> Path:
    out = subprocess.run(["make", "-s", "package"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return ROOT / out.stdout.strip().splitlines()[-1]


def install_profile(base: Path, zip_path: Path) -> Path:
    """A QGIS profile with the plugin unzipped into python/plugins and enabled, first-run dialogs off."""
    profile = base / "profiles" / "default"
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(plugins)
    (profile / "QGIS").mkdir()
    (profile / "QGIS" / "QGIS3.ini").write_text(
        "[PythonPlugins]\nlandcover=true\nprocessing=true\n\n"
        "[qgis]\ncheckVersion=false\nshowTips322=false\nshowTips=false\nallowVersionCheck=false\n"
        "[core]\nNewsFeed\\httpsfeedqgisorg\\disabled=true\n"
        "[app]\nfirst_run=false\n"
    )
    (base / "profiles" / "profiles.ini").write_text("[core]\ndefaultProfile=default\n")
    return profile


def inputs(tmp_path: Path) -> dict:
    """A 2-date stack on the eo-learn test patch, a model trained on it and a class mosaic, made by the engine."""
    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 100, 100)
    data = np.random.default_rng(0).uniform(0.02, 0.3, (2, 5, 100, 100)).astype("float32")
    stack = tmp_path / "stack.tif"
    dates, bands = [dt.date(2017, 6, 1), dt.date(2017, 7, 1)], ["B02", "B03", "B04", "B08", "B11"]
    write_stack(str(stack), TimeStack(data, dates, bands, grid, {"LC_CLOUD_MASKED": "synthetic, cloud-free"}))  # Classify's cloud check
    (tmp_path / "engine").mkdir()
    reference = str(tmp_path / "engine" / "reference.tif")
    rasterize_reference_file(str(LULC), "LULC_ID", str(stack), reference)
    model = str(tmp_path / "model.onnx")
    train_classifier([str(stack)], [reference], model, samples_per_class=100, n_estimators=5, drop_empty_classes=True)
    cog = str(tmp_path / "mosaic_cog.tif")
    mosaic_files([reference], str(tmp_path / "mosaic.vrt"), cog)
    return {"stack": str(stack), "model": model, "cog": cog}


def test_plugin_from_zip_in_real_qgis(tmp_path):
    zip_path = build_zip()
    config = tmp_path / "config"
    profile = install_profile(config, zip_path)
    # Debian's QGIS Python lacks onnxruntime, which Classify needs: the plugin's own package folder (what
    # "Install Python dependencies" fills), here this checkout's venv packages, appended to sys.path at load
    site = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"))
    (profile / "python" / "lc_plugin_deps").symlink_to(site.resolve(), target_is_directory=True)
    made = inputs(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    runs = [
        {
            "alg": "landcover:rasterizereference",
            "params": {"REFERENCE": str(LULC), "FIELD": "LULC_ID", "GRID": made["stack"], "OUTPUT": str(tmp_path / "reference.tif")},
        },
        {  # the map's file name sorts first, so Processing would load the probabilities on top of it
            "alg": "landcover:classify",
            "params": {
                "INPUT": made["stack"],
                "MODEL": made["model"],
                "OUTPUT": str(tmp_path / "a_map.tif"),
                "OUTPUT_PROBABILITIES": str(tmp_path / "b_proba.tif"),
            },
        },
        {"alg": "landcover:download", "params": {}, "run": False},
    ]
    env = dict(
        os.environ,
        QGIS_CUSTOM_CONFIG_PATH=str(config),
        LC_GUI_OUT=str(out),
        LC_GUI_RUNS=json.dumps(runs),
        LC_GUI_OPEN=json.dumps([made["cog"]]),
        XDG_RUNTIME_DIR=str(tmp_path / "runtime"),
    )
    env.pop("QT_QPA_PLATFORM", None)  # a real X display this time
    env.pop("QGIS_PLUGINPATH", None)
    (tmp_path / "runtime").mkdir(mode=0o700)
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", "qgis", "--noversioncheck", "--nologo", "--code", str(ROOT / "scripts" / "gui_check.py")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "qgis_stderr.txt").write_text(proc.stdout + proc.stderr)
    for image in out.glob("*.png"):
        shutil.copy(image, ARTEFACTS / image.name)
    if (out / "result.json").exists():
        shutil.copy(out / "result.json", ARTEFACTS / "result.json")
    assert (out / "result.json").exists(), f"QGIS exited {proc.returncode} without a result:\n{proc.stderr[-3000:]}"
    state = json.loads((out / "result.json").read_text())
    assert not state["errors"], state["errors"]

    # installed from the zip, loaded, no Python errors while loading or running
    assert state["plugin_loaded"] and "landcover" in state["active_plugins"]
    assert {"landcover:creategrid", "landcover:classify", "landcover:splitstack"} <= set(state["provider_algorithms"])
    assert state["model_registered"]
    assert state["toolbox_visible"]
    bad = [m for m in state["messages"] if m["tag"] in ("Python error", "Python warning") or (m["level"] >= 2 and "landcover" in m["message"].lower())]
    assert not bad, bad
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]

    # the shipped model opens valid in the modeler, no step red, the dialog asks Start date before End date
    modeler = state["modeler"]
    assert modeler["valid"] and not modeler["errors"], modeler["errors"]
    assert modeler["children_valid"] and all(modeler["children_valid"].values()), modeler["children_valid"]
    assert modeler["inputs"].index("START_DATE") < modeler["inputs"].index("END_DATE")
    assert (ARTEFACTS / "modeler.png").stat().st_size > 10_000

    # the Rasterize reference dialog ran and loaded its output with the class legend
    reference_run, classify_run, download_look = state["runs"]
    assert "Rasterize reference" in reference_run["dialog_title"]
    assert "Classes:" in reference_run["dialog_log"] and "forest" in reference_run["dialog_log"], reference_run["dialog_log"]
    layers = state["layers"]  # the layers panel, top to bottom
    [reference] = [entry for entry in layers if entry["source"].endswith("reference.tif")]
    assert reference["renderer"] == "paletted"
    classes = {c["value"]: (c["label"], c["color"]) for c in reference["classes"]}
    assert classes[2] == ("forest", "#054907")
    assert "forest" in reference["legend"]

    # Classify from its dialog: the map on top in class colours, the probabilities under it and unchecked
    assert "Classify" in classify_run["dialog_title"] and "Classes:" in classify_run["dialog_log"], classify_run["dialog_log"]
    sources = [entry["source"] for entry in layers]
    map_index, proba_index = sources.index(str(tmp_path / "a_map.tif")), sources.index(str(tmp_path / "b_proba.tif"))
    assert proba_index == map_index + 1
    assert layers[map_index]["renderer"] == "paletted" and layers[map_index]["visible"]
    assert layers[proba_index]["renderer"] == "singlebandpseudocolor" and not layers[proba_index]["visible"]
    assert "(band 1 = " in layers[proba_index]["name"]

    # the Download dialog: calendar widgets for the dates, the bands as check boxes
    assert "QgsDateTimeEdit" in download_look["widgets"] or "QgsDateEdit" in download_look["widgets"], download_look["widgets"]
    assert "QgsProcessingEnumCheckboxPanelWidget" in download_look["widgets"], download_look["widgets"]

    # the mosaic COG added by hand shows the class names, not 256 unnamed entries
    assert state["opened"] == [{"source": made["cog"], "valid": True}]
    [cog] = [entry for entry in layers if entry["source"] == made["cog"]]
    assert cog["renderer"] == "paletted" and len(cog["classes"]) < 20
    assert "forest" in cog["legend"] and all(c["label"] for c in cog["classes"])
    assert state["screenshot"] and (ARTEFACTS / "screenshot.png").stat().st_size > 10_000
