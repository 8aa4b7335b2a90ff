"""lc_plugin: the land-cover engine (numpy, GDAL/rasterio, LightGBM, onnxruntime).

It never imports qgis: every step is a plain function over arrays and files, usable from a
notebook, a script or a cluster worker. The Processing algorithms in ``algorithms/`` only
translate parameters, feedback and errors to and from these functions.

The packages follow the pipeline: ``core`` (errors, monitor, classes), ``io`` (files), ``sources``
(getting Sentinel-2/3 data into stacks), ``timeseries`` (clouds, dates, interpolation, features),
``reference`` (reference rasters, samples, tiles), ``ml`` (training, classifying, cleaning maps),
``validation`` (accuracy, areas, reports) and ``runs`` (grids of patches, the one-pass chain). Every
name a package exports (its ``__all__``) is also reachable here, e.g. ``lc_plugin.train_classifier``;
it is imported on first use, so ``import lc_plugin`` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

PACKAGES = ("core", "io", "sources", "timeseries", "reference", "ml", "validation", "runs")


def __getattr__(name: str) -> object:
    """The step entry points and result types of the packages, imported when first asked for."""
    for package in PACKAGES:
        module = importlib.import_module(f".{package}", __name__)
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    names = [n for p in PACKAGES for n in importlib.import_module(f".{p}", __name__).__all__]
    return sorted({*globals(), *names})
