"""Optional heavy dependencies, imported when a step needs them.

The plugin must load in a QGIS whose Python lacks lightgbm, onnxruntime or s2cloudless; the
step that needs one then says exactly which package is missing and how to install it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import LandCoverError

# Import name → what to pip install, where they differ.
PIP_NAMES = {"distributed": "dask[distributed]", "dask": "dask[distributed]", "zarr": '"zarr>=2.18,<3"'}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise a LandCoverError naming the pip package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = PIP_NAMES.get(module.split(".")[0], module.split(".")[0])
        raise LandCoverError(
            f"This step needs the Python package '{package}', which is not installed in the Python "
            f"that QGIS uses ({exc}). Install it with: python3 -m pip install --user {package}"
        ) from exc
