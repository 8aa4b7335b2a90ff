"""One pixel's time series and class, read from the chain's files, for the profile tool.

Why: an analyst checks a map by looking at what the classifier saw — a pixel's reflectance or
NDVI through the year, which observations were cloudy, how interpolation filled the gaps, and
which class won with what probability. The profile dock (gui/) only draws; everything it shows
is read here from the files with rasterio, so it is tested without Qt against the stacks.

Points are given in the raster's own CRS (the caller transforms a map click).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.windows import Window

from ..core.bands import numeric_bands
from ..core.classes import NODATA_CLASS, ClassTable
from ..core.errors import InputError
from ..io.rasters import TAG_CLASSES, read_stack
from .features import INDICES

CLOUD_BAND = "CLM"


@dataclass
class PixelSeries:
    """Values (T, B) of one pixel of a time stack, NaN = no data; ``cloudy`` from a mask stack if given."""

    dates: list[dt.date]
    bands: list[str]
    values: np.ndarray
    row: int
    col: int
    cloudy: np.ndarray | None = None  # (T,) bool: True where the mask says cloud on that date

    def series(self, name: str) -> np.ndarray:
        """(T,) values of a band or of an index of ``INDICES`` (NaN where a band is missing or a+b = 0)."""
        if name in self.bands:
            return self.values[:, self.bands.index(name)]
        if name in INDICES and all(b in self.bands for b in INDICES[name]):
            a, b = (self.values[:, self.bands.index(band)] for band in INDICES[name])
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(a + b == 0, np.nan, (a - b) / (a + b))
        raise InputError(f"{name} is not a band of this stack ({', '.join(self.bands)}) nor an index of its bands.", "name")


@dataclass
class PixelClass:
    """The class of one pixel of a map and, with a probability raster, each class's probability."""

    class_id: int
    name: str
    probabilities: dict[str, float]


def series_names(bands: list[str]) -> list[str]:
    """What can be plotted for a stack with ``bands``: its indices first (the usual view), then its bands."""
    indices = [name for name, (a, b) in INDICES.items() if a in bands and b in bands]
    return indices + numeric_bands(bands)


def pixel_index(path: str, x: float, y: float) -> tuple[int, int]:
    """(row, col) of the pixel of ``path`` containing the point (in the raster's CRS); refuses a point outside."""
    with rasterio.open(path) as src:
        row, col = src.index(x, y)
        if not (0 <= row < src.height and 0 <= col < src.width):
            raise InputError(f"The point ({x:.1f}, {y:.1f}) is outside {path}.", "x")
    return int(row), int(col)


def read_pixel_series(path: str, x: float, y: float, mask_path: str | None = None) -> PixelSeries:
    """The pixel's values on every date of the stack; with a cloud-mask stack, which dates were cloudy.

    The mask is matched by date (a filtered or downloaded stack and its mask may hold different
    dates); a date the mask does not have is not marked.
    """
    row, col = pixel_index(path, x, y)
    stack = read_stack(path, Window(col, row, 1, 1))
    values = stack.data[:, :, 0, 0].astype(np.float64)
    cloudy = _cloudy_dates(mask_path, x, y, stack.dates) if mask_path else None
    return PixelSeries(stack.dates, stack.bands, values, row, col, cloudy)


def _cloudy_dates(mask_path: str, x: float, y: float, dates: list[dt.date]) -> np.ndarray:
    """(T,) bool: the dates the mask marks cloudy at the point (matched by date)."""
    row, col = pixel_index(mask_path, x, y)
    mask = read_stack(mask_path, Window(col, row, 1, 1))
    if CLOUD_BAND not in mask.bands:
        raise InputError(f"{mask_path} is not a cloud mask stack (no {CLOUD_BAND} band).", "mask_path")
    by_date = dict(zip(mask.dates, mask.band(CLOUD_BAND)[:, 0, 0]))
    return np.array([by_date.get(d) == 1 for d in dates], dtype=bool)


def read_pixel_class(map_path: str, x: float, y: float, probabilities_path: str | None = None) -> PixelClass:
    """The class at the point and, with the Classify step's probability raster, every class's probability."""
    row, col = pixel_index(map_path, x, y)
    window = Window(col, row, 1, 1)
    with rasterio.open(map_path) as src:
        class_id = int(src.read(1, window=window)[0, 0])
        text = src.tags().get(TAG_CLASSES)
    classes = ClassTable.from_json(text) if text else ClassTable(())
    name = "no data" if class_id == NODATA_CLASS else (classes.by_id(class_id).name if class_id in classes.ids else f"class {class_id}")
    probabilities: dict[str, float] = {}
    if probabilities_path:
        prow, pcol = pixel_index(probabilities_path, x, y)
        with rasterio.open(probabilities_path) as src:
            values = src.read(window=Window(pcol, prow, 1, 1))[:, 0, 0]
            names = [src.descriptions[i] or f"band {i + 1}" for i in range(src.count)]
        probabilities = {n: float(v) for n, v in zip(names, values) if np.isfinite(v)}
    return PixelClass(class_id, name, probabilities)
