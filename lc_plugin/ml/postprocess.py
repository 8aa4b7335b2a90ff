"""Cleaning a finished class map: majority filter, sieve (minimum mapping unit), reclassification.

Why: a pixel classifier leaves salt-and-pepper noise that no map user wants (single forest pixels
in a field) and a legend that is often finer than the one a report needs. These are the steps
analysts apply after classification in every desktop tool; here they keep the map a class raster
of this plugin (UInt8, 0 = no data, class table and colours embedded) so the next step, the
styling and the accuracy report still know the classes.

The sieve is GDAL's (``gdal.SieveFilter``): regions smaller than the minimum mapping unit are
merged into their largest neighbouring region; no-data pixels (0) are masked, so they neither
grow nor swallow anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from ..core.atomic import check_not_input
from ..core.classes import NODATA_CLASS, ClassTable, LandCoverClass, default_color, merge_class_tables
from ..core.errors import InputError, LandCoverError
from ..core.monitor import Monitor, ensure_monitor
from ..io.rasters import Grid, read_class_raster, write_class_raster

CONNECTEDNESS = (4, 8)


def majority_filter(labels: np.ndarray, size: int) -> np.ndarray:
    """Each pixel takes the most frequent class of its ``size`` × ``size`` window.

    No-data pixels (0) stay no data and are not counted. A tie keeps the pixel's own class when
    it is among the most frequent, else the smallest tied id (deterministic, no bias towards
    the scan direction).
    """
    if size < 3 or size % 2 == 0:
        raise InputError(f"The majority window must be an odd number of pixels ≥ 3, not {size}.", argument="majority_size")
    best = np.zeros(labels.shape, dtype=np.int32)  # the highest window count so far
    winner = labels.copy()  # the class with that count (the smallest id on ties: ids come in order)
    own = np.zeros(labels.shape, dtype=np.int32)  # the window count of each pixel's own class
    for i in (int(i) for i in np.unique(labels) if i != NODATA_CLASS):  # one class at a time: memory stays O(H×W)
        count = _window_sum(labels == i, size)
        winner[count > best] = i
        np.maximum(best, count, out=best)
        mine = labels == i
        own[mine] = count[mine]
    out = np.where(own == best, labels, winner)
    out[labels == NODATA_CLASS] = NODATA_CLASS
    return out.astype(labels.dtype)


def _window_sum(mask: np.ndarray, size: int) -> np.ndarray:
    """Count of True in the ``size`` × ``size`` window around each pixel (edges: the part inside)."""
    r = size // 2
    padded = np.pad(mask.astype(np.int32), r)
    c = np.pad(padded.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    h, w = mask.shape
    return c[size : size + h, size : size + w] - c[:h, size : size + w] - c[size : size + h, :w] + c[:h, :w]


def sieve(labels: np.ndarray, min_pixels: int, connectedness: int = 4) -> np.ndarray:
    """Merge every region smaller than ``min_pixels`` into its largest neighbour (GDAL's sieve).

    Regions are ``connectedness``-connected (4: edges only, 8: corners too). No data (0) is
    masked out. A small region with no neighbour but no data is left as it is.
    """
    if connectedness not in CONNECTEDNESS:
        raise InputError(f"Connectedness must be 4 or 8, not {connectedness}.", argument="connectedness")
    if min_pixels < 1:
        raise InputError(f"The minimum mapping unit must be at least 1 pixel, not {min_pixels}.", argument="min_pixels")
    h, w = labels.shape
    driver = gdal.GetDriverByName("MEM")
    src = driver.Create("", w, h, 1, gdal.GDT_Byte)
    src.GetRasterBand(1).WriteArray(labels.astype(np.uint8))
    mask = driver.Create("", w, h, 1, gdal.GDT_Byte)
    mask.GetRasterBand(1).WriteArray((labels != NODATA_CLASS).astype(np.uint8))
    dst = driver.Create("", w, h, 1, gdal.GDT_Byte)
    result = gdal.SieveFilter(src.GetRasterBand(1), mask.GetRasterBand(1), dst.GetRasterBand(1), int(min_pixels), int(connectedness))
    if result != 0:
        raise LandCoverError(f"GDAL's sieve failed: {gdal.GetLastErrorMsg()}")
    return dst.GetRasterBand(1).ReadAsArray().astype(labels.dtype)


@dataclass(frozen=True)
class SieveResult:
    """How much ``sieve_file`` changed: pixels that changed class, of the classified (non-zero) pixels."""

    changed: int
    pixels: int


def sieve_file(
    input_path: str,
    out_path: str,
    min_pixels: int,
    connectedness: int = 4,
    majority_size: int = 0,
    monitor: Monitor | None = None,
) -> SieveResult:
    """Class raster → cleaned class raster (majority filter first when ``majority_size`` ≥ 3, then the sieve).

    Returns how many pixels changed. The class table and colours of the input are kept.
    """
    monitor = ensure_monitor(monitor)
    check_not_input(out_path, [input_path], "out_path")
    labels, classes, grid = _read_map(input_path)
    monitor.update(0.1)
    cleaned = majority_filter(labels, majority_size) if majority_size else labels
    monitor.update(0.5)
    cleaned = sieve(cleaned, min_pixels, connectedness)
    monitor.update(0.9)
    write_class_raster(out_path, cleaned, grid, classes or _table_of(cleaned))
    monitor.update(1.0)
    return SieveResult(changed=int((cleaned != labels).sum()), pixels=int((labels != NODATA_CLASS).sum()))


# --- reclassification ----------------------------------------------------------------------------


def reclassify_table(rows: Iterable[Sequence], classes: ClassTable | None) -> tuple[dict[int, int], ClassTable]:
    """Rows (old id, new id[, new name[, new colour]]) → id mapping and the new class table.

    A new id 0 makes the old class no data. Ids not in the table keep their class. A name or
    colour left empty comes from the class the new id stands for: the old class of that id if
    it keeps its id, else the first old class mapped to it (so renumbering keeps the legend),
    else the default legend.
    """
    old_classes = {c.id: c for c in classes or ()}
    mapping: dict[int, int] = {}
    names: dict[int, str] = {}
    colors: dict[int, str] = {}
    for n, row in enumerate(rows, start=1):
        old, new, name, color = _parse_row(row, n)
        if old in mapping and mapping[old] != new:
            raise InputError(f"row {n}: class {old} is already reclassified to {mapping[old]}.", argument="rows")
        mapping[old] = new
        for given, store, what in ((name, names, "name"), (color, colors, "colour")):
            if given and store.get(new, given) != given:
                raise InputError(f"row {n}: class {new} has two {what}s, {store[new]!r} and {given!r}.", argument="rows")
            if given:
                store[new] = given
    target = {i: mapping.get(i, i) for i in old_classes} | mapping  # every old id → its new id
    table = []
    for i in sorted({j for j in target.values() if j != NODATA_CLASS}):
        source = old_classes.get(i) if target.get(i) == i else None
        source = source or next((old_classes[o] for o, j in target.items() if j == i and o in old_classes), None)
        name = names.get(i) or (source.name if source else f"class {i}")
        color = colors.get(i) or (source.color if source else default_color(i, name))
        table.append(LandCoverClass(i, name, color))
    return mapping, ClassTable(table)


def _parse_row(row: Sequence, n: int) -> tuple[int, int, str, str]:
    cells = [str(c).strip() if c is not None else "" for c in row] + ["", ""]
    try:
        old, new = int(float(cells[0])), int(float(cells[1]))
    except ValueError:
        raise InputError(f"row {n}: the old and new class ids must be whole numbers, got {cells[0]!r} and {cells[1]!r}.", argument="rows") from None
    for value in (old, new):
        if not 0 <= value <= 255:
            raise InputError(f"row {n}: class ids are 0–255 (0 = no data), got {value}.", argument="rows")
    color = cells[3]
    if color and not (len(color) == 7 and color.startswith("#") and all(ch in "0123456789abcdefABCDEF" for ch in color[1:])):
        raise InputError(f"row {n}: colours are written #rrggbb, got {color!r}.", argument="rows")
    return old, new, cells[2], color.lower()


def reclassify(labels: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """Apply an id mapping through a 256-entry lookup table (unlisted ids keep their value)."""
    lut = np.arange(256, dtype=np.uint8)
    for old, new in mapping.items():
        lut[old] = new
    return lut[labels.astype(np.uint8)]


def reclassify_file(input_path: str, out_path: str, rows: Iterable[Sequence], monitor: Monitor | None = None) -> ClassTable:
    """Class raster + table rows → reclassified class raster with the new class table; returns the table."""
    monitor = ensure_monitor(monitor)
    check_not_input(out_path, [input_path], "out_path")
    labels, classes, grid = _read_map(input_path)
    mapping, table = reclassify_table(rows, classes or _table_of(labels))
    if not mapping:
        raise InputError("The reclassification table is empty; give at least one row old id, new id.", argument="rows")
    monitor.update(0.3)
    out = reclassify(labels, mapping)
    table = merge_class_tables([table], np.unique(out).tolist())[0]  # ids left unmapped but not in the table get a name
    write_class_raster(out_path, out, grid, table)
    monitor.update(1.0)
    return table


# --- shared ---------------------------------------------------------------------------------------


def _read_map(path: str) -> tuple[np.ndarray, ClassTable | None, Grid]:
    labels, classes, grid = read_class_raster(path)
    if labels.dtype != np.uint8:
        raise InputError(f"{path} is a {labels.dtype} raster; a class map is UInt8 with 0 = no data (the output of Classify).", argument="input_path")
    return labels, classes, grid


def _table_of(labels: np.ndarray) -> ClassTable:
    """A default table for a class raster written by another tool (ids present, default names)."""
    return merge_class_tables([], np.unique(labels).tolist())[0]
