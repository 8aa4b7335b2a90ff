"""Without lightgbm, onnxruntime, onnxmltools, s2cloudless and torch the plugin loads and each affected
algorithm names the missing package and how to install it (checked through qgis_process, with a
sitecustomize that makes those imports fail as in a bare QGIS Python)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.io.rasters import Grid, TimeStack, write_stack

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "qgis-process"
LULC = ROOT / "demo" / "data" / "eo-learn-testpatch" / "TestEOPatch" / "vector_timeless" / "LULC.gpkg"
BLOCKED = ("lightgbm", "onnxruntime", "onnxmltools", "s2cloudless", "torch")

BLOCKER = f"""
import importlib.abc, sys
BLOCKED = {BLOCKED!r}
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Block())
"""


@pytest.fixture(scope="module")
def bare_env(tmp_path_factory):
    blocker = tmp_path_factory.mktemp("blocker")
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    return dict(os.environ, PYTHONPATH=str(blocker))


def qgis_process(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_plugin_loads_and_names_each_missing_package(qgis_app, bare_env, tmp_path):
    listing = qgis_process(bare_env, "list")
    assert listing.returncode == 0, listing.stderr
    for alg in ("creategrid", "download", "cloudmasks", "train", "classify", "accuracyreport", "trainsegmentation"):
        assert f"landcover:{alg}" in listing.stdout
    probe = subprocess.run(["/usr/bin/python3", "-c", "import lightgbm"], env=bare_env, capture_output=True, text=True)
    assert "No module named 'lightgbm'" in probe.stderr  # the blocker works

    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 40, 40)
    rng = np.random.default_rng(0)
    l1c = ["B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12"]
    dates = [dt.date(2017, 6, 1), dt.date(2017, 7, 1)]
    stack = tmp_path / "l1c.tif"
    write_stack(str(stack), TimeStack(rng.uniform(0.02, 0.3, (2, len(l1c), 40, 40)).astype("float32"), dates, l1c, grid))
    reference = tmp_path / "reference.tif"
    ok = qgis_process(bare_env, "run", "landcover:rasterizereference", "--", f"REFERENCE={LULC}", "FIELD=LULC_ID", f"GRID={stack}", f"OUTPUT={reference}")
    assert ok.returncode == 0, ok.stdout + ok.stderr  # steps without optional packages still work

    cases = {
        "s2cloudless": ["landcover:cloudmasks", f"INPUT={stack}", "METHOD=1", f"OUTPUT={tmp_path / 'clm.tif'}"],
        "lightgbm": [
            "landcover:train",
            f"INPUT={stack}",
            f"REFERENCE={reference}",
            "DROP_EMPTY_CLASSES=true",
            "SAMPLES_PER_CLASS=50",
            f"OUTPUT_MODEL={tmp_path / 'model.onnx'}",
        ],
    }
    model = tmp_path / "model_stub.onnx"
    model.write_bytes(b"not really a model")
    cases["onnxruntime"] = ["landcover:classify", f"INPUT={stack}", f"MODEL={model}", f"OUTPUT={tmp_path / 'map.tif'}"]
    for package, (alg, *params) in cases.items():
        run = qgis_process(bare_env, "run", alg, "--", *params)
        text = run.stdout + run.stderr
        assert run.returncode != 0, f"{alg} ran without {package}"
        assert f"needs the Python package '{package}'" in text and f"lc_plugin_deps {package}" in text and "--user" not in text, f"{alg}: {text[-1500:]}"
        assert "Traceback" not in text, text[-1500:]

    run = qgis_process(bare_env, "run", "landcover:trainsegmentation", "--", f"DATASET={tmp_path}", f"OUTPUT_MODEL={tmp_path / 'cnn.onnx'}")
    text = run.stdout + run.stderr
    assert run.returncode != 0 and "make setup-dl" in text and "torch==2.13.0" in text, text[-1500:]
    assert "Traceback" not in text, text[-1500:]
