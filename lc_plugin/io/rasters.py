"""GeoTIFF files the whole chain exchanges: time stacks, class rasters, plain rasters.

A *time stack* is one GeoTIFF with T×B bands in date-major order (band ``t*B + b`` holds band
``b`` of date ``t``). Every band has a description like ``"2017-05-06 B04"`` and DATE/BAND
tags; the dataset tags ``LC_DATES`` and ``LC_BANDS`` (JSON lists; plain comma-separated lists
are read too, and a file with only the band descriptions is also a stack) let any step rebuild
the (T, B, H, W) array. Float stacks use NaN as no data. A *class raster* is UInt8 with 0 = no
data, a colour table and the class table JSON in ``LC_CLASSES``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window

from ..core.atomic import atomic_output
from ..core.classes import NODATA_CLASS, ClassTable
from ..core.errors import InputError
from .legend_files import write_legend_files
from .overviews import OverviewSpill

TAG_DATES = "LC_DATES"
TAG_BANDS = "LC_BANDS"
TAG_CLASSES = "LC_CLASSES"
TAG_KIND = "LC_KIND"

FILE_BLOCK_BYTES = 512 * 1024 * 1024  # input bytes read per window by the file-level steps
_TILE = 256  # the GeoTIFF tile size below: windows aligned to it decompress each tile once
_GTIFF_OPTIONS = {"tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "bigtiff": "if_safer"}
# The chain's intermediate stacks, by kind, as measured by bench/bench_encoding.py (RESULTS.md,
# "Intermediate encodings"): on real reflectance, deflate without the floating-point predictor
# stores an interpolated stack in 0.48 × its raw size instead of 0.69 × and reads back ~3× faster
# (it is read again by Train, Classify and the tile export); a cloud mask is written ~5× faster by
# ZSTD at the same (tiny) size. Both lossless, both read by GDAL 3.6 and QGIS 3.22.
_KIND_OPTIONS = {
    "interpolated": {"compress": "deflate", "predictor": 1},
    "cloudmask": {"compress": "zstd", "zstd_level": 1},
}


def _encoding(kind: str, dtype: np.dtype) -> dict:
    """Creation options of a stack of this kind (floating-point predictor for other float stacks)."""
    options = dict(_GTIFF_OPTIONS)
    if dtype.kind == "f":
        options["predictor"] = 3
    options.update(_KIND_OPTIONS.get(kind, {}))
    return options


# How far (in pixels) two transforms may differ and still be the same grid (see ``Grid.difference``).
GRID_TOLERANCE_PX = 1e-3


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

    def difference(self, other: Grid) -> str | None:
        """How ``other`` lies differently, in words; None on the same grid. Transforms may differ by up to
        ``GRID_TOLERANCE_PX`` of a pixel: the float rounding of files other tools wrote (a raster calculator,
        a warp) must not make the same grid 'different'."""
        if (self.width, self.height) != (other.width, other.height):
            return f"size {self.width}×{self.height} vs {other.width}×{other.height} pixels"
        if self.crs != other.crs:
            return f"CRS {self.crs} vs {other.crs}"
        tol = GRID_TOLERANCE_PX * max(abs(self.transform.a), abs(self.transform.e), 1e-12)
        if any(abs(x - y) > tol for x, y in zip(self.transform[:6], other.transform[:6])):
            return f"transform {tuple(self.transform)[:6]} vs {tuple(other.transform)[:6]}"
        return None

    def same_as(self, other: Grid) -> bool:
        """Same size, CRS and (within ``GRID_TOLERANCE_PX``) transform: pixels can be compared one to one."""
        return self.difference(other) is None

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


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DESCRIPTION = re.compile(r"(\d{4}-\d{2}-\d{2})\s+(\S+)")
_EXPECTED = (
    "a time stack needs LC_DATES/LC_BANDS metadata (JSON lists or plain comma-separated lists, e.g. "
    "LC_DATES=2023-05-01,2023-05-11 and LC_BANDS=B02,B04,B08) or band descriptions 'YYYY-MM-DD BAND' "
    "(e.g. '2023-05-01 B04'), all bands of the first date first; use the output of the Download, Cloud masks, "
    "Filter or Interpolation step, or give the file one of these"
)


def parse_tag_list(text: str) -> list[str]:
    """A list as a person writes it: a JSON list of strings, or names separated by commas, semicolons
    or spaces (brackets and quotes around them are ignored)."""
    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [v.strip() for v in value]
        text = text.strip("[]")
    parts = (p.strip().strip("'\"") for p in re.split(r"[,;\s]+", text))
    return [p for p in parts if p]


def _parse_dates(values: list[str], path: str) -> list[dt.date]:
    try:
        if all(_DATE.match(v) for v in values):
            return [parse_date(v) for v in values]
    except ValueError:
        pass
    bad = next((v for v in values if not _DATE.match(v)), values[0] if values else "")
    raise InputError(f"{path}: {TAG_DATES} holds {bad!r}, which is not a date YYYY-MM-DD; {_EXPECTED}.")


def _layout_from_descriptions(src: rasterio.io.DatasetReader, path: str) -> tuple[list[dt.date], list[str]]:
    """Dates and bands from band descriptions 'YYYY-MM-DD BAND' in date-major order."""
    matches = [_DESCRIPTION.fullmatch((d or "").strip()) for d in src.descriptions]
    found = [m for m in matches if m is not None]
    if not found or len(found) != len(matches):
        why = f"no {TAG_DATES}/{TAG_BANDS} metadata, and not every band description is 'YYYY-MM-DD BAND'"
        raise InputError(f"{path} is not a time stack ({why}): {_EXPECTED}.")
    dates = list(dict.fromkeys(m.group(1) for m in found))
    bands = list(dict.fromkeys(m.group(2) for m in found))
    layout = [f"{d} {b}" for d in dates for b in bands]
    if [f"{m.group(1)} {m.group(2)}" for m in found] != layout:
        raise InputError(
            f"{path}: its band descriptions are not every band of every date in date-major order "
            f"({', '.join(layout[:3])}, …); {_EXPECTED}."
        )
    return _parse_dates(dates, path), bands


def stack_layout(src: rasterio.io.DatasetReader, path: str) -> tuple[list[dt.date], list[str]]:
    """The dates and band names of a time stack open in ``src``, from its tags or band descriptions."""
    tags = src.tags()
    if TAG_DATES in tags and TAG_BANDS in tags:
        dates = _parse_dates(parse_tag_list(tags[TAG_DATES]), path)
        bands = parse_tag_list(tags[TAG_BANDS])
        if not dates or not bands:
            raise InputError(f"{path}: {TAG_DATES} or {TAG_BANDS} is empty; {_EXPECTED}.")
    else:
        dates, bands = _layout_from_descriptions(src, path)
    if len(dates) * len(bands) != src.count:
        raise InputError(f"{path}: {src.count} raster bands, but metadata says {len(dates)} dates × {len(bands)} bands.")
    return dates, bands


def read_stack(path: str, window: Window | None = None) -> TimeStack:
    """Read a whole time stack (or a window of it) as (T, B, H, W)."""
    with rasterio.open(path) as src:
        dates, bands = stack_layout(src, path)
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
        dates, bands = stack_layout(src, path)
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
        transform=stack.grid.transform, nodata=nodata, **_encoding(kind, dtype),
    )
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
    """UInt8 class raster, 0 = no data, with the class colours and table embedded and the legend beside it
    (``.aux.xml`` category names, ``.qml`` style: see legend.py)."""
    all_tags = {TAG_CLASSES: classes.to_json(), TAG_KIND: "classes", **(tags or {})}
    write_raster(path, labels.astype(np.uint8), grid, nodata=NODATA_CLASS, tags=all_tags, colormap=classes.color_table())
    write_legend_files(path, classes)


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


class StackWriter:
    """A time stack written window by window, so no step has to hold its whole output.

    Same file layout as ``write_stack`` (date-major bands, descriptions, tags, NaN/nodata), but
    band-interleaved like the download step's stacks (reading some dates or bands touches only
    their tiles); write tile-aligned windows (``file_windows``). Written to a temporary file that is renamed only when the ``with`` block ends without an
    exception::

        with StackWriter(path, dates, bands, grid, tags, kind="interpolated") as out:
            out.write(block, window)  # block: (T, B, h, w)

    ``overviews``: factors of internal AVERAGE overviews of a float stack, computed from the blocks
    as they are written (``overviews.OverviewSpill``; source stacks get ``overview_factors(grid)``).
    """

    def __init__(
        self,
        path: str,
        dates: list[dt.date],
        bands: list[str],
        grid: Grid,
        tags: dict[str, str] | None = None,
        *,
        kind: str = "timestack",
        dtype: str | np.dtype = "float32",
        nodata: float | None = None,
        overviews: Sequence[int] = (),
    ) -> None:
        self.path, self.dates, self.bands, self.grid = path, list(dates), list(bands), grid
        self.tags, self.kind, self.dtype = dict(tags or {}), kind, np.dtype(dtype)
        self.nodata = float("nan") if nodata is None and self.dtype.kind == "f" else nodata
        # Block means skip NaN only: a stack with a numeric nodata value gets no overviews.
        nan_nodata = self.nodata is None or (isinstance(self.nodata, float) and np.isnan(self.nodata))
        self.overviews = list(overviews) if self.dtype.kind == "f" and nan_nodata else []
        # Set while the writer is open (``__enter__`` to ``__exit__``): the atomic output's context, its
        # temporary path, the rasterio dataset (untyped) and the overview levels being collected.
        self._ctx: Any = None
        self._tmp = ""
        self._dst: Any = None
        self._spill: OverviewSpill | None = None

    def __enter__(self) -> StackWriter:
        t, b = len(self.dates), len(self.bands)
        profile = dict(
            driver="GTiff", width=self.grid.width, height=self.grid.height, count=t * b, dtype=self.dtype,
            crs=self.grid.crs, transform=self.grid.transform, nodata=self.nodata, interleave="band", **_encoding(self.kind, self.dtype),
        )
        self._ctx = atomic_output(self.path)
        tmp = self._tmp = self._ctx.__enter__()
        try:
            if self.overviews:
                self._spill = OverviewSpill(tmp, self.overviews, t * b, self.grid.height, self.grid.width)
            self._dst = rasterio.open(tmp, "w", **profile)
            tags = dict(self.tags)
            tags.update(
                {TAG_DATES: json.dumps([d.isoformat() for d in self.dates]), TAG_BANDS: json.dumps(self.bands), TAG_KIND: self.kind}
            )
            self._dst.update_tags(**tags)
            for ti, date in enumerate(self.dates):
                for bi, band in enumerate(self.bands):
                    idx = ti * b + bi + 1
                    self._dst.set_band_description(idx, f"{date.isoformat()} {band}")
                    self._dst.update_tags(idx, DATE=date.isoformat(), BAND=band)
        except BaseException as exc:
            if self._dst is not None:
                self._dst.close()
            if self._spill is not None:
                self._spill.remove()
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def write(self, data: np.ndarray, window: Window | None = None, dates: slice | None = None) -> None:
        """Write a (T, B, h, w) block at ``window`` (whole raster when None); ``dates`` picks a run
        of dates (a slice) when the block holds only some of them."""
        t0 = 0 if dates is None else (dates.start or 0)
        n_dates, n_bands = data.shape[:2]
        if n_bands != len(self.bands) or t0 + n_dates > len(self.dates):
            raise ValueError(f"block of shape {data.shape} does not fit {len(self.dates)} dates × {len(self.bands)} bands")
        indexes = [(t0 + t) * n_bands + b + 1 for t in range(n_dates) for b in range(n_bands)]
        flat = data.reshape(n_dates * n_bands, *data.shape[2:]).astype(self.dtype, copy=False)
        self._dst.write(flat, indexes=indexes, window=window)
        if self._spill is not None:
            self._spill.add(flat, indexes, window)

    def set_tags(self, **tags: str) -> None:
        """Dataset tags known only after the pixels (e.g. statistics)."""
        self._dst.update_tags(**tags)

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._dst.close()
        error = None
        if self._spill is not None:
            try:
                if exc_type is None:
                    self._spill.write_into(self._tmp)
            except BaseException as failed:  # no overviews, no file: the temporary goes too
                error = failed
            finally:
                self._spill.remove()
        if error is not None:
            self._ctx.__exit__(type(error), error, error.__traceback__)
            raise error
        return bool(self._ctx.__exit__(exc_type, exc, tb))


def file_windows(height: int, width: int, bytes_per_pixel: int, budget_bytes: int = FILE_BLOCK_BYTES) -> list[Window]:
    """Tile-aligned windows (256 rows × a multiple of 256 columns) whose input fits ``budget_bytes``.

    Aligned windows decompress every GeoTIFF tile once, and a bounded window keeps a step's
    memory independent of the patch size.
    """
    rows = min(_TILE, max(height, 1))
    cols = max(1, budget_bytes // max(1, bytes_per_pixel * rows))
    cols = width if cols >= width else max(_TILE, cols - cols % _TILE)
    return [
        Window(c, r, min(cols, width - c), min(rows, height - r)) for r in range(0, height, rows) for c in range(0, width, cols)
    ]


def tile_starts(length: int, size: int, overlap: int = 0) -> list[int]:
    """Tile offsets along one axis: a stride of ``size - overlap``, the last tile shifted inward to end
    flush with the edge (no padding); one tile at 0 when the axis is not longer than a tile."""
    if length <= size:
        return [0]
    return list(range(0, length - size, size - overlap)) + [length - size]
