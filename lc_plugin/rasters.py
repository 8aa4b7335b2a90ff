"""GeoTIFF files the whole chain exchanges: time stacks, class rasters, plain rasters.

A *time stack* is one GeoTIFF with T×B bands in date-major order (band ``t*B + b`` holds band
``b`` of date ``t``). Every band has a description like ``"2017-05-06 B04"`` and DATE/BAND
tags; the dataset tags ``LC_DATES`` and ``LC_BANDS`` (JSON lists) let any step rebuild the
(T, B, H, W) array. Float stacks use NaN as no data. A *class raster* is UInt8 with 0 = no
data, a colour table and the class table JSON in ``LC_CLASSES``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window

from .atomic import atomic_output
from .classes import NODATA_CLASS, ClassTable
from .errors import LandCoverError

TAG_DATES = "LC_DATES"
TAG_BANDS = "LC_BANDS"
TAG_CLASSES = "LC_CLASSES"
TAG_KIND = "LC_KIND"

_GTIFF_OPTIONS = {"tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "bigtiff": "if_safer"}


@dataclass
class Grid:
    """Where a raster lies: CRS, affine transform and size in pixels."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        x0, y0 = t.c, t.f
        x1, y1 = x0 + t.a * self.width, y0 + t.e * self.height
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    @classmethod
    def of(cls, path: str) -> Grid:
        with rasterio.open(path) as src:
            return cls(src.crs, src.transform, src.width, src.height)


@dataclass
class TimeStack:
    """A (T, B, H, W) array with its dates, band names and georeferencing."""

    data: np.ndarray
    dates: list[dt.date]
    bands: list[str]
    grid: Grid
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t, b = self.data.shape[:2]
        if t != len(self.dates) or b != len(self.bands):
            raise ValueError(f"data shape {self.data.shape} does not match {len(self.dates)} dates × {len(self.bands)} bands")

    def band(self, name: str) -> np.ndarray:
        """(T, H, W) view of one band."""
        return self.data[:, self.bands.index(name)]


def parse_date(text: str) -> dt.date:
    return dt.date.fromisoformat(text[:10])


def _stack_layout(src: rasterio.io.DatasetReader, path: str) -> tuple[list[dt.date], list[str]]:
    tags = src.tags()
    if TAG_DATES not in tags or TAG_BANDS not in tags:
        raise LandCoverError(
            f"{path} is not a time stack written by this plugin (no {TAG_DATES}/{TAG_BANDS} metadata); "
            "use the output of the Download, Cloud masks, Filter or Interpolation step."
        )
    dates = [parse_date(d) for d in json.loads(tags[TAG_DATES])]
    bands = list(json.loads(tags[TAG_BANDS]))
    if len(dates) * len(bands) != src.count:
        raise LandCoverError(f"{path}: {src.count} raster bands, but metadata says {len(dates)} dates × {len(bands)} bands.")
    return dates, bands


def read_stack(path: str, window: Window | None = None) -> TimeStack:
    """Read a whole time stack (or a window of it) as (T, B, H, W)."""
    with rasterio.open(path) as src:
        dates, bands = _stack_layout(src, path)
        data = src.read(window=window)
        transform = src.window_transform(window) if window is not None else src.transform
        tags = src.tags()
        grid = Grid(src.crs, transform, data.shape[2], data.shape[1])
        nodata = src.nodata
    data = data.reshape(len(dates), len(bands), grid.height, grid.width)
    if nodata is not None and not np.isnan(nodata) and data.dtype.kind == "f":
        data[data == nodata] = np.nan
    return TimeStack(data, dates, bands, grid, tags)


def read_stack_info(path: str) -> tuple[list[dt.date], list[str], Grid, dict[str, str]]:
    """Dates, bands, grid and tags of a stack without reading pixels."""
    with rasterio.open(path) as src:
        dates, bands = _stack_layout(src, path)
        return dates, bands, Grid(src.crs, src.transform, src.width, src.height), src.tags()


def write_stack(path: str, stack: TimeStack, kind: str = "timestack", nodata: float | None = None) -> None:
    """Write atomically; float data keeps NaN as no data unless ``nodata`` says otherwise."""
    t, b, h, w = stack.data.shape
    dtype = stack.data.dtype
    if nodata is None and dtype.kind == "f":
        nodata = float("nan")
    tags = dict(stack.tags)
    tags.update({TAG_DATES: json.dumps([d.isoformat() for d in stack.dates]), TAG_BANDS: json.dumps(stack.bands), TAG_KIND: kind})
    profile = dict(
        driver="GTiff", width=w, height=h, count=t * b, dtype=dtype, crs=stack.grid.crs,
        transform=stack.grid.transform, nodata=nodata, **_GTIFF_OPTIONS,
    )
    if dtype.kind == "f":
        profile["predictor"] = 3
    with atomic_output(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.update_tags(**tags)
            for ti, date in enumerate(stack.dates):
                for bi, band in enumerate(stack.bands):
                    idx = ti * b + bi + 1
                    dst.write(stack.data[ti, bi], idx)
                    dst.set_band_description(idx, f"{date.isoformat()} {band}")
                    dst.update_tags(idx, DATE=date.isoformat(), BAND=band)


def write_raster(
    path: str,
    data: np.ndarray,
    grid: Grid,
    nodata: float | None = None,
    tags: dict[str, str] | None = None,
    descriptions: list[str] | None = None,
    colormap: dict[int, tuple[int, int, int, int]] | None = None,
) -> None:
    """Write a (H, W) or (B, H, W) array atomically as a tiled, compressed GeoTIFF."""
    arr = data[np.newaxis] if data.ndim == 2 else data
    profile = dict(
        driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0], dtype=arr.dtype,
        crs=grid.crs, transform=grid.transform, nodata=nodata, **_GTIFF_OPTIONS,
    )
    with atomic_output(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr)
            if tags:
                dst.update_tags(**tags)
            for i, text in enumerate(descriptions or [], start=1):
                dst.set_band_description(i, text)
            if colormap:
                dst.write_colormap(1, colormap)


def write_class_raster(path: str, labels: np.ndarray, grid: Grid, classes: ClassTable, tags: dict[str, str] | None = None) -> None:
    """UInt8 class raster, 0 = no data, with the class colours and table embedded."""
    all_tags = {TAG_CLASSES: classes.to_json(), TAG_KIND: "classes", **(tags or {})}
    write_raster(path, labels.astype(np.uint8), grid, nodata=NODATA_CLASS, tags=all_tags, colormap=classes.color_table())


def read_class_raster(path: str) -> tuple[np.ndarray, ClassTable | None, Grid]:
    """Labels (H, W), the embedded class table if any, and the grid."""
    with rasterio.open(path) as src:
        labels = src.read(1)
        text = src.tags().get(TAG_CLASSES)
        grid = Grid(src.crs, src.transform, src.width, src.height)
    return labels, (ClassTable.from_json(text) if text else None), grid


def read_class_table(path: str) -> ClassTable | None:
    """The class table embedded in a class raster or stack, without reading pixels."""
    with rasterio.open(path) as src:
        text = src.tags().get(TAG_CLASSES)
    return ClassTable.from_json(text) if text else None
