"""The engine installs as a package (``pip install -e .``) for notebooks and Dask workers, without QGIS."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_holds_the_engine_only(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("lc_plugin-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lc_plugin/py.typed" in names
    assert "lc_plugin/sources/stac.py" in names
    assert "lc_plugin/ml/segmentation/training.py" in names
    assert not [n for n in names if n.startswith(("algorithms/", "tests/", "demo/", "resources/"))]
