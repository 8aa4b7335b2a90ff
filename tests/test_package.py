"""The engine as a library: what ``lc_plugin`` offers a notebook or a Dask worker, and what importing it costs."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import lc_plugin


def _exports() -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for package in lc_plugin.PACKAGES:
        for name in importlib.import_module(f"lc_plugin.{package}").__all__:
            names.setdefault(name, []).append(package)
    return names


def test_every_package_export_is_reachable_from_the_top():
    exports = _exports()
    assert {"train_classifier", "cloud_masks_file", "download_patches", "run_batch", "accuracy_report_file", "Monitor", "InputError"} <= set(exports)
    for name, packages in exports.items():
        assert len(packages) == 1, f"{name} is exported by {packages}: lc_plugin.{name} would be ambiguous"
        assert getattr(lc_plugin, name) is getattr(importlib.import_module(f"lc_plugin.{packages[0]}"), name)
    assert set(exports) <= set(dir(lc_plugin))


def test_importing_the_engine_loads_no_package_and_no_heavy_dependency():
    code = (
        "import sys, lc_plugin; "
        "print(sorted(m for m in sys.modules if m.startswith('lc_plugin.') or m.split('.')[0] in ('qgis', 'torch', 'lightgbm', 'onnxruntime', 'rasterio')))"
    )
    root = Path(lc_plugin.__file__).parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"


def test_an_unknown_name_is_an_attribute_error():
    try:
        lc_plugin.no_such_step  # noqa: B018
    except AttributeError as exc:
        assert "no_such_step" in str(exc)
    else:
        raise AssertionError("lc_plugin.no_such_step did not fail")
