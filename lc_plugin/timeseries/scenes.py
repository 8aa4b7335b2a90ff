"""Drop cloudy dates from a time stack and its cloud mask.

A date is kept when the fraction of *clear* pixels among the pixels that have data is at least
``min_valid_fraction``. Pixels without data (mask 255, e.g. outside the orbit's footprint) are
left out of the fraction, so a date that covers half the area but is clear there is kept: the
interpolation step fills the gap from other dates. eo-learn's land-cover example used 0.8
(its ``ValidDataFractionPredicate(0.8)`` filter), which is the default here.

An output named ``*.vrt`` is a GDAL virtual raster that lists the kept dates' bands of the input
file instead of copying their pixels: it is written in milliseconds whatever the stack's size,
QGIS and GDAL open it like the GeoTIFF (same band layout, descriptions and tags), and later
steps read the input's pixels through it. It refers to the input by a path relative to itself,
so the two must stay together.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import rasterio

from ..core.atomic import atomic_output, check_not_input
from ..core.errors import DataError, InputError, LandCoverError
from ..core.monitor import Monitor, ensure_monitor
from ..io.rasters import TAG_BANDS, TAG_DATES, TAG_KIND, Grid, StackWriter, TimeStack, file_windows, read_stack_info, write_stack
from .clouds import MASK_BAND, MASK_CLEAR, MASK_CLOUD, MASK_NODATA, read_layers

DEFAULT_MIN_VALID_FRACTION = 0.8


@dataclass(frozen=True)
class FilteredStack:
    """The filtered stack and mask written by ``filter_scenes_file``, and the dates they kept."""

    stack_path: str
    mask_path: str
    dates: list[dt.date]


def valid_fractions(mask: np.ndarray) -> np.ndarray:
    """Clear / (clear + cloud) per date of a (T, H, W) CLM mask; 0.0 for a date with no data at all."""
    if mask.ndim != 3:
        raise ValueError(f"expected a (T, H, W) mask, got shape {mask.shape}")
    clear = (mask == MASK_CLEAR).sum(axis=(1, 2), dtype=np.int64)
    cloud = (mask == MASK_CLOUD).sum(axis=(1, 2), dtype=np.int64)
    observed = clear + cloud
    return np.where(observed > 0, clear / np.maximum(observed, 1), 0.0).astype(np.float64)


def check_mask_matches(stack_path: str, mask_path: str, stack_dates: list[dt.date], stack_grid: Grid) -> None:
    """Refuse a mask (argument ``mask_path``) that is not a CLM stack on the stack's dates and grid."""
    m_dates, m_bands, m_grid, _ = read_stack_info(mask_path)
    if m_bands != [MASK_BAND]:
        raise InputError(
            f"{mask_path} is not a cloud-mask stack (its bands are {', '.join(m_bands)}, expected the single band "
            f"{MASK_BAND}); use the output of the Cloud masks step.",
            "mask_path",
        )
    if list(m_dates) != list(stack_dates):
        only_stack = sorted(set(stack_dates) - set(m_dates))
        only_mask = sorted(set(m_dates) - set(stack_dates))
        detail = ""
        if only_stack:
            detail += f" Dates missing from the mask: {', '.join(d.isoformat() for d in only_stack[:5])}."
        if only_mask:
            detail += f" Dates only in the mask: {', '.join(d.isoformat() for d in only_mask[:5])}."
        raise InputError(
            f"The cloud mask {mask_path} has {len(m_dates)} dates, the stack {stack_path} has {len(stack_dates)}; "
            f"they must be the same dates in the same order.{detail} Make the mask from this stack.",
            "mask_path",
        )
    if not m_grid.same_as(stack_grid):
        raise InputError(
            f"The cloud mask {mask_path} ({m_grid.width}×{m_grid.height} px, {m_grid.crs}) is not on the grid of the "
            f"stack {stack_path} ({stack_grid.width}×{stack_grid.height} px, {stack_grid.crs}); make the mask from this stack.",
            "mask_path",
        )


def check_min_valid_fraction(min_valid_fraction: float) -> None:
    """Refuse a fraction outside [0, 1] before any pixel is read."""
    if not 0.0 <= float(min_valid_fraction) <= 1.0:
        raise InputError(
            f"The minimum valid fraction must be between 0 and 1 (e.g. 0.8 = 80 % of the observed pixels clear), got {min_valid_fraction}.",
            "min_valid_fraction",
        )


def clear_dates(
    fractions: np.ndarray, dates: list[dt.date], min_valid_fraction: float, exclude_dates: list[dt.date] | None = None
) -> np.ndarray:
    """Indexes of the dates whose valid fraction reaches ``min_valid_fraction`` and that are not in
    ``exclude_dates``; DataError if none is left."""
    check_min_valid_fraction(min_valid_fraction)
    excluded = np.isin(np.array(dates, dtype=object), np.array(list(exclude_dates or []), dtype=object))
    keep = np.flatnonzero((fractions >= float(min_valid_fraction)) & ~excluded)
    if keep.size == 0:
        best = int(np.argmax(fractions))
        raise DataError(
            f"No date has at least {float(min_valid_fraction):.0%} clear pixels; the clearest is "
            f"{dates[best].isoformat()} with {fractions[best]:.1%}. Lower the minimum valid fraction "
            f"(e.g. to {np.floor(fractions[best] * 100) / 100:.2f}) or choose a longer period.",
            "min_valid_fraction",
        )
    return keep


def filter_scenes_file(
    stack_path: str,
    mask_path: str,
    stack_out: str,
    mask_out: str,
    *,
    min_valid_fraction: float = DEFAULT_MIN_VALID_FRACTION,
    exclude_dates: list[dt.date] | None = None,
    monitor: Monitor | None = None,
) -> FilteredStack:
    """Write the stack and its mask restricted to the dates clear enough.

    ``exclude_dates``: dates the user left out after looking at the scenes (e.g. haze the cloud
    mask misses); they are dropped whatever their clear fraction.
    """
    monitor = ensure_monitor(monitor)
    check_min_valid_fraction(min_valid_fraction)
    check_not_input(stack_out, [stack_path, mask_path], "stack_out")
    check_not_input(mask_out, [stack_path, mask_path, stack_out], "mask_out")
    dates, bands, grid, tags = read_stack_info(stack_path)
    check_mask_matches(stack_path, mask_path, dates, grid)
    _, _, _, mask_tags = read_stack_info(mask_path)
    monitor.update(0.0)

    mask = read_layers(mask_path, range(len(dates)), [0], raw=True)[:, 0]
    if mask.dtype != np.uint8:  # a mask written by other software: NaN / out-of-range = no data
        mask = np.where(np.isin(mask, (MASK_CLEAR, MASK_CLOUD)), mask, MASK_NODATA).astype(np.uint8)
    fractions = valid_fractions(mask)
    keep = clear_dates(fractions, dates, min_valid_fraction, exclude_dates)
    monitor.update(0.2)
    kept_dates = [dates[i] for i in keep]
    monitor.info(f"Kept {len(kept_dates)} of {len(dates)} dates with at least {float(min_valid_fraction):.0%} clear observed pixels.")

    filter_tags = {
        "FILTER_MIN_VALID": str(float(min_valid_fraction)),
        "FILTER_VALID_FRACTIONS": json.dumps([round(float(fractions[i]), 6) for i in keep]),
    }
    # The mask is written after the last cancel point and before the stack's temporary file is
    # renamed, so both outputs are written, or neither.
    def write_mask() -> None:
        _write_filtered_mask(mask_out, mask_path, mask[keep], keep.tolist(), kept_dates, grid, {**mask_tags, **filter_tags})

    if is_vrt(stack_out):
        with atomic_output(stack_out) as tmp:
            write_dates_vrt(stack_path, tmp, keep.tolist(), kept_dates, list(bands), {**tags, **filter_tags, TAG_KIND: tags.get(TAG_KIND, "timestack")})
            write_mask()
        monitor.update(1.0)
    else:
        _copy_dates(stack_path, stack_out, keep.tolist(), kept_dates, list(bands), grid, {**tags, **filter_tags}, write_mask, monitor.sub(0.2, 0.95))
    return FilteredStack(stack_out, mask_out, kept_dates)


def _copy_dates(
    stack_path: str,
    stack_out: str,
    keep: list[int],
    kept_dates: list[dt.date],
    bands: list[str],
    grid: Grid,
    tags: dict[str, str],
    before_rename: Callable[[], None],
    monitor: Monitor,
) -> None:
    """Copy the dates ``keep`` of the stack to a GeoTIFF window by window (the stack never sits in
    memory); ``before_rename`` runs once every window is written, before the file gets its name."""
    n_bands = len(bands)
    indexes = [t * n_bands + b + 1 for t in keep for b in range(n_bands)]
    with rasterio.open(stack_path) as src:
        dtype, nodata = src.dtypes[0], src.nodata
        kind = tags.get(TAG_KIND, "timestack")
        with StackWriter(stack_out, kept_dates, bands, grid, tags, kind=kind, dtype=dtype, nodata=nodata) as dst:
            windows = file_windows(grid.height, grid.width, len(indexes) * np.dtype(dtype).itemsize)
            for i, window in enumerate(windows):
                block = src.read(indexes, window=window)
                dst.write(block.reshape(len(kept_dates), n_bands, window.height, window.width), window)
                monitor.update((i + 1) / len(windows))
            before_rename()


def is_vrt(path: str) -> bool:
    """Whether an output path asks for a GDAL virtual raster."""
    return path.lower().endswith(".vrt")


def write_dates_vrt(
    source: str, out: str, keep: list[int], kept_dates: list[dt.date], bands: list[str], tags: dict[str, str], argument: str = "stack_out"
) -> None:
    """A VRT time stack of the dates ``keep`` (indexes into ``source``'s dates), no pixel copied.

    ``out`` must lie in its final folder (the source is referenced relative to it when it can be);
    ``argument`` names the output in the error GDAL's failure gives.
    """
    from osgeo import gdal

    n_bands = len(bands)
    indexes = [t * n_bands + b + 1 for t in keep for b in range(n_bands)]
    try:  # GDAL refers to a source in the VRT's folder (or below) by a relative path, to others by an absolute one
        ds = gdal.Translate(out, os.path.abspath(source), format="VRT", bandList=indexes)
    except RuntimeError:  # when the host enabled GDAL exceptions
        ds = None
    if ds is None:
        raise LandCoverError(f"GDAL could not write the virtual raster {out}: {gdal.GetLastErrorMsg()}", argument)
    ds.SetMetadata({**tags, TAG_DATES: json.dumps([d.isoformat() for d in kept_dates]), TAG_BANDS: json.dumps(bands)})
    for i, (date, band) in enumerate(((d, b) for d in kept_dates for b in bands), start=1):
        ds.GetRasterBand(i).SetDescription(f"{date.isoformat()} {band}")
        ds.GetRasterBand(i).SetMetadata({"DATE": date.isoformat(), "BAND": band})
    ds = None  # written on close


def _write_filtered_mask(
    mask_out: str, mask_path: str, mask: np.ndarray, keep: list[int], kept_dates: list[dt.date], grid: Grid, tags: dict[str, str]
) -> None:
    """The filtered mask: a VRT of the input mask's kept dates, or a GeoTIFF of ``mask`` (already filtered)."""
    if is_vrt(mask_out):
        with atomic_output(mask_out) as tmp:
            write_dates_vrt(mask_path, tmp, keep, kept_dates, [MASK_BAND], {**tags, TAG_KIND: tags.get(TAG_KIND, "cloudmask")}, "mask_out")
        return
    write_stack(
        mask_out,
        TimeStack(mask[:, np.newaxis], kept_dates, [MASK_BAND], grid, tags),
        kind=tags.get(TAG_KIND, "cloudmask"),
        nodata=MASK_NODATA,
    )
