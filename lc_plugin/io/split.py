"""Split a time stack into one GeoTIFF per date, for QGIS's temporal controller and other tools.

Each file keeps the stack's layout (a one-date time stack: same bands, band descriptions
``"YYYY-MM-DD BAND"``, LC_DATES/LC_BANDS/LC_KIND tags), so every step still reads it.
"""

from __future__ import annotations

import datetime as dt
import os

import rasterio
from rasterio.windows import Window

from ..core.atomic import check_not_input
from ..core.errors import InputError
from ..core.monitor import Monitor
from .rasters import TimeStack, read_stack_info, write_stack


def split_stack_file(stack_path: str, out_dir: str, prefix: str | None = None, monitor: Monitor | None = None) -> list[tuple[dt.date, str]]:
    """Write ``<prefix>_<YYYY-MM-DD>.tif`` per date into ``out_dir``; returns (date, path) pairs in date order."""
    monitor = monitor or Monitor()
    dates, bands, grid, tags = read_stack_info(stack_path)
    if not dates:
        raise InputError(f"{stack_path} has no dates.", "stack_path")
    os.makedirs(out_dir, exist_ok=True)
    prefix = prefix or os.path.splitext(os.path.basename(stack_path))[0]
    kind = tags.get("LC_KIND", "timestack")
    keep = {k: v for k, v in tags.items() if k not in ("LC_DATES", "LC_BANDS", "LC_KIND")}
    outputs = []
    with rasterio.open(stack_path) as src:
        nodata = src.nodata
        for t, date in enumerate(dates):
            path = os.path.join(out_dir, f"{prefix}_{date.isoformat()}.tif")
            check_not_input(path, [stack_path], "out_dir")
            indexes = [t * len(bands) + b + 1 for b in range(len(bands))]
            data = src.read(indexes, window=Window(0, 0, grid.width, grid.height))
            stack = TimeStack(data[None], [date], list(bands), grid, keep)
            write_stack(path, stack, kind=kind, nodata=None if nodata is None or nodata != nodata else nodata)
            outputs.append((date, path))
            monitor.update((t + 1) / len(dates))
    return outputs
