"""Is a time stack free of clouds? Train and Classify ask before they read a pixel.

A stack of reflectances that was never cloud-masked puts clouds into the training sample and maps
cloud streaks as land cover. The chain removes them in two steps: *Cloud masks* marks cloudy
observations and *Temporal interpolation* with that mask rebuilds every pixel from its clear
observations only; Interpolate then writes ``LC_CLOUD_MASKED`` (which mask, from which method) into
its output. A stack without that provenance is refused unless a cloud mask is given with it (whose
cloudy or no-data pixels are then left out) or the user accepts it explicitly (``allow_unmasked``),
in which case the report says so.
"""

from __future__ import annotations

import numpy as np
import rasterio

from ..core.errors import InputError, LandCoverError
from ..io.rasters import Grid, read_stack_info
from .clouds import MASK_CLEAR

TAG_CLOUD_MASKED = "LC_CLOUD_MASKED"


def cloud_provenance(tags: dict[str, str]) -> str | None:
    """How the stack was cloud-masked, from its tags, or None when it never was."""
    if tags.get(TAG_CLOUD_MASKED):
        return tags[TAG_CLOUD_MASKED]
    if tags.get("INTERPOLATION_MASKED") == "yes":  # stacks interpolated before the provenance tag existed
        return "interpolated over the clear observations of a cloud mask"
    return None


def masked_provenance(mask_tags: dict[str, str]) -> str:
    """The provenance Interpolate writes for a stack rebuilt from the clear observations of ``mask_tags``' mask."""
    method = mask_tags.get("METHOD")
    return "interpolated over the clear observations of a cloud mask" + (f" ({method})" if method else "")


def check_cloud_masked(stack_paths: list[str], mask_paths: list[str | None], allow_unmasked: bool, argument: str) -> int:
    """Refuse stacks that were never cloud-masked and have no mask given; returns how many were accepted anyway.

    ``argument``: the caller's argument naming the stacks (e.g. ``"stack_paths"``)."""
    unmasked = []
    for path, mask in zip(stack_paths, mask_paths):
        if mask:
            continue
        try:
            tags = read_stack_info(path)[3]
        except rasterio.errors.RasterioIOError:
            continue  # the caller reports unreadable stacks with its own message
        if cloud_provenance(tags) is None:
            unmasked.append(path)
    if unmasked and not allow_unmasked:
        listing = ", ".join(unmasked[:3]) + (f" and {len(unmasked) - 3} more" if len(unmasked) > 3 else "")
        raise InputError(
            f"{listing} {'was' if len(unmasked) == 1 else 'were'} never cloud-masked: clouds would be trained on or mapped "
            "as land cover. Run Cloud masks, then Temporal interpolation with that mask, and use its output; or give "
            "the cloud mask stack of this stack; or, knowing the stack is clear, allow unmasked stacks "
            "(the report will say so).",
            argument,
        )
    return len(unmasked)


def clear_pixels(mask_path: str, dates: list, grid: Grid, argument: str) -> np.ndarray:
    """(H, W) bool: pixels clear (0) on every date of the cloud mask stack; cloudy or no data → False.

    ``argument``: the caller's argument naming the mask (e.g. ``"mask_path"``).

    The mask must lie on the stack's grid and hold the stack's dates, or a single date (one mask
    for the whole stack).
    """
    try:
        mask_dates, _, mask_grid, _ = read_stack_info(mask_path)
        with rasterio.open(mask_path) as src:
            data = src.read()
    except (LandCoverError, rasterio.errors.RasterioIOError) as exc:
        raise InputError(f"Could not read the cloud mask {mask_path}: {exc}", argument) from exc
    if not mask_grid.same_as(grid):
        raise InputError(f"The cloud mask {mask_path} is not on the grid of its stack; use the mask made from that stack.", argument)
    if len(mask_dates) != 1 and list(mask_dates) != list(dates):
        raise InputError(
            f"The cloud mask {mask_path} has {len(mask_dates)} dates but its stack {len(dates)} other ones; give the mask of the "
            "same dates (e.g. of a single-date stack), or a single-date mask for the whole stack.",
            argument,
        )
    return np.all(data == MASK_CLEAR, axis=0)
