"""The cloud model at a processing resolution: block means of the stack's pixels in, bilinear
probabilities back out (see clouds.py's docstring for why and bench/RESULTS.md for the agreement).

The block means are GDAL's AVERAGE (``io.overviews``), so a NaN-free date read from a stack's
overview gives exactly the values computed here from its full-resolution pixels.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.errors import InputError
from ..io import overviews
from ..io.rasters import Grid

# Metres; the coarsest resolution whose masks agree with the 10 m masks on ≥ 97 % of the pixels of
# every real scene measured (bench/RESULTS.md, "Cloud masks at a processing resolution").
DEFAULT_PROCESSING_RESOLUTION = 40.0
_METRES_PER_DEGREE = 111_320.0


def block_means(bands: np.ndarray, factor: int) -> np.ndarray:
    """(T, H, W, C) → (T, ⌈H/f⌉, ⌈W/f⌉, C) float32: per ``factor`` × ``factor`` block, the mean of its
    pixels whose bands are all finite (edge blocks are smaller); NaN where a block has none."""
    tbhw = np.moveaxis(bands, -1, 1)
    return block_means_of(tbhw, np.isfinite(tbhw).all(axis=1), factor)


def block_means_of(tbhw: np.ndarray, valid: np.ndarray, factor: int) -> np.ndarray:
    """Block means of a (T, C, H, W) array over its ``valid`` (T, H, W) pixels, as (T, h, w, C) float32
    (the model's pixel layout). Blocks start at the first row and column; the arithmetic is the
    stack overviews' (``overviews.block_means``), so a NaN-free date gives its overview's values."""
    means = overviews.block_means(tbhw, valid[:, np.newaxis], factor)
    return np.ascontiguousarray(np.moveaxis(means, 1, -1))


def _linear_taps(n_fine: int, factor: int, n_coarse: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbouring coarse cells and the weight of the second, per fine pixel: the centre of fine
    pixel i lies at (i + 0.5) / factor − 0.5 in coarse cells; beyond the outer centres the edge
    cell's value is held (as cv2.resize and GDAL's bilinear do)."""
    position = (np.arange(n_fine) + 0.5) / factor - 0.5
    first = np.floor(position).astype(np.int64)
    weight = (position - first).astype(np.float32)
    return np.clip(first, 0, n_coarse - 1), np.clip(first + 1, 0, n_coarse - 1), weight


def upsample_bilinear(coarse: np.ndarray, factor: int, height: int, width: int) -> np.ndarray:
    """(T, h, w) coarse values → (T, height, width) float32 by bilinear interpolation between cell centres.

    NaN cells (blocks without data) are left out: the value is the weighted mean of the finite
    neighbours (NaN where there is none), so the edge of a no-data area is not pulled towards 0.
    """
    r0, r1, rw = _linear_taps(height, factor, coarse.shape[1])
    c0, c1, cw = _linear_taps(width, factor, coarse.shape[2])
    known = np.isfinite(coarse)

    def interpolate(values: np.ndarray) -> np.ndarray:
        rows = values[:, r0] * (1 - rw)[:, np.newaxis] + values[:, r1] * rw[:, np.newaxis]
        return rows[:, :, c0] * (1 - cw) + rows[:, :, c1] * cw

    if known.all():  # the usual case: no weights to renormalise
        return interpolate(coarse.astype(np.float32, copy=False))
    total = interpolate(np.where(known, coarse, 0.0).astype(np.float32))
    weight = interpolate(known.astype(np.float32))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / weight, np.nan).astype(np.float32)


def resolution_factor(grid: Grid, processing_resolution: float) -> int:
    """Block size in pixels for running the model at ``processing_resolution`` metres on ``grid``
    (1 at or below the stack's own resolution; a geographic grid's degrees are taken at its centre)."""
    if not math.isfinite(float(processing_resolution)) or processing_resolution < 0:
        raise InputError(
            f"The processing resolution must be a number of metres ≥ 0 (0 or the stack's own resolution = full "
            f"resolution), got {processing_resolution}.",
            "processing_resolution",
        )
    pixel = max(abs(grid.transform.a), abs(grid.transform.e))
    if grid.crs is not None and grid.crs.is_geographic:
        latitude = (grid.bounds[1] + grid.bounds[3]) / 2
        pixel *= _METRES_PER_DEGREE * max(math.cos(math.radians(latitude)), 0.01)
    return max(1, int(round(float(processing_resolution) / pixel))) if pixel > 0 else 1


def overview_factors(grid: Grid) -> list[int]:
    """Overview factors a source stack on ``grid`` carries: the default processing resolution's
    (the cloud model reads it instead of every pixel) and four times coarser (for drawing); none
    when the stack is already that coarse."""
    factor = resolution_factor(grid, DEFAULT_PROCESSING_RESOLUTION)
    return [factor, 4 * factor] if factor > 1 else []


def upsampled(coarse: np.ndarray, valid: np.ndarray, factor: int) -> np.ndarray:
    """Probabilities of blocks → of the (T, H, W) ``valid`` pixels (bilinear; NaN elsewhere)."""
    probs = upsample_bilinear(coarse, factor, valid.shape[1], valid.shape[2])
    probs[~valid] = np.nan
    return probs
