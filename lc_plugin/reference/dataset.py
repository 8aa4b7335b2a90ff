"""Training tiles for deep-learning segmentation, exported to a zarr store and read back.

Time stacks (interpolated, so every date is gap-free) and reference rasters are cut into square
tiles that a temporal U-Net trains on. The store follows the thesis's layout, one group per
area / year / sensor, so several areas, years or sensors can sit side by side::

    <store>/                          attrs: lc_dataset_version, area, year, classes, tile_size, overlap,
                                             crs (WKT), n_folds, seed, sensors, primary_sensor
    <store>/<area>/<year>/<sensor>/   attrs: dates (YYYY-MM-DD), bands (+ resolution, primary_resolution for a coarser sensor)
        data        float32 (N, T, C, H, W), one chunk per tile, NaN = no data; a coarser second sensor (e.g. OLCI at
                    300 m beside Sentinel-2 at 10 m) keeps its own resolution: (N, T2, C2, h, h), h = H·r1/r2, each
                    tile covering the same ground as the primary tile of the same index (lc_plugin.timeseries.modalities)
    <store>/<area>/<year>/labels      uint8 (N, H, W), 0 = unlabelled / no data
    <store>/<area>/<year>/valid       bool (N, H, W): labelled and every primary-sensor value finite
    <store>/<area>/<year>/folds       int8 (N,): k-fold id, multilabel-stratified over the classes per tile
    <store>/<area>/<year>/transforms  float64 (N, 6): each tile's affine (a, b, c, d, e, f) in ``crs``
    <store>/<area>/<year>/patches     int32 (N,): source patch index (attrs ``patch_names``)
    <store>/<area>/<year>/offsets     int32 (N, 2): the tile's (row, col) offset within its patch

Only zarr (and numcodecs) is needed to write or read it; torch stays with the training step.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import rasterio
from rasterio.transform import Affine
from rasterio.windows import Window

from ..core.atomic import atomic_directory, check_not_input
from ..core.classes import NODATA_CLASS, ClassTable
from ..core.deps import install_advice, require
from ..core.errors import LandCoverError
from ..core.monitor import ensure_monitor
from ..io.rasters import FILE_BLOCK_BYTES, Grid, parse_date, read_stack_info, tile_starts
from ..ml.train import merge_class_tables, read_reference_labels, read_training_inputs
from ..timeseries.features import describe_layout_difference, read_bands_window
from ..timeseries.modalities import coarse_tile_size, coarse_tiles, pixel_size, tile_corners

DATASET_VERSION = 1
_RESERVED = {"labels", "valid", "folds", "transforms", "patches", "offsets"}


def _zarr():
    """zarr 2 (zarr 3 has another storage API): imported when a store is written or read."""
    zarr = require("zarr")
    if int(zarr.__version__.split(".")[0]) != 2:
        raise LandCoverError(
            f"Tile stores need zarr 2, but zarr {zarr.__version__} is installed in the Python that QGIS uses. "
            + install_advice("zarr>=2.18,<3")
        )
    return zarr


# --- reading -----------------------------------------------------------------------------------


@dataclass
class TileStore:
    """An opened tile store: metadata as fields, arrays read lazily from zarr.

    ``dates`` and ``bands`` describe the primary sensor (``sensors[0]``); ``crs`` is WKT.
    """

    path: str
    area: str
    year: int
    classes: ClassTable
    dates: list[dt.date]
    bands: list[str]
    sensors: list[str]
    tile_size: int
    n_folds: int
    crs: str
    overlap: int = 0
    seed: int = 0
    _root: object = field(default=None, repr=False, compare=False)
    _arrays: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def primary_sensor(self) -> str:
        return self.sensors[0]

    def _array(self, name: str):
        """The zarr array ``<area>/<year>/<name>``, opened once (a training loop indexes it per sample)."""
        if name not in self._arrays:
            self._arrays[name] = self._root[f"{self.area}/{self.year}/{name}"]
        return self._arrays[name]

    @property
    def n_tiles(self) -> int:
        return int(self._array("labels").shape[0])

    def inputs(self, sensor: str | None = None):
        """The zarr array (N, T, C, H, W) float32 of ``sensor`` (the primary one when None)."""
        name = sensor or self.primary_sensor
        if name not in self.sensors:
            raise LandCoverError(f"The tile store has no sensor '{name}'; it has {', '.join(self.sensors)}.", "SENSOR")
        return self._array(f"{name}/data")

    def sensor_meta(self, sensor: str | None = None) -> tuple[list[dt.date], list[str]]:
        """Dates and band names of ``sensor``'s inputs."""
        name = sensor or self.primary_sensor
        self.inputs(name)  # refuses an unknown sensor
        attrs = self._root[f"{self.area}/{self.year}/{name}"].attrs
        return [parse_date(d) for d in attrs["dates"]], list(attrs["bands"])

    def sensor_tile_size(self, sensor: str | None = None) -> int:
        """Tile side in pixels of ``sensor``: the store's tile size, or fewer for a coarser modality."""
        name = sensor or self.primary_sensor
        return int(self.inputs(name).shape[-1])

    def sensor_resolution(self, sensor: str | None = None) -> float:
        """Pixel size of ``sensor``'s tiles in CRS units (a coarser modality keeps its own)."""
        name = sensor or self.primary_sensor
        self.inputs(name)
        primary = float(abs(self.transforms[0][0]))
        return float(self._root[f"{self.area}/{self.year}/{name}"].attrs.get("resolution", primary))

    @property
    def labels(self):
        """zarr array (N, H, W) uint8 of class ids, 0 = unlabelled."""
        return self._array("labels")

    @property
    def valid(self):
        """zarr array (N, H, W) bool: pixels a loss may use."""
        return self._array("valid")

    @property
    def folds(self) -> np.ndarray:
        return self._array("folds")[:]

    @property
    def transforms(self) -> np.ndarray:
        return self._array("transforms")[:]

    @property
    def patches(self) -> np.ndarray:
        return self._array("patches")[:]

    @property
    def patch_names(self) -> list[str]:
        return list(self._array("patches").attrs["patch_names"])

    @property
    def offsets(self) -> np.ndarray:
        return self._array("offsets")[:]

    def fold_indices(self, test_fold: int) -> tuple[np.ndarray, np.ndarray]:
        """(train, test) tile indices, sorted, with ``test_fold`` held out."""
        if not 0 <= test_fold < self.n_folds:
            raise LandCoverError(f"The test fold must be in 0–{self.n_folds - 1}, got {test_fold}.", "FOLD")
        folds = self.folds
        return np.flatnonzero(folds != test_fold), np.flatnonzero(folds == test_fold)


def open_tile_store(path: str) -> TileStore:
    """Open a store written by ``export_tiles`` (read-only)."""
    zarr = _zarr()
    if not os.path.isfile(os.path.join(path, ".zattrs")):
        raise LandCoverError(f"{path} is not a training tile store (no zarr metadata); export one with the Export training tiles step.", "DATASET")
    root = zarr.open_group(zarr.storage.DirectoryStore(path), mode="r")
    attrs = dict(root.attrs)
    version = attrs.get("lc_dataset_version")
    if version is None:
        raise LandCoverError(f"{path} is a zarr store but not one written by this plugin (no lc_dataset_version).", "DATASET")
    if int(version) > DATASET_VERSION:
        raise LandCoverError(f"{path} is a version {version} tile store; this plugin reads version {DATASET_VERSION}. Update the plugin.", "DATASET")
    classes = ClassTable.from_json(json.dumps(attrs["classes"]))
    sensor_attrs = root[f"{attrs['area']}/{attrs['year']}/{attrs['primary_sensor']}"].attrs
    sensors = [attrs["primary_sensor"]] + [s for s in attrs["sensors"] if s != attrs["primary_sensor"]]
    return TileStore(
        path=path,
        area=attrs["area"],
        year=int(attrs["year"]),
        classes=classes,
        dates=[parse_date(d) for d in sensor_attrs["dates"]],
        bands=list(sensor_attrs["bands"]),
        sensors=sensors,
        tile_size=int(attrs["tile_size"]),
        n_folds=int(attrs["n_folds"]),
        crs=attrs["crs"],
        overlap=int(attrs["overlap"]),
        seed=int(attrs["seed"]),
        _root=root,
    )


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


def _check_name(value: str, parameter: str, what: str) -> str:
    value = (value or "").strip()
    if not value or "/" in value or "\\" in value or value.startswith(".") or value in _RESERVED:
        raise LandCoverError(
            f"The {what} name '{value}' cannot name a zarr group: give a non-empty name without '/' or a leading '.', "
            f"other than {', '.join(sorted(_RESERVED))}.",
            parameter,
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
            raise LandCoverError(
                f"Sensor {sensor}: {len(paths)} extra stack(s) for {len(stack_paths)} time stack(s); give one per stack, in the same order.",
                "EXTRA_STACKS",
            )
        first, sizes = None, set()
        for i, (path, grid) in enumerate(zip(paths, grids), start=1):
            try:
                dates, bands, extra_grid, _ = read_stack_info(path)
            except (LandCoverError, rasterio.errors.RasterioIOError) as exc:
                raise LandCoverError(f"Sensor {sensor}, extra stack {i} ({path}): {exc}", "EXTRA_STACKS") from exc
            if first is None:
                first = (dates, bands)
            problems = describe_layout_difference(*first, dates, bands, expected_label="extra stack 1", actual_label=f"extra stack {i}", exact_bands=True)
            if problems:
                raise LandCoverError(
                    f"Sensor {sensor}: all extra stacks must share dates and bands, but {path} differs: " + "; ".join(problems) + ".", "EXTRA_STACKS"
                )
            sizes.add(_extra_tile_size(sensor, path, stack_paths[i - 1], grid, extra_grid, tile_size))
        if len(sizes) > 1:
            raise LandCoverError(f"Sensor {sensor}: the extra stacks must all have one resolution (on the primary grid or all coarser alike).", "EXTRA_STACKS")
        layouts[sensor] = (*first, sizes.pop())
    return layouts


def _extra_tile_size(sensor: str, path: str, stack_path: str, grid: Grid, extra_grid: Grid, tile_size: int) -> int | None:
    """None for a stack on the primary grid; the coarse tile size for a coarser one (its own resolution is kept)."""
    diff = grid.difference(extra_grid)
    if diff is None:
        return None
    same_resolution = np.isclose(abs(extra_grid.transform.a), abs(grid.transform.a)) and np.isclose(abs(extra_grid.transform.e), abs(grid.transform.e))
    if same_resolution or abs(extra_grid.transform.a) < abs(grid.transform.a):
        raise LandCoverError(
            f"Sensor {sensor}: extra stack {path} is not on the grid of time stack {stack_path} ({diff}); give it on that grid, "
            "or at a coarser resolution in the same CRS (kept as it is).",
            "EXTRA_STACKS",
        )
    return coarse_tile_size(tile_size, grid, extra_grid, "EXTRA_STACKS")


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


def _check_export_parameters(
    stack_paths, reference_paths, tile_size, overlap, n_folds, min_labelled_fraction, area, sensor, extra_stacks
) -> tuple[str, str]:
    """Refuse bad numbers and names before reading anything; returns the cleaned area and sensor names."""
    if not stack_paths:
        raise LandCoverError("Give at least one time stack to cut into tiles.", "INPUT")
    if len(stack_paths) != len(reference_paths):
        raise LandCoverError(
            f"{len(stack_paths)} time stack(s) but {len(reference_paths)} reference raster(s); give one reference raster per stack, in the same order.",
            "REFERENCE",
        )
    if tile_size < 1:
        raise LandCoverError(f"The tile size must be at least 1 pixel, got {tile_size}.", "TILE_SIZE")
    if not 0 <= overlap < tile_size:
        raise LandCoverError(f"The overlap must be in 0–{tile_size - 1} pixels (below the tile size {tile_size}), got {overlap}.", "OVERLAP")
    if not 2 <= n_folds <= 127:
        raise LandCoverError(f"k-fold assignment needs 2 to 127 folds, got {n_folds}.", "FOLDS")
    if not 0.0 <= min_labelled_fraction <= 1.0:
        raise LandCoverError(f"The minimum labelled fraction must be in [0, 1], got {min_labelled_fraction}.", "MIN_LABELLED_FRACTION")
    area = _check_name(area, "AREA", "area")
    sensor = _check_name(sensor, "SENSOR", "sensor")
    for name in extra_stacks:
        if _check_name(name, "EXTRA_SENSOR", "extra sensor") == sensor:
            raise LandCoverError(f"The extra sensor needs a name other than the primary sensor's ({sensor}).", "EXTRA_SENSOR")
    return area, sensor


def _check_output(output_path: str, inputs: list[str]) -> None:
    """The store replaces ``output_path``: refuse an input, a folder holding inputs, or a folder that is not a store."""
    check_not_input(output_path, inputs, "OUTPUT")
    out_real = os.path.realpath(output_path)
    if any(os.path.realpath(p).startswith(out_real + os.sep) for p in inputs):
        raise LandCoverError(f"An input lies inside the output folder {output_path}, which would be replaced; choose another output.", "OUTPUT")
    if os.path.exists(output_path) and not (
        os.path.isfile(os.path.join(output_path, ".zattrs")) or (os.path.isdir(output_path) and not os.listdir(output_path))
    ):
        raise LandCoverError(f"{output_path} exists and is not a tile store; choose a new folder name (ending in .zarr).", "OUTPUT")


def _labelled_tiles(path: str, grid, labels: np.ndarray, tile_size: int, overlap: int, min_labelled_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) offsets (n, 2) and labels (n, tile, tile) of a patch's tiles that are labelled enough."""
    if grid.height < tile_size or grid.width < tile_size:
        raise LandCoverError(
            f"Patch {path} is {grid.width}×{grid.height} pixels, smaller than a {tile_size}-pixel tile; lower TILE_SIZE to at most "
            f"{min(grid.width, grid.height)}.",
            "TILE_SIZE",
        )
    rows, cols = np.meshgrid(tile_starts(grid.height, tile_size, overlap), tile_starts(grid.width, tile_size, overlap), indexing="ij")
    offsets = np.stack([rows.ravel(), cols.ravel()], axis=1)
    windows = np.lib.stride_tricks.sliding_window_view(labels, (tile_size, tile_size))[offsets[:, 0], offsets[:, 1]]
    labelled = (windows != NODATA_CLASS).mean(axis=(1, 2))
    keep = (labelled > 0) & (labelled >= min_labelled_fraction)
    return offsets[keep], windows[keep]


def export_tiles(
    stack_paths: Sequence[str],
    reference_paths: Sequence[str],
    output_path: str,
    *,
    tile_size: int = 64,
    overlap: int = 0,
    n_folds: int = 5,
    seed: int = 0,
    area: str = "aoi",
    year: int | None = None,
    sensor: str = "S2L2A",
    extra_stacks: dict[str, Sequence[str]] | None = None,
    min_labelled_fraction: float = 0.0,
    monitor=None,
) -> TileStore:
    """Cut stacks + reference rasters into labelled tiles with k-fold ids and write them as a zarr store.

    Tiles cover each patch with stride ``tile_size - overlap``; a tile is kept when some of its
    pixels are labelled and at least ``min_labelled_fraction`` of them are. ``extra_stacks`` maps
    another sensor's name to stacks on the same grids (one per stack, same order), stored as its own
    group. The store is built beside ``output_path`` and renamed into place when complete.
    """
    zarr = _zarr()
    monitor = ensure_monitor(monitor)
    stack_paths, reference_paths = list(stack_paths), list(reference_paths)
    extra_stacks = {k: list(v) for k, v in (extra_stacks or {}).items()}
    area, sensor = _check_export_parameters(stack_paths, reference_paths, tile_size, overlap, n_folds, min_labelled_fraction, area, sensor, extra_stacks)
    _check_output(output_path, stack_paths + reference_paths + [p for paths in extra_stacks.values() for p in paths])

    dates, bands, grids, tables = read_training_inputs(stack_paths, reference_paths)
    patch_labels = [read_reference_labels(path) for path in reference_paths]
    crs = grids[0].crs
    for path, grid in zip(stack_paths[1:], grids[1:]):
        if grid.crs != crs:
            raise LandCoverError(f"All stacks must share one CRS for the store's tile georeferencing, but {path} is in {grid.crs}, not {crs}.", "INPUT")
    extra_layouts = _extra_layouts(extra_stacks, stack_paths, grids, tile_size)
    classes = merge_class_tables(tables, {int(v) for lab in patch_labels for v in np.unique(lab)}, monitor)
    year = _dataset_year(dates) if year is None else int(year)
    patch_tiles, tile_labels = zip(
        *(_labelled_tiles(path, grid, lab, tile_size, overlap, min_labelled_fraction) for path, grid, lab in zip(stack_paths, grids, patch_labels))
    )
    tile_patch = [np.full(len(t), p, dtype=np.int32) for p, t in enumerate(patch_tiles)]
    n = sum(len(t) for t in patch_tiles)
    if n == 0:
        raise LandCoverError(
            f"No {tile_size}-pixel tile has labelled pixels"
            + (f" on at least {min_labelled_fraction:.0%} of its area" if min_labelled_fraction > 0 else "")
            + "; check that the reference rasters overlap the stacks, or lower TILE_SIZE.",
            "REFERENCE",
        )
    if n < n_folds:
        raise LandCoverError(f"Only {n} labelled tile(s), fewer than the {n_folds} folds; lower FOLDS or TILE_SIZE.", "FOLDS")
    labels = np.concatenate(tile_labels)
    presence = np.zeros((n, 256), dtype=bool)
    presence[np.repeat(np.arange(n), tile_size * tile_size), labels.ravel()] = True
    presence[:, NODATA_CLASS] = False
    folds = iterative_stratification(presence[:, presence.any(axis=0)], n_folds, seed)
    monitor.info(
        f"{n} tiles of {tile_size}×{tile_size} pixels from {len(stack_paths)} patch(es); tiles per fold: "
        + ", ".join(str(int(c)) for c in np.bincount(folds, minlength=n_folds))
    )

    sensors = [sensor, *extra_layouts]
    layouts = {sensor: (dates, bands, None), **extra_layouts}
    sources = {sensor: stack_paths, **extra_stacks}
    tile_patch, tile_offsets = np.concatenate(tile_patch), np.concatenate(patch_tiles).astype(np.int32)
    transforms = np.array([tuple(grids[p].transform * Affine.translation(c, r))[:6] for p, (r, c) in zip(tile_patch, tile_offsets.tolist())])
    with atomic_directory(output_path) as tmp:
        root = zarr.group(store=zarr.storage.DirectoryStore(tmp), overwrite=True)
        root.attrs.update(
            lc_dataset_version=DATASET_VERSION, area=area, year=year, classes=json.loads(classes.to_json()), tile_size=tile_size,
            overlap=overlap, crs=crs.to_wkt(), n_folds=n_folds, seed=seed, sensors=sensors, primary_sensor=sensor,
        )
        group = root.create_group(f"{area}/{year}")
        group.array("labels", labels, chunks=(1, tile_size, tile_size), dtype=np.uint8)
        group.array("folds", folds.astype(np.int8))
        group.array("transforms", transforms)
        group.array("patches", tile_patch).attrs["patch_names"] = [os.path.basename(p) for p in stack_paths]
        group.array("offsets", tile_offsets)
        finite = np.ones((n, tile_size, tile_size), dtype=bool)
        steps = len(sensors) * len(stack_paths)
        for s, name in enumerate(sensors):
            s_dates, s_bands, coarse = layouts[name]
            size = coarse or tile_size
            sensor_group = group.create_group(name)
            sensor_group.attrs.update(dates=[d.isoformat() for d in s_dates], bands=list(s_bands))
            data = sensor_group.create_dataset(
                "data", shape=(n, len(s_dates), len(s_bands), size, size), chunks=(1, len(s_dates), len(s_bands), size, size),
                dtype=np.float32, fill_value=np.nan,
            )
            if coarse:
                sensor_group.attrs.update(resolution=pixel_size(Grid.of(sources[name][0])), primary_resolution=pixel_size(grids[0]))
            index0 = 0
            for p, (path, offsets) in enumerate(zip(sources[name], patch_tiles)):
                step = s * len(stack_paths) + p
                sub = monitor.sub(step / steps, (step + 1) / steps)
                if coarse:
                    _write_coarse_tiles(path, s_dates, s_bands, grids[p], offsets, data, index0, coarse)
                    sub.update(1.0)
                else:
                    _write_sensor_tiles(path, s_dates, s_bands, offsets, data, index0, tile_size, finite if s == 0 else None, sub)
                index0 += len(offsets)
        group.array("valid", (labels != NODATA_CLASS) & finite, chunks=(1, tile_size, tile_size), dtype=bool)
    return open_tile_store(output_path)
