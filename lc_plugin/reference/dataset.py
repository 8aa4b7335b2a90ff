"""Training tiles for deep-learning segmentation, cut from stacks + reference rasters into a zarr tile store.

Time stacks (interpolated, so every date is gap-free) and reference rasters are cut into square
tiles that a temporal U-Net trains on, with k-fold ids stratified over the classes; ``tile_store``
describes the store's layout and reads it back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from rasterio.transform import Affine
from rasterio.windows import Window

from ..core.atomic import atomic_directory, check_not_input
from ..core.classes import NODATA_CLASS, merge_class_tables
from ..core.errors import DataError, InputError, LandCoverError
from ..core.monitor import Monitor, ensure_monitor
from ..io.rasters import FILE_BLOCK_BYTES, Grid, read_stack_info, tile_starts
from ..timeseries.features import describe_layout_difference, read_bands_window
from ..timeseries.modalities import coarse_tile_size, coarse_tiles, pixel_size, tile_corners
from .tile_store import DATASET_VERSION, TileStore, open_tile_store, zarr_module
from .training_inputs import check_pairs, read_reference_labels, read_training_inputs

_RESERVED = {"labels", "valid", "folds", "transforms", "patches", "offsets"}


# --- folds -------------------------------------------------------------------------------------


def iterative_stratification(presence: np.ndarray, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold id per sample so every label is spread evenly over the folds (Sechidis et al. 2011).

    ``presence`` is (N, K) boolean: sample i carries label k. As in iterative-stratification's
    ``MultilabelStratifiedKFold`` (shuffled, equal fold sizes): the rarest label still to place
    goes first, each of its samples to the fold that most lacks that label (ties: the fold that
    most lacks samples, then random); samples without any label fill the emptiest folds last.
    Deterministic for a seed.
    """
    presence = np.asarray(presence, dtype=bool)
    n = presence.shape[0]
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    labels = presence[order]
    wanted = np.full(n_folds, n / n_folds)
    wanted_per_label = np.outer(np.full(n_folds, 1.0 / n_folds), labels.sum(axis=0))
    folds = np.full(n, -1, dtype=np.int64)
    todo = np.ones(n, dtype=bool)
    while todo.any():
        counts = labels[todo].sum(axis=0)
        if not counts.any():
            for i in np.flatnonzero(todo):
                best = np.flatnonzero(wanted == wanted.max())
                fold = best[rng.integers(best.size)] if best.size > 1 else best[0]
                folds[i] = fold
                wanted[fold] -= 1
            break
        rarest = np.flatnonzero(counts == counts[counts > 0].min())
        label = rarest[rng.integers(rarest.size)] if rarest.size > 1 else rarest[0]
        for i in np.flatnonzero(labels[:, label] & todo):
            need = wanted_per_label[:, label]
            best = np.flatnonzero(need == need.max())
            if best.size > 1:
                best = best[wanted[best] == wanted[best].max()]
            fold = best[rng.integers(best.size)] if best.size > 1 else best[0]
            folds[i] = fold
            todo[i] = False
            wanted_per_label[fold, labels[i]] -= 1
            wanted[fold] -= 1
    result = np.empty(n, dtype=np.int64)
    result[order] = folds
    return result


# --- tiling ------------------------------------------------------------------------------------


def _check_name(value: str, argument: str, what: str) -> str:
    """``value`` stripped, refused when it cannot name a zarr group (or would clash with the store's arrays)."""
    value = (value or "").strip()
    if not value or "/" in value or "\\" in value or value.startswith(".") or value in _RESERVED:
        raise InputError(
            f"The {what} name '{value}' cannot name a zarr group: give a non-empty name without '/' or a leading '.', "
            f"other than {', '.join(sorted(_RESERVED))}.",
            argument=argument,
        )
    return value


def _dataset_year(dates: list[dt.date]) -> int:
    """The year most of the stack's dates fall in (an interpolated year may spill into the next one)."""
    years, counts = np.unique([d.year for d in dates], return_counts=True)
    return int(years[np.argmax(counts)])


def _extra_layouts(extra_stacks, stack_paths, grids, tile_size: int) -> dict[str, tuple[list[dt.date], list[str], int | None]]:
    """Dates, bands and coarse tile size (None: on the primary grids) of each extra sensor, checked to be one layout
    per sensor, and either on the primary grids or at a coarser resolution whose pixels tile the primary tiles."""
    layouts = {}
    for sensor, paths in extra_stacks.items():
        paths = list(paths)
        if len(paths) != len(stack_paths):
            raise InputError(
                f"Sensor {sensor}: {len(paths)} extra stack(s) for {len(stack_paths)} time stack(s); give one per stack, in the same order.",
                argument="extra_stacks",
            )
        first, sizes = None, set()
        for i, (path, grid) in enumerate(zip(paths, grids), start=1):
            try:
                dates, bands, extra_grid, _ = read_stack_info(path)
            except (LandCoverError, rasterio.errors.RasterioIOError) as exc:
                raise InputError(f"Sensor {sensor}, extra stack {i} ({path}): {exc}", argument="extra_stacks") from exc
            if first is None:
                first = (dates, bands)
            problems = describe_layout_difference(*first, dates, bands, expected_label="extra stack 1", actual_label=f"extra stack {i}", exact_bands=True)
            if problems:
                raise InputError(
                    f"Sensor {sensor}: all extra stacks must share dates and bands, but {path} differs: " + "; ".join(problems) + ".", argument="extra_stacks"
                )
            sizes.add(_extra_tile_size(sensor, path, stack_paths[i - 1], grid, extra_grid, tile_size))
        if len(sizes) > 1:
            raise InputError(
                f"Sensor {sensor}: the extra stacks must all have one resolution (on the primary grid or all coarser alike).", argument="extra_stacks"
            )
        if first is None:  # cannot happen: one extra stack per time stack, and there is at least one
            raise InputError(f"Sensor {sensor}: no extra stack given.", argument="extra_stacks")
        layouts[sensor] = (*first, sizes.pop())
    return layouts


def _extra_tile_size(sensor: str, path: str, stack_path: str, grid: Grid, extra_grid: Grid, tile_size: int) -> int | None:
    """None for a stack on the primary grid; the coarse tile size for a coarser one (its own resolution is kept)."""
    diff = grid.difference(extra_grid)
    if diff is None:
        return None
    same_resolution = np.isclose(abs(extra_grid.transform.a), abs(grid.transform.a)) and np.isclose(abs(extra_grid.transform.e), abs(grid.transform.e))
    if same_resolution or abs(extra_grid.transform.a) < abs(grid.transform.a):
        raise InputError(
            f"Sensor {sensor}: extra stack {path} is not on the grid of time stack {stack_path} ({diff}); give it on that grid, "
            "or at a coarser resolution in the same CRS (kept as it is).",
            argument="extra_stacks",
        )
    return coarse_tile_size(tile_size, grid, extra_grid, "extra_stacks")


def _write_sensor_tiles(
    src_path: str, dates, bands, tiles: np.ndarray, out, index0: int, tile_size: int, finite: np.ndarray | None, monitor
) -> None:
    """Cut the (row, col) ``tiles`` of one stack into ``out[index0:]``, reading row strips no wider than the
    read budget; ``finite[index0 + i]`` (when given) gets where every date and band of tile i is finite."""
    budget_cols = max(tile_size, FILE_BLOCK_BYTES // (4 * len(dates) * len(bands) * tile_size))
    file_bands = read_stack_info(src_path)[1]  # this file's band order; ``bands`` is the store's
    with rasterio.open(src_path) as src:
        rows = np.unique(tiles[:, 0])
        for k, row in enumerate(rows):
            in_row = np.flatnonzero(tiles[:, 0] == row)
            start = 0
            while start < in_row.size:
                col0 = tiles[in_row[start], 1]
                stop = start + 1
                while stop < in_row.size and tiles[in_row[stop], 1] + tile_size - col0 <= budget_cols:
                    stop += 1
                width = tiles[in_row[stop - 1], 1] + tile_size - col0
                strip = read_bands_window(src, len(dates), file_bands, bands, Window(int(col0), int(row), int(width), tile_size))
                for i in in_row[start:stop]:
                    c = tiles[i, 1] - col0
                    tile = strip[..., c : c + tile_size]
                    out[index0 + i] = tile
                    if finite is not None:
                        finite[index0 + i] = np.isfinite(tile).all(axis=(0, 1))
                start = stop
            monitor.update((k + 1) / rows.size)


def _write_coarse_tiles(src_path: str, dates, bands, grid: Grid, offsets: np.ndarray, out, index0: int, size: int) -> None:
    """The coarse stack's tiles under the primary tiles at ``offsets`` of ``grid``, at the coarse stack's own resolution."""
    file_bands = read_stack_info(src_path)[1]
    with rasterio.open(src_path) as src:
        coarse_grid = Grid(src.crs, src.transform, src.width, src.height)
        stack = read_bands_window(src, len(dates), file_bands, bands, Window(0, 0, src.width, src.height))
    if len(offsets):
        out[index0:index0 + len(offsets)] = coarse_tiles(stack, coarse_grid, tile_corners(grid, offsets), size)


@dataclass(frozen=True)
class TileConfig:
    """How stacks are cut into tiles and named in the store (see ``export_tiles``)."""

    tile_size: int = 64
    overlap: int = 0
    n_folds: int = 5
    seed: int = 0
    area: str = "aoi"
    year: int | None = None  # None: the year most dates fall in
    sensor: str = "S2L2A"
    min_labelled_fraction: float = 0.0

    def checked(self, extra_sensors: Sequence[str]) -> TileConfig:
        """Refuse bad numbers and names before reading anything; returns the config with the names stripped."""
        if self.tile_size < 1:
            raise InputError(f"The tile size must be at least 1 pixel, got {self.tile_size}.", argument="tile_size")
        if not 0 <= self.overlap < self.tile_size:
            raise InputError(
                f"The overlap must be in 0–{self.tile_size - 1} pixels (below the tile size {self.tile_size}), got {self.overlap}.", argument="overlap"
            )
        if not 2 <= self.n_folds <= 127:
            raise InputError(f"k-fold assignment needs 2 to 127 folds, got {self.n_folds}.", argument="n_folds")
        if not 0.0 <= self.min_labelled_fraction <= 1.0:
            raise InputError(f"The minimum labelled fraction must be in [0, 1], got {self.min_labelled_fraction}.", argument="min_labelled_fraction")
        area = _check_name(self.area, "area", "area")
        sensor = _check_name(self.sensor, "sensor", "sensor")
        for name in extra_sensors:
            if _check_name(name, "extra_stacks", "extra sensor") == sensor:
                raise InputError(f"The extra sensor needs a name other than the primary sensor's ({sensor}).", argument="extra_stacks")
        return dataclasses.replace(self, area=area, sensor=sensor)



def _check_output(output_path: str, inputs: list[str]) -> None:
    """The store replaces ``output_path``: refuse an input, a folder holding inputs, or a folder that is not a store."""
    check_not_input(output_path, inputs, "output_path")
    out_real = os.path.realpath(output_path)
    if any(os.path.realpath(p).startswith(out_real + os.sep) for p in inputs):
        raise InputError(f"An input lies inside the output folder {output_path}, which would be replaced; choose another output.", argument="output_path")
    if os.path.exists(output_path) and not (
        os.path.isfile(os.path.join(output_path, ".zattrs")) or (os.path.isdir(output_path) and not os.listdir(output_path))
    ):
        raise InputError(f"{output_path} exists and is not a tile store; choose a new folder name (ending in .zarr).", argument="output_path")


def _labelled_tiles(path: str, grid: Grid, labels: np.ndarray, tile_size: int, overlap: int, min_labelled_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) offsets (n, 2) and labels (n, tile, tile) of a patch's tiles that are labelled enough."""
    if grid.height < tile_size or grid.width < tile_size:
        raise InputError(
            f"Patch {path} is {grid.width}×{grid.height} pixels, smaller than a {tile_size}-pixel tile; lower the tile size to at most "
            f"{min(grid.width, grid.height)}.",
            argument="tile_size",
        )
    rows, cols = np.meshgrid(tile_starts(grid.height, tile_size, overlap), tile_starts(grid.width, tile_size, overlap), indexing="ij")
    offsets = np.stack([rows.ravel(), cols.ravel()], axis=1)
    windows = np.lib.stride_tricks.sliding_window_view(labels, (tile_size, tile_size))[offsets[:, 0], offsets[:, 1]]
    labelled = (windows != NODATA_CLASS).mean(axis=(1, 2))
    keep = (labelled > 0) & (labelled >= min_labelled_fraction)
    return offsets[keep], windows[keep]


@dataclass(frozen=True)
class _Tiles:
    """The tiles to write: per patch the (row, col) offsets of its tiles; for all tiles labels, folds, patch and georeferencing."""

    patch_offsets: list[np.ndarray]
    labels: np.ndarray  # (N, tile, tile) uint8
    folds: np.ndarray  # (N,)
    patches: np.ndarray  # (N,) int32
    offsets: np.ndarray  # (N, 2) int32
    transforms: np.ndarray  # (N, 6)

    @property
    def n(self) -> int:
        return len(self.labels)


def export_tiles(
    stack_paths: Sequence[str],
    reference_paths: Sequence[str],
    output_path: str,
    config: TileConfig | None = None,
    *,
    extra_stacks: dict[str, Sequence[str]] | None = None,
    monitor: Monitor | None = None,
    **settings: Any,
) -> TileStore:
    """Cut stacks + reference rasters into labelled tiles with k-fold ids and write them as a zarr store.

    Tiles cover each patch with stride ``tile_size - overlap``; a tile is kept when some of its
    pixels are labelled and at least ``min_labelled_fraction`` of them are. ``extra_stacks`` maps
    another sensor's name to stacks on the same grids (one per stack, same order), stored as its own
    group. ``settings`` overrides fields of ``config`` by name (``export_tiles(s, r, out, tile_size=32)``).
    The store is built beside ``output_path`` and renamed into place when complete.
    """
    zarr = zarr_module()
    monitor = ensure_monitor(monitor)
    stack_paths, reference_paths = list(stack_paths), list(reference_paths)
    extras = {k: list(v) for k, v in (extra_stacks or {}).items()}
    check_pairs(stack_paths, reference_paths, "cut into tiles")
    config = dataclasses.replace(config or TileConfig(), **settings).checked(list(extras))
    _check_output(output_path, stack_paths + reference_paths + [p for paths in extras.values() for p in paths])
    inputs = read_training_inputs(stack_paths, reference_paths)
    patch_labels = [read_reference_labels(path) for path in reference_paths]
    crs = inputs.grids[0].crs
    for path, grid in zip(stack_paths[1:], inputs.grids[1:]):
        if grid.crs != crs:
            raise InputError(
                f"All stacks must share one CRS for the store's tile georeferencing, but {path} is in {grid.crs}, not {crs}.", argument="stack_paths"
            )
    layouts = {config.sensor: (inputs.dates, inputs.bands, None), **_extra_layouts(extras, stack_paths, inputs.grids, config.tile_size)}
    classes, conflicts = merge_class_tables(inputs.tables, {int(v) for lab in patch_labels for v in np.unique(lab)})
    for c in conflicts:
        monitor.info(f"Class {c.class_id} is called '{c.kept}' in one reference and '{c.other}' in another; using '{c.kept}'.")
    tiles = _cut_tiles(stack_paths, inputs.grids, patch_labels, config, monitor)
    year = _dataset_year(inputs.dates) if config.year is None else int(config.year)
    with atomic_directory(output_path) as tmp:
        root = zarr.group(store=zarr.storage.DirectoryStore(tmp), overwrite=True)
        root.attrs.update(
            lc_dataset_version=DATASET_VERSION, area=config.area, year=year, classes=json.loads(classes.to_json()), tile_size=config.tile_size,
            overlap=config.overlap, crs=crs.to_wkt(), n_folds=config.n_folds, seed=config.seed, sensors=list(layouts), primary_sensor=config.sensor,
        )
        group = root.create_group(f"{config.area}/{year}")
        _write_tile_arrays(group, tiles, config.tile_size, [os.path.basename(p) for p in stack_paths])
        finite = _write_sensors(group, layouts, {config.sensor: stack_paths, **extras}, tiles, inputs.grids, config.tile_size, monitor)
        group.array("valid", (tiles.labels != NODATA_CLASS) & finite, chunks=(1, config.tile_size, config.tile_size), dtype=bool)
    return open_tile_store(output_path)


def _cut_tiles(stack_paths: list[str], grids: list[Grid], patch_labels: list[np.ndarray], config: TileConfig, monitor: Monitor) -> _Tiles:
    """The labelled-enough tiles of every patch, with k-fold ids stratified over the classes each tile holds."""
    size = config.tile_size
    patch_offsets, tile_labels = zip(
        *(_labelled_tiles(path, grid, lab, size, config.overlap, config.min_labelled_fraction) for path, grid, lab in zip(stack_paths, grids, patch_labels))
    )
    n = sum(len(t) for t in patch_offsets)
    if n == 0:
        raise DataError(
            f"No {size}-pixel tile has labelled pixels"
            + (f" on at least {config.min_labelled_fraction:.0%} of its area" if config.min_labelled_fraction > 0 else "")
            + "; check that the reference rasters overlap the stacks, or lower the tile size.",
            argument="reference_paths",
        )
    if n < config.n_folds:
        raise DataError(f"Only {n} labelled tile(s), fewer than the {config.n_folds} folds; use fewer folds or smaller tiles.", argument="n_folds")
    labels = np.concatenate(tile_labels)
    presence = np.zeros((n, 256), dtype=bool)
    presence[np.repeat(np.arange(n), size * size), labels.ravel()] = True
    presence[:, NODATA_CLASS] = False
    folds = iterative_stratification(presence[:, presence.any(axis=0)], config.n_folds, config.seed)
    monitor.info(
        f"{n} tiles of {size}×{size} pixels from {len(stack_paths)} patch(es); tiles per fold: "
        + ", ".join(str(int(c)) for c in np.bincount(folds, minlength=config.n_folds))
    )
    tile_patch = np.concatenate([np.full(len(t), p, dtype=np.int32) for p, t in enumerate(patch_offsets)])
    tile_offsets = np.concatenate(patch_offsets).astype(np.int32)
    transforms = np.array([tuple(grids[p].transform * Affine.translation(c, r))[:6] for p, (r, c) in zip(tile_patch, tile_offsets.tolist())])
    return _Tiles(list(patch_offsets), labels, folds, tile_patch, tile_offsets, transforms)


def _write_tile_arrays(group: Any, tiles: _Tiles, tile_size: int, patch_names: list[str]) -> None:
    """The per-tile arrays of the store's ``<area>/<year>`` group, but the sensors' data and ``valid``."""
    group.array("labels", tiles.labels, chunks=(1, tile_size, tile_size), dtype=np.uint8)
    group.array("folds", tiles.folds.astype(np.int8))
    group.array("transforms", tiles.transforms)
    group.array("patches", tiles.patches).attrs["patch_names"] = patch_names
    group.array("offsets", tiles.offsets)


def _write_sensors(
    group: Any, layouts: dict[str, tuple], sources: dict[str, list[str]], tiles: _Tiles, grids: list[Grid], tile_size: int, monitor: Monitor
) -> np.ndarray:
    """Each sensor's ``data`` (the primary one first); returns where every primary value of each tile is finite."""
    finite = np.ones((tiles.n, tile_size, tile_size), dtype=bool)
    n_patches = len(grids)
    steps = len(layouts) * n_patches
    for s, (name, (s_dates, s_bands, coarse)) in enumerate(layouts.items()):
        size = coarse or tile_size
        sensor_group = group.create_group(name)
        sensor_group.attrs.update(dates=[d.isoformat() for d in s_dates], bands=list(s_bands))
        data = sensor_group.create_dataset(
            "data", shape=(tiles.n, len(s_dates), len(s_bands), size, size), chunks=(1, len(s_dates), len(s_bands), size, size),
            dtype=np.float32, fill_value=np.nan,
        )
        if coarse:
            sensor_group.attrs.update(resolution=pixel_size(Grid.of(sources[name][0])), primary_resolution=pixel_size(grids[0]))
        index0 = 0
        for p, (path, offsets) in enumerate(zip(sources[name], tiles.patch_offsets)):
            sub = monitor.sub((s * n_patches + p) / steps, (s * n_patches + p + 1) / steps)
            if coarse:
                _write_coarse_tiles(path, s_dates, s_bands, grids[p], offsets, data, index0, coarse)
                sub.update(1.0)
            else:
                _write_sensor_tiles(path, s_dates, s_bands, offsets, data, index0, tile_size, finite if s == 0 else None, sub)
            index0 += len(offsets)
    return finite
