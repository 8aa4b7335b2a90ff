"""Real desktop QGIS under Xvfb with the plugin installed from the `make package` zip.

Starts ``qgis`` on a private profile, opens the Processing toolbox, runs the Rasterize reference
dialog (scripts/gui_check.py) and checks the message log, the dialog log and the loaded layer's
renderer. Screenshots are kept in build/artefacts/gui/.
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

from lc_plugin.rasters import Grid, TimeStack, write_stack

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


def test_plugin_from_zip_in_real_qgis(tmp_path):
    zip_path = build_zip()
    config = tmp_path / "config"
    install_profile(config, zip_path)
    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 100, 100)
    data = np.random.default_rng(0).uniform(0.02, 0.3, (2, 3, 100, 100)).astype("float32")
    stack = tmp_path / "stack.tif"
    write_stack(str(stack), TimeStack(data, [dt.date(2017, 6, 1), dt.date(2017, 7, 1)], ["B02", "B03", "B04"], grid))
    out = tmp_path / "out"
    out.mkdir()
    params = {"REFERENCE": str(LULC), "FIELD": "LULC_ID", "GRID": str(stack), "OUTPUT": str(tmp_path / "reference.tif")}
    env = dict(
        os.environ,
        QGIS_CUSTOM_CONFIG_PATH=str(config),
        LC_GUI_OUT=str(out),
        LC_GUI_ALG="landcover:rasterizereference",
        LC_GUI_PARAMS=json.dumps(params),
        XDG_RUNTIME_DIR=str(tmp_path / "runtime"),
    )
    env.pop("QT_QPA_PLATFORM", None)  # a real X display this time
    env.pop("QGIS_PLUGINPATH", None)
    (tmp_path / "runtime").mkdir(mode=0o700)
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", "qgis", "--noversioncheck", "--nologo", "--code", str(ROOT / "scripts" / "gui_check.py")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "qgis_stderr.txt").write_text(proc.stdout + proc.stderr)
    for name in ("screenshot.png", "dialog.png", "main_window.png", "result.json"):
        if (out / name).exists():
            shutil.copy(out / name, ARTEFACTS / name)
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

    # the dialog ran and loaded its output with the class legend
    assert "Rasterize reference" in state["dialog_title"]
    assert "Classes:" in state["dialog_log"] and "forest" in state["dialog_log"], state["dialog_log"]
    [layer] = [entry for entry in state["layers"] if entry["source"].endswith("reference.tif")]
    assert layer["renderer"] == "paletted"
    classes = {c["value"]: (c["label"], c["color"]) for c in layer["classes"]}
    assert classes[2] == ("forest", "#054907")
    assert "forest" in layer["legend"]
    assert state["screenshot"] and (ARTEFACTS / "screenshot.png").stat().st_size > 10_000
