"""Optional heavy dependencies, imported when a step needs them.

The plugin must load in a QGIS whose Python lacks lightgbm, onnxruntime or s2cloudless; the
step that needs one then says exactly which package is missing and how to install it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import DependencyError

# Import name → what to pip install, where they differ.
PIP_NAMES = {"distributed": "dask[distributed]", "dask": "dask[distributed]", "zarr": "zarr>=2.18,<3"}

# The plugin-private package folder (<QGIS profile>/python/lc_plugin_deps), set by the plugin at load; on
# sys.path, so pip's --target install there needs no administrator rights and passes PEP 668.
INSTALL_FOLDER = "<QGIS profile folder>/python/lc_plugin_deps"


def require(module: str) -> ModuleType:
    """Import ``module`` or raise a DependencyError naming the pip package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = PIP_NAMES.get(module.split(".")[0], module.split(".")[0])
        raise DependencyError(
            f"This step needs the Python package '{package}', which is not installed in the Python "
            f"that QGIS uses ({exc}). {install_advice(package)}"
        ) from exc


def install_advice(package: str) -> str:
    """How to install ``package`` where the plugin looks for it: the plugin's menu action or pip --target by hand."""
    return (
        "Install it from QGIS with Plugins > Land cover > Install Python dependencies, or with QGIS's Python: "
        f"python3 -m pip install --target {_shell_word(INSTALL_FOLDER)} {_shell_word(package)} (README, 'Python dependencies')."
    )


def _shell_word(package: str) -> str:
    """Quote a requirement with version bounds so it can be pasted into a shell as one word."""
    return f'"{package}"' if any(c in package for c in "<>=, ") else package
