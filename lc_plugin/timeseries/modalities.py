"""A second, coarser modality (e.g. Sentinel-3 OLCI at 300 m) beside the primary one (Sentinel-2 at 10 m).

Each modality keeps its own resolution: the coarse tile under a fine tile covers the same ground, so a
fine tile of ``n`` pixels of ``r1`` metres has a coarse tile of ``n·r1/r2`` pixels of ``r2`` metres, and
that must be a whole number (e.g. 10 m tiles of 30, 60, 120 … pixels for 300 m). Coarse pixel (i, j) of
a tile whose top-left corner is (x0, y0) is the coarse stack's pixel under the point
(x0 + (j + ½)·r2, y0 − (i + ½)·r2); when the tile's corner falls on the coarse grid (the tile store's
tiles do when patch and coarse grid share their origin and the stride is a multiple of the ratio) these
are exactly the coarse pixels, otherwise the nearest ones. NaN where the coarse stack has no data or
does not reach.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import InputError
from ..io.rasters import Grid


def pixel_size(grid: Grid) -> float:
    """The pixel width of a north-up grid (its resolution as the metadata records it)."""
    return _pixel(grid)[0]


def _pixel(grid: Grid) -> tuple[float, float]:
    """(width, height) of a pixel of a north-up grid."""
    t = grid.transform
    if t.b or t.d or t.a <= 0 or t.e >= 0:
        raise ValueError(f"the transform {tuple(t)[:6]} is not north-up")
    return float(t.a), float(-t.e)


def coarse_tile_size(tile_size: int, fine: Grid, coarse: Grid, argument: str) -> int:
    """Pixels of the coarse tile covering a fine tile; InputError (naming the caller's ``argument`` for the
    coarse stack) when the tile is not a whole number of coarse pixels."""
    try:
        (fx, fy), (cx, cy) = _pixel(fine), _pixel(coarse)
    except ValueError as exc:
        raise InputError(f"The second modality needs north-up grids ({exc}).", argument) from exc
    if fine.crs != coarse.crs:
        raise InputError(f"The second-modality stack is in {coarse.crs}, the primary stack in {fine.crs}; give both in one CRS.", argument)
    nx, ny = tile_size * fx / cx, tile_size * fy / cy
    if nx < 1 or abs(nx - round(nx)) > 1e-6 or abs(ny - nx) > 1e-6:
        step = int(round(cx * 1000)) // np.gcd(int(round(fx * 1000)), int(round(cx * 1000)))  # smallest whole tile, in mm units
        raise InputError(
            f"A {tile_size}-pixel tile at {fx:g} m covers {tile_size * fx:g} m, not a whole number of {cx:g} m pixels of the "
            f"second modality (the same number along both axes); use a tile size that is a multiple of {step:g} pixels.",
            argument,
        )
    return int(round(nx))


def coarse_tiles(data: np.ndarray, grid: Grid, corners: np.ndarray, size: int) -> np.ndarray:
    """(N, T, C, size, size) float32 coarse tiles whose top-left corners are ``corners`` (N, 2) map (x, y)."""
    px, py = _pixel(grid)
    t, c, height, width = data.shape
    cols = np.floor((corners[:, 0, None] + (np.arange(size) + 0.5) * px - grid.transform.c) / px).astype(np.int64)  # (N, size)
    rows = np.floor((grid.transform.f - corners[:, 1, None] + (np.arange(size) + 0.5) * py) / py).astype(np.int64)
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]  # (N, size, size)
    picked = data[:, :, np.clip(rows, 0, height - 1)[:, :, None], np.clip(cols, 0, width - 1)[:, None, :]]  # (T, C, N, size, size)
    out = np.moveaxis(picked, 2, 0).astype(np.float32, copy=True)
    out[~np.broadcast_to(inside[:, None, None], out.shape)] = np.nan
    return out


def tile_corners(grid: Grid, offsets: np.ndarray) -> np.ndarray:
    """Map (x, y) of the top-left corners of fine tiles at pixel ``offsets`` (N, 2) (row, col) of ``grid``."""
    t = grid.transform
    return np.stack([t.c + offsets[:, 1] * t.a, t.f + offsets[:, 0] * t.e], axis=1).astype(np.float64)
