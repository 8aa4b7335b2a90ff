"""Valid-observation counts: how many dates of a time stack see each pixel clear and with data.

A quick look at where a patch will interpolate well (many observations) or badly (few), before
training; the count raster is styled with a red-to-green gradient in QGIS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio

from ..core.atomic import check_not_input
from ..core.bands import reflectance_indices
from ..core.errors import InputError
from ..core.monitor import Monitor, ensure_monitor
from ..io.rasters import Grid, read_stack_info, write_raster
from .clouds import MASK_BAND, MASK_CLEAR


@dataclass(frozen=True)
class ValidCount:
    """The count raster ``valid_count_file`` wrote, and over how many dates it counted."""

    path: str
    n_dates: int


def valid_count_file(stack_path: str, out_path: str, mask_path: str | None = None, monitor: Monitor | None = None) -> ValidCount:
    """Write a UInt16 raster counting, per pixel, the dates with data in every band and clear in the mask.

    Reads one date at a time, so memory stays at a few bands.
    """
    monitor = ensure_monitor(monitor)
    check_not_input(out_path, [stack_path, mask_path or ""], "out_path")
    dates, bands, grid, _ = read_stack_info(stack_path)
    reflectance = reflectance_indices(bands)
    mask_dates: list = []
    if mask_path:
        mask_dates, mask_bands, mask_grid, _ = read_stack_info(mask_path)
        if mask_bands != [MASK_BAND]:
            raise InputError(f"{mask_path} is not a cloud mask stack (bands {mask_bands}, expected {MASK_BAND}).", "mask_path")
        if (mask_grid.width, mask_grid.height) != (grid.width, grid.height) or mask_grid.transform != grid.transform:
            raise InputError(f"{mask_path} is not on the grid of {stack_path}.", "mask_path")
    count = np.zeros((grid.height, grid.width), dtype=np.uint16)
    with rasterio.open(stack_path) as src:
        nodata = src.nodata
        mask_src = rasterio.open(mask_path) if mask_path else None
        try:
            for t, date in enumerate(dates):
                data = src.read([t * len(bands) + b + 1 for b in reflectance])
                valid = np.all(np.isfinite(data), axis=0)
                if nodata is not None and not np.isnan(nodata):
                    valid &= np.all(data != nodata, axis=0)
                if mask_src is not None:
                    if date in mask_dates:
                        valid &= mask_src.read(mask_dates.index(date) + 1) == MASK_CLEAR
                    else:
                        valid[:] = False  # the mask does not know this date: not counted as clear
                count += valid
                monitor.update((t + 1) / len(dates))
        finally:
            if mask_src is not None:
                mask_src.close()
    tags = {"LC_KIND": "validcount", "LC_N_DATES": str(len(dates)), "LC_SOURCE": stack_path}
    write_raster(out_path, count, Grid(grid.crs, grid.transform, grid.width, grid.height), tags=tags, descriptions=["valid observations"])
    return ValidCount(out_path, len(dates))
