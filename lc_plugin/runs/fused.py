"""A downloaded stack to its class map in one pass per window, with no intermediate file.

The step-by-step chain (cloud masks → filter → interpolation → classification) writes and
re-reads three stacks; on a 1000 × 1000 px patch of 70 dates × 13 bands that I/O costs several
times the arithmetic. Here:

1. the cloud masks of every date are computed in memory (``clouds.compute_masks``: blocks of
   dates on both cores; uint8, 70 MB for such a patch);
2. the filter only chooses the dates (``scenes.clear_dates``), nothing is copied;
3. tile-aligned windows of the kept dates are read once, interpolated, turned into features and
   classified, two windows at a time, and only the class map is written.

Every step is the step-by-step chain's own function on the same values (the masks per date, the
interpolation and the model per pixel), so the class map equals the one the separate steps
write with the same settings.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import rasterio
from rasterio.windows import Window

from ..core.atomic import check_not_input
from ..core.bands import CATEGORICAL_BANDS
from ..core.errors import DataError, InputError, LandCoverError
from ..core.monitor import Monitor, ensure_monitor, run_threaded
from ..io.rasters import file_windows, read_stack_info, write_class_raster
from ..ml.classify import PixelModel, check_compatible, load_model
from ..timeseries.clouds import DEFAULT_PROCESSING_RESOLUTION, DEFAULT_SCL_CLASSES, MASK_CLEAR, compute_masks
from ..timeseries.features import feature_block
from ..timeseries.interpolate import all_finite, interpolate_linear, target_dates
from ..timeseries.scenes import DEFAULT_MIN_VALID_FRACTION, check_min_valid_fraction, clear_dates, valid_fractions

# Input bytes per window: two windows in flight plus their interpolated values and features stay
# well under 1 GB for a 70-date, 13-band stack (256 × 256 px windows).
WINDOW_BYTES = 256 * 1024 * 1024
# Rows of a window turned into features and classified at once (64 × 256 px: ~23 MB of features
# for 22 dates × 16; onnxruntime sums each row's trees in the same order for any batch this large).
_PREDICT_ROWS = 64


@dataclass
class FusedSettings:
    """The settings of the steps the fused pass replaces (the separate steps' defaults)."""

    cloud_method: str = "auto"
    threshold: float = 0.4
    average_over: int = 4
    dilation_size: int = 2
    scl_classes: Sequence[int] = DEFAULT_SCL_CLASSES
    processing_resolution: float = DEFAULT_PROCESSING_RESOLUTION
    min_valid_fraction: float = DEFAULT_MIN_VALID_FRACTION
    step_days: int = 16
    start: dt.date | None = None
    end: dt.date | None = None
    edge_days: int | None = None


@dataclass
class FusedResult:
    """What the pass did: kept dates, output dates, and seconds per phase (``steps``: wall time;
    ``thread_seconds``: summed over the threads of the window phase)."""

    kept_dates: list[dt.date]
    targets: list[dt.date]
    steps: dict[str, float] = field(default_factory=dict)
    thread_seconds: dict[str, float] = field(default_factory=dict)


def supports(model_path: str) -> bool:
    """Whether the fused pass can apply this model (pixel models; segmentation networks need tiles).
    False for a model that does not load: the separate classification step then reports why."""
    try:
        return isinstance(load_model(model_path), PixelModel)
    except LandCoverError:
        return False


def classify_stack(
    stack_path: str,
    model_path: str,
    out_path: str,
    settings: FusedSettings | None = None,
    *,
    threads: int | None = None,
    monitor: Monitor | None = None,
) -> FusedResult:
    """Cloud-mask, filter, interpolate, classify ``stack_path`` with a pixel model; write only the class map."""
    monitor = ensure_monitor(monitor)
    settings = settings or FusedSettings()
    threads = max(1, int(threads or os.cpu_count() or 1))
    check_min_valid_fraction(settings.min_valid_fraction)
    check_not_input(out_path, [stack_path, model_path], "out_path")
    # Windows are classified on ``threads`` threads at once: one onnxruntime thread each (two callers
    # with two threads each on two cores contend; measured ~20 % slower).
    model = load_model(model_path, threads=1 if threads > 1 else None)
    if not isinstance(model, PixelModel):
        raise InputError(f"{model_path} is a segmentation network; the one-pass chain applies pixel models only.", "model_path")
    dates, bands, grid, _ = read_stack_info(stack_path)
    if not dates:
        raise InputError(f"{stack_path} has no dates to interpolate.", "stack_path")
    result = FusedResult([], [])
    clock = time.perf_counter()
    clouds = compute_masks(
        stack_path,
        method=settings.cloud_method,
        threshold=settings.threshold,
        average_over=settings.average_over,
        dilation_size=settings.dilation_size,
        scl_classes=settings.scl_classes,
        processing_resolution=settings.processing_resolution,
        threads=threads,
        monitor=monitor.sub(0.0, 0.3),
    )
    result.steps["cloud masks"] = time.perf_counter() - clock
    clock = time.perf_counter()
    masks = clouds.masks[:, 0]
    keep = clear_dates(valid_fractions(masks), dates, settings.min_valid_fraction)
    result.kept_dates = [dates[i] for i in keep]
    monitor.info(f"Kept {keep.size} of {len(dates)} dates with at least {float(settings.min_valid_fraction):.0%} clear observed pixels.")
    result.targets = target_dates(result.kept_dates, settings.start, settings.end, settings.step_days, monitor, settings.edge_days)
    check_compatible(model, result.targets, [b for b in bands if b not in CATEGORICAL_BANDS])
    result.steps["filter"] = time.perf_counter() - clock
    clock = time.perf_counter()
    labels = _classify_windows(stack_path, bands, masks[keep], keep, result, model, threads, monitor.sub(0.3, 0.99))
    result.steps["interpolate + features + classify"] = time.perf_counter() - clock
    clock = time.perf_counter()
    write_class_raster(out_path, labels, grid, model.classes, tags={"MODEL": os.path.basename(model_path)})
    result.steps["write class map"] = time.perf_counter() - clock
    monitor.update(1.0)
    return result


def _classify_windows(
    stack_path: str, bands: list[str], masks: np.ndarray, keep: np.ndarray, result: FusedResult, model: PixelModel, threads: int, monitor: Monitor
) -> np.ndarray:
    """The class map, window by window on ``threads`` threads (each window opens the stack itself)."""
    height, width = masks.shape[1:]
    used = [i for i, b in enumerate(bands) if b not in CATEGORICAL_BANDS]
    model_index = [[bands[i] for i in used].index(b) for b in model.bands]
    indexes = [t * len(bands) + b + 1 for t in keep.tolist() for b in used]
    days = np.array([d.toordinal() for d in result.kept_dates], dtype=np.float64)
    target_days = np.array([d.toordinal() for d in result.targets], dtype=np.float64)
    labels = np.zeros((height, width), dtype=np.uint8)
    lock = threading.Lock()
    totals = {"read": 0.0, "interpolate": 0.0, "features + classify": 0.0}
    any_valid = []

    def run(window: Window) -> None:
        t0 = time.perf_counter()
        with rasterio.open(stack_path) as src:  # closed at once: GDAL's cache of its tiles goes with it
            block = _read_float(src, indexes, window).reshape(keep.size, len(used), window.height, window.width)
        rows, cols = window.toslices()
        valid = (masks[:, rows, cols] == MASK_CLEAR) & all_finite(block)
        t1 = time.perf_counter()
        values = interpolate_linear(block, valid, days, target_days, threads=1)[:, model_index]
        del block
        t2 = time.perf_counter()
        for r0 in range(0, window.height, _PREDICT_ROWS):  # features of a few rows at a time: bounded memory
            part = values[:, :, r0 : r0 + _PREDICT_ROWS]
            labels[rows.start + r0 : rows.start + r0 + part.shape[2], cols] = _predict(model, part).reshape(part.shape[2:])
        with lock:
            any_valid.append(bool(valid.any()))
            for name, seconds in zip(totals, (t1 - t0, t2 - t1, time.perf_counter() - t2)):
                totals[name] += seconds

    windows = file_windows(height, width, keep.size * len(used) * 4 + keep.size, WINDOW_BYTES)
    run_threaded(run, windows, threads, monitor, "lc-fused")
    result.thread_seconds.update(totals)
    if not any(any_valid):
        raise DataError(
            f"No valid observation in {stack_path}: all pixels are cloudy or no data on every date. "
            "Check the cloud mask, or use a longer period or a lower cloud filter.",
            "stack_path",
        )
    return labels


def _predict(model: PixelModel, values: np.ndarray) -> np.ndarray:
    """Class ids of the pixels of a (N, B, h, w) block, 0 where a feature is missing (as ``classify_file``)."""
    feats = feature_block(values, model.bands)
    ok = np.isfinite(feats).all(axis=1)
    out = np.zeros(feats.shape[0], dtype=np.uint8)
    if ok.all():  # the usual case: no copy of the features
        out[:] = model.predict(feats)[0]
    elif ok.any():
        out[ok] = model.predict(np.ascontiguousarray(feats[ok]))[0].astype(np.uint8)
    return out


def _read_float(src, indexes: list[int], window: Window) -> np.ndarray:
    """Bands of a window as ``rasters.read_stack`` gives them: a float stack's numeric nodata becomes NaN."""
    data = src.read(indexes, window=window)
    nodata = src.nodata
    if nodata is not None and not np.isnan(nodata) and data.dtype.kind == "f":
        data[data == nodata] = np.nan
    return data
