"""Stack/reference pairs read for training: layouts, grids and class tables checked against each other.

Pixel training (``lc_plugin.ml.train``) and tile export (``lc_plugin.reference.dataset``) take the
same input — time stacks with one reference raster each, on the same grid — and refuse the same
mistakes in the same words, so both read it here. Errors name the entry points' arguments
``stack_paths`` and ``reference_paths``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import rasterio

from ..core.classes import ClassTable
from ..core.errors import InputError, LandCoverError
from ..io.rasters import Grid, read_class_raster, read_class_table, read_stack_info
from ..timeseries.features import describe_layout_difference


@dataclass(frozen=True)
class TrainingInputs:
    """What the pairs hold, read without their pixels: one layout shared by every stack, one grid and
    class table (None when the reference has none) per pair."""

    dates: list[dt.date]
    bands: list[str]
    grids: list[Grid]
    tables: list[ClassTable | None]


def _stack_infos(stack_paths: Sequence[str]) -> list[tuple[list[dt.date], list[str], Grid, dict[str, str]]]:
    """Each stack's layout, grid and tags; every stack must have the first one's dates and bands."""
    infos = []
    for i, path in enumerate(stack_paths):
        try:
            infos.append(read_stack_info(path))
        except LandCoverError as exc:
            raise InputError(str(exc), argument="stack_paths") from exc
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"Could not open time stack {i + 1} ({path}): {exc}", argument="stack_paths") from exc
    dates0, bands0 = infos[0][0], infos[0][1]
    for i, (dates, bands, _, _) in enumerate(infos[1:], start=2):
        problems = describe_layout_difference(dates0, bands0, dates, bands, expected_label="stack 1", actual_label=f"stack {i}", exact_bands=True)
        if problems:
            raise InputError(
                f"All training stacks must share dates and bands, but {stack_paths[i - 1]} differs from {stack_paths[0]}: " + "; ".join(problems) + ".",
                argument="stack_paths",
            )
    return infos


def _reference_table(i: int, ref_path: str, stack_path: str, grid: Grid) -> ClassTable | None:
    """The class table of reference ``i``, checked to be an integer raster on its stack's grid."""
    try:
        with rasterio.open(ref_path) as src:
            ref_grid, dtype = Grid(src.crs, src.transform, src.width, src.height), np.dtype(src.dtypes[0])
        table = read_class_table(ref_path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"Could not open reference raster {i} ({ref_path}): {exc}", argument="reference_paths") from exc
    diff = grid.difference(ref_grid)
    if diff:
        raise InputError(
            f"Pair {i}: reference {ref_path} is not on the grid of stack {stack_path} ({diff}). "
            "Rasterize the reference onto that stack with the Reference step.",
            argument="reference_paths",
        )
    if dtype.kind not in "ui":
        raise InputError(f"Reference {ref_path} must be an integer class raster with ids 0–255.", argument="reference_paths")
    return table


def check_pairs(stack_paths: Sequence[str], reference_paths: Sequence[str], purpose: str) -> None:
    """Refuse no stacks, or stacks and references that do not pair one to one (``purpose``: what the
    stacks are for, e.g. "train on"), before anything is read."""
    if not stack_paths:
        raise InputError(f"Give at least one time stack to {purpose}.", argument="stack_paths")
    if len(stack_paths) != len(reference_paths):
        raise InputError(
            f"{len(stack_paths)} time stack(s) but {len(reference_paths)} reference raster(s); give one reference raster per stack, in the same order.",
            argument="reference_paths",
        )


def read_training_inputs(stack_paths: Sequence[str], reference_paths: Sequence[str]) -> TrainingInputs:
    """Layouts, grids and class tables of every pair, checked against each other (no pixels read)."""
    infos = _stack_infos(stack_paths)
    grids = [info[2] for info in infos]
    tables = [_reference_table(i, ref, stack, grid) for i, (ref, stack, grid) in enumerate(zip(reference_paths, stack_paths, grids), start=1)]
    return TrainingInputs(infos[0][0], infos[0][1], grids, tables)


def read_reference_labels(path: str) -> np.ndarray:
    """A reference raster's class ids as uint8 (0 = no data), refused when they do not fit 0–255."""
    labels = read_class_raster(path)[0]
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise InputError(f"Reference {path} must be an integer class raster with ids 0–255.", argument="reference_paths")
    return labels.astype(np.uint8)
