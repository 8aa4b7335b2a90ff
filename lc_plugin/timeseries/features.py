"""Per-pixel features for the pixel classifier: every band of every date plus spectral indices.

The layout is fixed by the dates and bands alone (date-major: for each date its bands, then
its indices), so the training step can store it in the model and the classification step can
check that a stack yields exactly the same columns in the same order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import rasterio
from rasterio.windows import Window

from ..core.bands import numeric_bands
from ..core.errors import InputError

# Normalised differences (a - b) / (a + b) added for every date whose stack has both bands.
INDICES: dict[str, tuple[str, str]] = {"NDVI": ("B08", "B04"), "NDWI": ("B03", "B08"), "NDBI": ("B11", "B08")}

# Bands that are not reflectances and never become features.


def feature_bands(bands: list[str]) -> list[str]:
    """The stack bands that become features (all but the scene classification layer)."""
    return numeric_bands(bands)


def feature_indices(bands: list[str]) -> list[str]:
    """The indices of ``INDICES`` whose two bands are in ``bands``."""
    return [name for name, (a, b) in INDICES.items() if a in bands and b in bands]


def feature_layout(dates: list[dt.date], bands: list[str]) -> list[str]:
    """Feature names ``"<date>_<band or index>"``, date-major, in the column order of ``feature_block``."""
    per_date = feature_bands(bands) + feature_indices(bands)
    return [f"{d.isoformat()}_{name}" for d in dates for name in per_date]


def feature_block(data: np.ndarray, bands: list[str]) -> np.ndarray:
    """(T, B, h, w) stack block → (h*w, F) float32 features in ``feature_layout`` order.

    NaN inputs give NaN features; an index whose denominator is zero is NaN too.
    """
    if data.ndim != 4 or data.shape[1] != len(bands):
        raise ValueError(f"expected a (T, {len(bands)}, h, w) block, got shape {data.shape}")
    t, _, h, w = data.shape
    data = data.astype(np.float32, copy=False)
    keep = [bands.index(b) for b in feature_bands(bands)]
    parts = [data[:, keep]]
    for name in feature_indices(bands):
        a_name, b_name = INDICES[name]
        a = data[:, bands.index(a_name)]
        b = data[:, bands.index(b_name)]
        den = a + b
        with np.errstate(divide="ignore", invalid="ignore"):
            index = (a - b) / den
        index[den == 0] = np.nan
        parts.append(index[:, np.newaxis])
    stacked = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]  # (T, F_date, h, w)
    f = stacked.shape[1]
    return np.ascontiguousarray(stacked.transpose(2, 3, 0, 1).reshape(h * w, t * f), dtype=np.float32)


def read_bands_window(
    src: rasterio.io.DatasetReader, n_dates: int, stack_bands: list[str], use_bands: list[str], window: Window, argument: str = "stack_path"
) -> np.ndarray:
    """Read only ``use_bands`` of an open time stack within ``window`` as (T, len(use_bands), h, w) float32, NaN = no data.

    ``argument``: the caller's argument naming the stack, for the error a stack without those bands gives."""
    missing = [b for b in use_bands if b not in stack_bands]
    if missing:
        raise InputError(f"{src.name} lacks the band(s) {', '.join(missing)}.", argument)
    nb = len(stack_bands)
    sel = [stack_bands.index(b) for b in use_bands]
    indexes = [t * nb + b + 1 for t in range(n_dates) for b in sel]
    arr = src.read(indexes, window=window).astype(np.float32, copy=False)
    nodata = src.nodata
    if nodata is not None and not np.isnan(nodata):
        arr[arr == nodata] = np.nan
    return arr.reshape(n_dates, len(sel), arr.shape[1], arr.shape[2])


BLOCK_BYTES = 256 * 1024 * 1024  # feature memory per window when scanning a stack
_TILE = 256  # the stacks' GeoTIFF tile size: windows aligned to it decompress each tile once


def iter_feature_windows(
    height: int, width: int, n_features: int, block_rows: int = _TILE, budget_bytes: int = BLOCK_BYTES
) -> Iterator[Window]:
    """Windows of ``block_rows`` rows, split into column chunks so (pixels × features) float32 fits ``budget_bytes``.

    A full-width strip of a 13-band, 68-date stack is gigabytes; column chunks that are multiples
    of the 256-pixel tile keep memory bounded without decompressing any tile twice.
    """
    if block_rows < 1:
        raise InputError(f"The block size must be at least 1 row, got {block_rows}.", "block_rows")
    rows = max(1, min(block_rows, height))
    per_pixel = max(1, n_features) * 4
    if rows > _TILE and per_pixel * rows * _TILE > budget_bytes:  # tall blocks of many features: one tile high
        rows = _TILE
    cols = max(1, budget_bytes // (per_pixel * rows))
    if _TILE <= cols < width:
        cols -= cols % _TILE
    cols = min(cols, width)
    for row in range(0, height, rows):
        for col in range(0, width, cols):
            yield Window(col, row, min(cols, width - col), min(rows, height - row))


def describe_layout_difference(
    expected_dates: list[dt.date],
    expected_bands: list[str],
    dates: list[dt.date],
    bands: list[str],
    *,
    expected_label: str = "the model",
    actual_label: str = "the stack",
    exact_bands: bool = False,
    max_dates: int = 5,
) -> list[str]:
    """Human-readable differences between two date/band layouts (empty when they match).

    Bands are compared by name (order does not matter); with ``exact_bands`` extra bands count
    as a difference too.
    """
    problems = []
    missing = [b for b in expected_bands if b not in bands]
    if missing:
        problems.append(f"{actual_label} lacks the band(s) {', '.join(missing)} that {expected_label} has")
    extra = [b for b in bands if b not in expected_bands]
    if exact_bands and extra:
        problems.append(f"{actual_label} has the extra band(s) {', '.join(extra)} that {expected_label} lacks")
    if len(dates) != len(expected_dates):
        problems.append(f"{expected_label} has {len(expected_dates)} dates, {actual_label} has {len(dates)}")
    if dates and expected_dates and (dates[0] != expected_dates[0] or dates[-1] != expected_dates[-1]):
        problems.append(
            f"{expected_label} covers {expected_dates[0].isoformat()} … {expected_dates[-1].isoformat()}, "
            f"{actual_label} covers {dates[0].isoformat()} … {dates[-1].isoformat()}"
        )
    differing = [(i, e, a) for i, (e, a) in enumerate(zip(expected_dates, dates)) if e != a]
    if differing:
        shown = "; ".join(f"#{i + 1}: {e.isoformat()} vs {a.isoformat()}" for i, e, a in differing[:max_dates])
        more = f" and {len(differing) - max_dates} more" if len(differing) > max_dates else ""
        problems.append(f"{len(differing)} date(s) differ (position: {expected_label} vs {actual_label}): {shown}{more}")
    elif not dates and expected_dates:
        problems.append(f"{actual_label} has no dates")
    return problems
