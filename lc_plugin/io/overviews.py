"""Block means of a stack: the internal overviews its writer adds, and how the cloud model reads them.

A source time stack (Download, Build stack) carries internal overviews: QGIS draws a large stack
from them instead of decoding every tile, and the cloud model at a processing resolution
(clouds.py) reads the level whose blocks it needs instead of decoding every 10 m pixel of ten
bands only to average them.

Every level holds GDAL's AVERAGE of ``factor`` × ``factor`` blocks that start at the first row
and column (the last row and column of blocks cover what is left): per band, the mean of its
finite pixels, summed in float64 in row-major order and rounded to float32; NaN where a block
has none. On a grid whose size is a multiple of the factor this is bit for bit what
``gdaladdo -r average`` writes (tests/test_overviews.py; on other sizes GDAL stretches its blocks
to fit, ours keep their size and the last ones are smaller). ``block_means`` below computes the
same numbers from full-resolution pixels, so reading a level or computing it gives identical values.

A block mean equals the cloud model's block mean (the mean of the pixels whose bands are all
finite) only where no pixel of the block lacks a band, so the writer also records which bands
hold a NaN anywhere (tag ``LC_OVERVIEWS``); a date whose bands the model needs are all NaN-free is
read from the overview, the others at full resolution.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import rasterio
from rasterio.windows import Window

TAG_OVERVIEWS = "LC_OVERVIEWS"


def block_sums(values: np.ndarray, valid: np.ndarray | None, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 sums and counts of the ``valid`` pixels of ``factor`` × ``factor`` blocks over the last two
    axes of ``values`` (``valid``: same shape or broadcastable; None = all valid).

    Each block is summed in row-major order, GDAL's order, so the float32 mean of a sum is GDAL's AVERAGE.
    """
    height, width = values.shape[-2:]
    if valid is not None and valid.all():
        valid = None
    pad = ((0, 0),) * (values.ndim - 2) + ((0, -height % factor), (0, -width % factor))
    padded = bool(pad[-2][1] or pad[-1][1])
    data = np.pad(values, pad) if padded else values
    out_shape = data.shape[:-2] + (data.shape[-2] // factor, data.shape[-1] // factor)
    if valid is None and not padded:
        counts = np.full(out_shape, factor * factor, dtype=np.int32)
    else:
        ok = np.ones(values.shape[-2:], dtype=bool) if valid is None else valid
        ok = np.pad(ok, ((0, 0),) * (ok.ndim - 2) + pad[-2:]) if padded else ok
        if valid is not None:
            data = np.where(ok, data, np.float32(0))
        counts = np.zeros(ok.shape[:-2] + out_shape[-2:], dtype=np.int32)
        for i in range(factor):
            for j in range(factor):
                counts += ok[..., i::factor, j::factor]
        counts = np.broadcast_to(counts, out_shape)
    sums = np.zeros(out_shape, dtype=np.float64)
    for i in range(factor):
        for j in range(factor):
            sums += data[..., i::factor, j::factor]
    return sums, counts


def block_means(values: np.ndarray, valid: np.ndarray | None, factor: int) -> np.ndarray:
    """Means of the ``valid`` pixels of ``factor`` × ``factor`` blocks of the last two axes, float32,
    NaN where a block has none (``block_sums``: GDAL's AVERAGE when ``valid`` is the finite pixels)."""
    sums, counts = block_sums(values, valid, factor)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).astype(np.float32)


class OverviewSpill:
    """Overview levels of a stack being written window by window, kept in temporary .npy files beside
    it (1/16 of the stack for factor 4) until ``write_into`` copies them into the finished GeoTIFF.

    A window that does not start on a block of the largest factor, or stops short of the raster's
    edge inside one, cannot be averaged on its own: the stack is then written without overviews.
    """

    def __init__(self, tmp_path: str, factors: Sequence[int], count: int, height: int, width: int) -> None:
        self.factors = sorted({int(f) for f in factors if int(f) > 1})
        self.height, self.width = height, width
        self.paths = [f"{tmp_path}.ov{f}.npy" for f in self.factors]
        self.levels = [
            np.lib.format.open_memmap(p, mode="w+", dtype=np.float32, shape=(count, -(-height // f), -(-width // f)))
            for p, f in zip(self.paths, self.factors)
        ]
        self.nan_bands: set[int] = set()
        self.usable = bool(self.factors)

    def add(self, flat: np.ndarray, indexes: Sequence[int], window: Window | None) -> None:
        """Average a (n, h, w) block written at ``window`` into raster bands ``indexes`` (1-based)."""
        if not self.usable:
            return
        col, row = (0, 0) if window is None else (int(window.col_off), int(window.row_off))
        h, w = flat.shape[1:]
        top = self.factors[-1]
        if col % top or row % top or (h % top and row + h != self.height) or (w % top and col + w != self.width):
            self.usable = False
            return
        finite = np.isfinite(flat)
        nan_free = finite.all(axis=(1, 2))
        self.nan_bands.update(int(i) for i, ok in zip(indexes, nan_free) if not ok)
        valid = None if nan_free.all() else finite
        for level, f in zip(self.levels, self.factors):
            means = block_means(flat, valid, f)
            r, c = row // f, col // f
            level[np.asarray(indexes) - 1, r : r + means.shape[1], c : c + means.shape[2]] = means

    def write_into(self, path: str) -> None:
        """Add the levels to the closed GeoTIFF ``path`` as internal overviews, and the tag that says so."""
        if not self.usable:
            return
        from osgeo import gdal

        ds = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_UPDATE)
        if ds is None:
            raise OSError(f"GDAL cannot reopen {path} to add its overviews: {gdal.GetLastErrorMsg()}")
        try:
            # "NONE": GDAL makes the overview directories and leaves their pixels to us (it makes none
            # that would be smaller than a pixel or so: a tiny stack keeps fewer levels).
            failed = ds.BuildOverviews("NONE", self.factors) != 0
            first = ds.GetRasterBand(1)
            made = [(first.GetOverview(k).YSize, first.GetOverview(k).XSize) for k in range(first.GetOverviewCount())]
            written = [(made.index(lv.shape[1:]), f, lv) for f, lv in zip(self.factors, self.levels) if lv.shape[1:] in made]
            for b in range(ds.RasterCount):
                band = ds.GetRasterBand(b + 1)
                for k, _, level in written:
                    failed = failed or band.GetOverview(k).WriteArray(np.asarray(level[b])) != 0
            if failed:
                raise OSError(f"GDAL could not write the overviews of {path}: {gdal.GetLastErrorMsg()}")
            if not written:
                return
            info = {"resampling": "AVERAGE", "factors": [f for _, f, _ in written], "nan_bands": sorted(self.nan_bands)}
            ds.SetMetadataItem(TAG_OVERVIEWS, json.dumps(info))
        finally:
            ds = None

    def remove(self) -> None:
        """Drop the temporary files (also after a failed or cancelled write)."""
        self.levels = []
        for p in self.paths:
            try:
                os.remove(p)
            except OSError:
                pass


def average_level(src: rasterio.io.DatasetReader, factor: int) -> int | None:
    """Which overview level of ``src`` holds this writer's block means at ``factor`` (None: none does)."""
    info = _overview_info(src)
    if info is None or factor not in info["factors"]:
        return None
    shape = (-(-src.height // factor), -(-src.width // factor))
    for level in range(len(src.overviews(1))):
        with rasterio.open(src.name, overview_level=level) as ov:
            if ov.shape == shape:
                return level
    return None


def nan_bands(src: rasterio.io.DatasetReader) -> set[int]:
    """Raster bands (1-based) that hold a NaN somewhere, as the writer recorded them."""
    info = _overview_info(src)
    return set(info["nan_bands"]) if info else set()


def _overview_info(src: rasterio.io.DatasetReader) -> dict | None:
    """The writer's ``LC_OVERVIEWS`` tag of a GeoTIFF, or None (another writer's overviews, or none)."""
    text = src.tags().get(TAG_OVERVIEWS)
    if src.driver != "GTiff" or not text:
        return None
    try:
        info = json.loads(text)
        return {"factors": [int(f) for f in info["factors"]], "nan_bands": [int(b) for b in info["nan_bands"]]}
    except (ValueError, KeyError, TypeError):
        return None
