"""Cloud masks for a time stack: s2cloudless on L1C bands, or the L2A scene classification (SCL).

s2cloudless is Sentinel Hub's per-pixel LightGBM detector; we run its own model and its own
post-processing (disk averaging of the probabilities, threshold, disk dilation) so a mask made
here is exactly the mask ``S2PixelCloudDetector.get_cloud_masks`` makes with the same
parameters. It needs the ten L1C bands below, B10 (cirrus) included; L2A products have no
B10, so for L2A stacks the SCL band is the cloud source instead.

Processing resolution: the model can run on coarser pixels (means of ``factor`` × ``factor``
blocks of 10 m pixels), its probabilities upsampled bilinearly back to the stack's grid, and the
same averaging, threshold and dilation then applied at the stack's resolution. Sentinel Hub runs
the same model at 160 m in production; the model time falls with the square of the factor, and
the masks differ from the 10 m ones only along cloud edges (agreement measured on real scenes by
bench/bench_cloud_resolution.py). At the stack's own resolution (factor 1) the result is exactly
s2cloudless's. The block means are GDAL's AVERAGE (io/overviews.py): a stack written by Download
carries them as internal overviews, and dates without no-data pixels are read from there instead
of decoding ten bands of every pixel (identical values, 1/16 of the pixels at 40 m).

Output: a cloud-mask stack (band ``CLM``, uint8: 1 cloud, 0 clear, 255 no data) with the same
dates and grid as the input, and optionally the probabilities (band ``CLP``, float32, NaN = no
data).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import rasterio

from ..core.atomic import check_not_input
from ..core.deps import require
from ..core.errors import DataError, InputError, LandCoverError
from ..core.monitor import Monitor, ensure_monitor, run_threaded
from ..io import overviews
from ..io.rasters import Grid, TimeStack, read_stack_info, stack_layout, write_stack
from .trees import BinnedForest, forest_from_lightgbm, predict_proba
from .trees import available as trees_available

S2CLOUDLESS_BANDS = ["B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12"]
# Sen2Cor SCL classes: 3 cloud shadow, 8 cloud medium probability, 9 cloud high probability,
# 10 thin cirrus. (0 is "no data"; 1 saturated/defective is left to the user.)
DEFAULT_SCL_CLASSES = (3, 8, 9, 10)

MASK_BAND = "CLM"
PROB_BAND = "CLP"
MASK_CLEAR, MASK_CLOUD, MASK_NODATA = 0, 1, 255
METHODS = ("auto", "s2cloudless", "scl")

# Pixels handed to the model at once, and pixels of one block of dates read from a file:
# bounds memory (10 float32 bands per pixel) while keeping progress reports frequent.
_PREDICT_CHUNK = 1 << 18
ENGINES = ("auto", "numba", "onnxruntime", "lightgbm")
_READ_BUDGET_PIXELS = 1 << 22
# Metres; the coarsest resolution whose masks agree with the 10 m masks on ≥ 97 % of the pixels of
# every real scene measured (bench/RESULTS.md, "Cloud masks at a processing resolution").
DEFAULT_PROCESSING_RESOLUTION = 40.0
_METRES_PER_DEGREE = 111_320.0


@functools.lru_cache(maxsize=8)
def _detector(threshold: float = 0.4, average_over: int = 4, dilation_size: int = 2):
    """One s2cloudless detector per parameter set; its LightGBM model loads lazily, once."""
    s2cloudless = require("s2cloudless")
    return s2cloudless.S2PixelCloudDetector(threshold=threshold, average_over=average_over, dilation_size=dilation_size, all_bands=False)


def _cache_dir() -> str:
    """Where the converted model is kept between runs (``LC_PLUGIN_CACHE`` or the user cache)."""
    base = os.environ.get("LC_PLUGIN_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "lc-plugin")
    return base


@functools.lru_cache(maxsize=1)
def _onnx_cloud_session():
    """s2cloudless's LightGBM model as an onnxruntime session (its trees, unchanged).

    onnxruntime walks the same 170 trees about twice as fast as LightGBM's own predict on the
    same threads. Converting takes ~10 s, so the ONNX file is cached, keyed by the model file's
    hash and the converter version; a damaged cache file is simply rebuilt.
    """
    ort = require("onnxruntime")
    onnxmltools = require("onnxmltools")
    data_types = require("onnxmltools.convert.common.data_types")
    detector = _detector()
    with open(detector.model_filename, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    path = os.path.join(_cache_dir(), f"s2cloudless-{digest}-onnxmltools{onnxmltools.__version__}.onnx")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = os.cpu_count() or 1
    # Idle worker threads sleep instead of spinning: on a busy machine (QGIS, other jobs) spinning
    # threads steal the cores the work needs (measured: 2× slower under load), and idle it costs little.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if os.path.isfile(path):
        try:
            return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception:  # a truncated or foreign file: convert again
            pass
    onx = onnxmltools.convert_lightgbm(
        detector.classifier.classifier,
        initial_types=[("bands", data_types.FloatTensorType([None, len(S2CLOUDLESS_BANDS)]))],
        zipmap=False,
        target_opset=15,
    )
    data = onx.SerializeToString()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.partial"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:  # read-only home: keep it in memory only
        pass
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=1)
def _binned_cloud_forest() -> BinnedForest:
    """s2cloudless's model file as the node tables of the numba tree kernel (its trees, unchanged)."""
    with open(_detector().model_filename, encoding="utf-8") as f:
        return forest_from_lightgbm(f.read())


def _choose_engine(engine: str) -> str:
    engine = (engine or "auto").lower()
    if engine not in ENGINES:
        raise InputError(f"Unknown cloud-model engine '{engine}'; choose one of {', '.join(ENGINES)}.", "engine")
    if engine == "auto":
        if trees_available():
            return "numba"
        try:
            require("onnxruntime")
            require("onnxmltools")
            return "onnxruntime"
        except LandCoverError:
            return "lightgbm"
    return engine


def _predict_chunk(pixels: np.ndarray, engine: str) -> np.ndarray:
    """Cloud probability of (n, 10) float32 C-contiguous pixels."""
    if engine == "numba":
        return predict_proba(_binned_cloud_forest(), pixels)
    if engine == "onnxruntime":
        session = _onnx_cloud_session()
        proba = session.run(["probabilities"], {"bands": pixels})[0]
        return proba[:, 1]
    booster = _detector().classifier.classifier
    return booster.predict(pixels, num_threads=os.cpu_count() or 0)


def _check_postprocessing(threshold: float, average_over: int, dilation_size: int) -> None:
    if not 0.0 <= float(threshold) <= 1.0:
        raise InputError(f"The cloud probability threshold must be between 0 and 1, got {threshold}.", "threshold")
    if int(average_over) != average_over or average_over < 0:
        raise InputError(
            f"The averaging disk radius must be a whole number of pixels ≥ 0 (0 = no averaging), got {average_over}.",
            "average_over",
        )
    if int(dilation_size) != dilation_size or dilation_size < 0:
        raise InputError(
            f"The dilation disk radius must be a whole number of pixels ≥ 0 (0 = no dilation), got {dilation_size}.",
            "dilation_size",
        )


def block_means(bands: np.ndarray, factor: int) -> np.ndarray:
    """(T, H, W, C) → (T, ⌈H/f⌉, ⌈W/f⌉, C) float32: per ``factor`` × ``factor`` block, the mean of its
    pixels whose bands are all finite (edge blocks are smaller); NaN where a block has none."""
    tbhw = np.moveaxis(bands, -1, 1)
    return _block_means(tbhw, np.isfinite(tbhw).all(axis=1), factor)


def _block_means(tbhw: np.ndarray, valid: np.ndarray, factor: int) -> np.ndarray:
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


def s2cloudless_probabilities(
    bands: np.ndarray, monitor: Monitor | None = None, *, engine: str = "auto", factor: int = 1
) -> np.ndarray:
    """Cloud probability per pixel from s2cloudless's model.

    ``bands``: (T, H, W, 10) TOA reflectance (0–1) in ``S2CLOUDLESS_BANDS`` order. Returns
    (T, H, W) float32; NaN where any band is NaN (those pixels never reach the model, which
    gives the same probabilities elsewhere as feeding them zeros would: the model is per pixel).
    ``engine``: "numba" (the model's trees walked by lc_plugin.timeseries.trees' compiled kernel, the fast
    path: bit-identical to LightGBM), "onnxruntime" (the trees converted to ONNX), "lightgbm"
    (s2cloudless's own booster) or "auto" (the first of these that is installed); they agree to ~1e-6.
    ``factor`` > 1 runs the model on the means of ``factor`` × ``factor`` blocks (``block_means``)
    and interpolates the probabilities back (``upsample_bilinear``); NaN pixels stay NaN.
    """
    monitor = ensure_monitor(monitor)
    if bands.ndim != 4 or bands.shape[-1] != len(S2CLOUDLESS_BANDS):
        raise ValueError(f"expected (T, H, W, {len(S2CLOUDLESS_BANDS)}) bands, got shape {bands.shape}")
    if int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be a whole number ≥ 1, got {factor}")
    if factor > 1:
        tbhw = np.moveaxis(bands, -1, 1)  # the file's layout: contiguous when read by read_layers
        valid = np.isfinite(tbhw).all(axis=1)
        coarse = s2cloudless_probabilities(_block_means(tbhw, valid, int(factor)), monitor, engine=engine)
        return _upsampled(coarse, valid, int(factor))
    used = _choose_engine(engine)
    pixels = bands.reshape(-1, bands.shape[-1])
    valid = np.isfinite(pixels).all(axis=1)
    out = np.full(pixels.shape[0], np.nan, dtype=np.float32)
    index = np.flatnonzero(valid)
    n = index.size
    monitor.update(0.0)
    for start in range(0, n, _PREDICT_CHUNK):
        # All valid (the usual case): plain slices, no gather copy.
        chunk = slice(start, start + _PREDICT_CHUNK) if n == pixels.shape[0] else index[start : start + _PREDICT_CHUNK]
        sample = np.ascontiguousarray(pixels[chunk], dtype=np.float32)
        out[chunk] = _predict_chunk(sample, used).astype(np.float32)
        monitor.update(min(start + _PREDICT_CHUNK, n) / n)
    monitor.update(1.0)
    return out.reshape(bands.shape[:-1])


def _upsampled(coarse: np.ndarray, valid: np.ndarray, factor: int) -> np.ndarray:
    """Probabilities of blocks → of the (T, H, W) ``valid`` pixels (bilinear; NaN elsewhere)."""
    probs = upsample_bilinear(coarse, factor, valid.shape[1], valid.shape[2])
    probs[~valid] = np.nan
    return probs


def s2cloudless_masks(probs: np.ndarray, threshold: float = 0.4, average_over: int = 4, dilation_size: int = 2) -> np.ndarray:
    """s2cloudless's post-processing: disk-average the probabilities, threshold, disk-dilate.

    ``probs``: (T, H, W) float, NaN = no data. Returns uint8 (T, H, W): 1 cloud, 0 clear, 255 no
    data. No-data pixels count as probability 0 in the averaging (they do not make their
    neighbours cloudy); where there is no NaN the result equals ``get_mask_from_prob``.
    """
    _check_postprocessing(threshold, average_over, dilation_size)
    if probs.ndim != 3:
        raise ValueError(f"expected (T, H, W) probabilities, got shape {probs.shape}")
    nodata = np.isnan(probs)
    filled = np.where(nodata, 0.0, probs).astype(np.float32)
    detector = _detector(float(threshold), int(average_over), int(dilation_size))
    if average_over:
        masks = np.asarray(detector.get_mask_from_prob(filled), dtype=np.uint8)
    else:
        # s2cloudless 1.7.3 makes an int8 mask here, which its cv2.dilate then refuses; same steps, uint8.
        masks = (filled > threshold).astype(np.uint8)
        if dilation_size:
            cv2 = require("cv2")
            masks = np.asarray([cv2.dilate(m, detector.dilation_filter) for m in masks], dtype=np.uint8)
    masks[nodata] = MASK_NODATA
    return masks


def scl_masks(scl: np.ndarray, classes: Sequence[int] = DEFAULT_SCL_CLASSES) -> np.ndarray:
    """Cloud mask from Sen2Cor's scene classification: 1 where SCL is one of ``classes``.

    ``scl``: (T, H, W) SCL values; NaN or 0 (SCL's own "no data") gives 255.
    """
    scl = np.asarray(scl)
    nodata = ~np.isfinite(scl) if scl.dtype.kind == "f" else np.zeros(scl.shape, dtype=bool)
    values = np.where(nodata, 0, scl)
    nodata |= values == 0
    masks = np.isin(values, np.asarray(list(classes))).astype(np.uint8)
    masks[nodata] = MASK_NODATA
    return masks


def read_layers(
    path: str, date_index: Sequence[int], band_index: Sequence[int], *, raw: bool = False, overview_level: int | None = None
) -> np.ndarray:
    """Read some dates × some bands of a time stack as (len(dates), len(bands), H, W).

    The stack's band layout is date-major (raster band ``t*B + b + 1``). By default the result
    is float32 and a numeric nodata value becomes NaN, as in ``rasters.read_stack``; ``raw``
    keeps the file's type and values (for uint8 cloud masks). ``overview_level``: read that
    internal overview instead of the full resolution.
    """
    with rasterio.open(path) as src:
        n_bands = len(stack_layout(src, path)[1])
        indexes = [t * n_bands + b + 1 for t in date_index for b in band_index]
        if overview_level is None:
            data, nodata = _read_indexes(src, indexes)
    if overview_level is not None:
        with rasterio.open(path, overview_level=overview_level) as src:
            data, nodata = _read_indexes(src, indexes)
    data = data.reshape(len(date_index), len(band_index), *data.shape[1:])
    if raw:
        return data
    if data.dtype != np.float32:
        keep = data == nodata if nodata is not None and not np.isnan(nodata) else None
        data = data.astype(np.float32)
        if keep is not None:
            data[keep] = np.nan
    elif nodata is not None and not np.isnan(nodata):
        data[data == nodata] = np.nan
    return data


def _read_indexes(src: rasterio.io.DatasetReader, indexes: list[int]) -> tuple[np.ndarray, float | None]:
    data = src.read(indexes) if indexes else np.empty((0, src.height, src.width), dtype=src.dtypes[0])
    return data, src.nodata


def _choose_method(method: str, bands: list[str]) -> str:
    method = (method or "auto").lower()
    if method not in METHODS:
        raise InputError(f"Unknown cloud-mask method '{method}'; choose one of {', '.join(METHODS)}.", "method")
    missing = [b for b in S2CLOUDLESS_BANDS if b not in bands]
    if method == "auto":
        if not missing:
            return "s2cloudless"
        if "SCL" in bands:
            return "scl"
        raise InputError(
            f"The stack has neither the ten bands s2cloudless needs (it lacks {', '.join(missing)}) nor the SCL band "
            f"(its bands: {', '.join(bands)}). Download L1C data with {', '.join(S2CLOUDLESS_BANDS)}, or L2A data "
            "with the SCL band.",
            "method",
        )
    if method == "s2cloudless" and missing:
        raise InputError(
            f"s2cloudless needs the L1C bands {', '.join(S2CLOUDLESS_BANDS)}, but the stack lacks {', '.join(missing)}. "
            "Sentinel-2 L2A products have no B10, so use the SCL method (download the SCL band) or download L1C data.",
            "method",
        )
    if method == "scl" and "SCL" not in bands:
        raise InputError(
            f"The SCL method needs the band SCL (L2A scene classification), which the stack lacks (its bands: "
            f"{', '.join(bands)}). Download L2A data with the SCL band, or use the s2cloudless method on L1C data.",
            "method",
        )
    return method


def _check_reflectance(block: np.ndarray) -> None:
    with np.errstate(invalid="ignore"):
        top = np.nanmax(block) if np.isfinite(block).any() else 0.0
    if top > 20.0:
        raise InputError(
            f"s2cloudless expects TOA reflectance (0–1), but the stack holds values up to {top:g}; it looks like "
            "digital numbers. Divide by 10000 (or download reflectance) first.",
            "stack_path",
        )


def _block_inputs(
    path: str, date_index: list[int], band_index: list[int], n_bands: int, factor: int, level: int | None, nan_bands: set[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The model's input at ``factor``: (T, h, w, C) block means and the (T, H, W) pixels that have every band.

    A date whose bands are all NaN-free (as the stack's writer recorded) is read from the overview
    ``level`` when there is one: its block means are the overview's values and every pixel has
    every band. Other dates are read at full resolution and averaged with the same arithmetic, so
    the two routes give identical values.
    """
    with rasterio.open(path) as src:
        height, width = src.height, src.width
    shape = (-(-height // factor), -(-width // factor))
    means = np.empty((len(date_index), *shape, len(band_index)), dtype=np.float32)
    valid = np.ones((len(date_index), height, width), dtype=bool)
    coarse = [level is not None and all(t * n_bands + b + 1 not in nan_bands for b in band_index) for t in date_index]
    for from_overview in (True, False):
        pos = [i for i, c in enumerate(coarse) if c == from_overview]
        if not pos:
            continue
        dates = [date_index[i] for i in pos]
        if from_overview:
            means[pos] = np.moveaxis(read_layers(path, dates, band_index, overview_level=level), 1, -1)
        else:
            block = read_layers(path, dates, band_index)
            valid[pos] = np.isfinite(block).all(axis=1)
            means[pos] = _block_means(block, valid[pos], factor)
            del block
    return means, valid


@dataclass
class CloudMasks:
    """The masks of a whole stack, (T, 1, H, W) uint8, with what made them (the output's tags)."""

    masks: np.ndarray
    probabilities: np.ndarray | None
    method: str
    tags: dict[str, str]


def compute_masks(
    stack_path: str,
    *,
    method: str = "auto",
    threshold: float = 0.4,
    average_over: int = 4,
    dilation_size: int = 2,
    scl_classes: Sequence[int] = DEFAULT_SCL_CLASSES,
    engine: str = "auto",
    processing_resolution: float = DEFAULT_PROCESSING_RESOLUTION,
    probabilities: bool = False,
    threads: int = 1,
    monitor: Monitor | None = None,
) -> CloudMasks:
    """The cloud masks of every date of ``stack_path`` in memory (see ``cloud_masks_file``).

    Blocks of dates are read and masked by ``threads`` threads (reads, the tree kernel, numpy and
    cv2 release the GIL); every date is masked on its own, so the result does not depend on the
    blocks or the threads.
    """
    monitor = ensure_monitor(monitor)
    dates, bands, grid, tags = read_stack_info(stack_path)
    used = _choose_method(method, bands)
    factor = resolution_factor(grid, processing_resolution)
    if used == "s2cloudless":
        _check_postprocessing(threshold, average_over, dilation_size)
        engine = _choose_engine(engine)
        band_index = [bands.index(b) for b in S2CLOUDLESS_BANDS]
    else:
        classes = sorted({int(c) for c in scl_classes})
        if not classes or any(not 1 <= c <= 11 for c in classes):
            raise InputError(f"SCL classes must be values 1–11, got {list(scl_classes)}.", "scl_classes")
        band_index = [bands.index("SCL")]
        if probabilities:
            monitor.info("The SCL method gives no cloud probabilities; the probability output is not written.")
            probabilities = False

    n_dates = len(dates)
    threads = max(1, int(threads))
    # The read budget is shared by the threads; several blocks per thread, so one slowed by other jobs takes fewer.
    per_block = max(1, _READ_BUDGET_PIXELS // max(1, grid.width * grid.height * threads))
    if threads > 1:
        per_block = min(per_block, max(1, -(-n_dates // (4 * threads))))
    masks = np.empty((n_dates, 1, grid.height, grid.width), dtype=np.uint8)
    probs = np.empty((n_dates, 1, grid.height, grid.width), dtype=np.float32) if probabilities else None
    level, nan_bands = None, set()
    if used == "s2cloudless" and factor > 1:
        with rasterio.open(stack_path) as src:
            level, nan_bands = overviews.average_level(src, factor), overviews.nan_bands(src)

    def mask_block(first: int, step: Monitor) -> None:
        step.update(0.0)
        date_index = list(range(first, min(first + per_block, n_dates)))
        done = slice(first, first + len(date_index))
        if used == "s2cloudless" and factor > 1:
            means, valid = _block_inputs(stack_path, date_index, band_index, len(bands), factor, level, nan_bands)
            _check_reflectance(means)
            p = _upsampled(s2cloudless_probabilities(means, step.sub(0.05, 0.95), engine=engine), valid, factor)
        elif used == "s2cloudless":
            block = read_layers(stack_path, date_index, band_index)
            _check_reflectance(block)
            p = s2cloudless_probabilities(np.moveaxis(block, 1, -1), step.sub(0.05, 0.95), engine=engine)
        else:
            masks[done, 0] = scl_masks(read_layers(stack_path, date_index, band_index)[:, 0], classes)
        if used == "s2cloudless":
            masks[done, 0] = s2cloudless_masks(p, threshold, average_over, dilation_size)
            if probs is not None:
                probs[done, 0] = p
        step.update(1.0)

    blocks = list(range(0, n_dates, per_block))
    if threads <= 1 or len(blocks) == 1:
        for i, first in enumerate(blocks):
            mask_block(first, monitor.sub(i / len(blocks), (i + 1) / len(blocks)))
    else:  # progress from this thread only, block by block
        run_threaded(lambda first: mask_block(first, Monitor()), blocks, threads, monitor, "lc-clouds")

    out_tags = dict(tags)
    out_tags["METHOD"] = used
    if used == "s2cloudless":
        out_tags.update(
            THRESHOLD=str(float(threshold)),
            AVERAGE_OVER=str(int(average_over)),
            DILATION_SIZE=str(int(dilation_size)),
            PROCESSING_BLOCK_PX=str(factor),
        )
    else:
        out_tags["SCL_CLASSES"] = json.dumps(classes)
    return CloudMasks(masks, probs, used, out_tags)


@dataclass(frozen=True)
class CloudMaskFile:
    """What ``cloud_masks_file`` wrote: the mask stack, the probability stack (None when not asked for
    or not made: the SCL method has none) and the method used ("s2cloudless" or "scl")."""

    mask_path: str
    probability_path: str | None
    method: str


def cloud_masks_file(
    stack_path: str,
    mask_out: str,
    prob_out: str | None = None,
    *,
    method: str = "auto",
    threshold: float = 0.4,
    average_over: int = 4,
    dilation_size: int = 2,
    scl_classes: Sequence[int] = DEFAULT_SCL_CLASSES,
    monitor: Monitor | None = None,
    engine: str = "auto",
    processing_resolution: float = DEFAULT_PROCESSING_RESOLUTION,
    threads: int = 1,
) -> CloudMaskFile:
    """Write the cloud-mask stack of ``stack_path`` (and, for s2cloudless, its probabilities).

    Works through blocks of dates so a long stack never sits in memory whole (only the uint8
    masks and, if asked for, the float32 probabilities do). ``engine`` picks how s2cloudless's
    model is evaluated (see ``s2cloudless_probabilities``); ``processing_resolution`` (metres) is
    the pixel size the model sees (0 or the stack's own: full resolution, exactly s2cloudless).
    """
    monitor = ensure_monitor(monitor)
    check_not_input(mask_out, [stack_path], "mask_out")
    if prob_out:
        check_not_input(prob_out, [stack_path], "prob_out")
        check_not_input(prob_out, [mask_out], "prob_out")
    result = compute_masks(
        stack_path,
        method=method,
        threshold=threshold,
        average_over=average_over,
        dilation_size=dilation_size,
        scl_classes=scl_classes,
        engine=engine,
        processing_resolution=processing_resolution,
        probabilities=bool(prob_out),
        threads=threads,
        monitor=monitor,
    )
    dates, _, grid, _ = read_stack_info(stack_path)
    masks = result.masks
    clear = int((masks == MASK_CLEAR).sum())
    cloud = int((masks == MASK_CLOUD).sum())
    if not clear + cloud:  # a mask of nothing but "no data" would pass for a result
        raise DataError(f"{stack_path} holds no data on any date (every pixel is NaN or no data); expected a downloaded time stack.", "stack_path")
    monitor.info(f"Cloud masks ({result.method}): {100.0 * cloud / (clear + cloud):.1f} % of observed pixels are cloudy.")
    write_stack(mask_out, TimeStack(masks, list(dates), [MASK_BAND], grid, result.tags), kind="cloudmask", nodata=MASK_NODATA)
    written = None
    if result.probabilities is not None and prob_out:
        write_stack(prob_out, TimeStack(result.probabilities, list(dates), [PROB_BAND], grid, result.tags), kind="cloudprob")
        written = prob_out
    return CloudMaskFile(mask_out, written, result.method)
