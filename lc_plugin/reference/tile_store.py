"""Tile stores of training tiles for deep-learning segmentation: their layout, and reading them back.

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

Only zarr (and numcodecs) is needed to write (``dataset.export_tiles``) or read it; torch stays with the training step.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.classes import ClassTable
from ..core.deps import install_advice, require
from ..core.errors import DependencyError, InputError
from ..io.rasters import parse_date

DATASET_VERSION = 1


def zarr_module() -> Any:
    """zarr 2 (zarr 3 has another storage API): imported when a store is written or read."""
    zarr = require("zarr")
    if int(zarr.__version__.split(".")[0]) != 2:
        raise DependencyError(
            f"Tile stores need zarr 2, but zarr {zarr.__version__} is installed in the Python that QGIS uses. "
            + install_advice("zarr>=2.18,<3")
        )
    return zarr


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
    _root: Any = field(default=None, repr=False, compare=False)
    _arrays: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def primary_sensor(self) -> str:
        return self.sensors[0]

    def _array(self, name: str) -> Any:
        """The zarr array ``<area>/<year>/<name>``, opened once (a training loop indexes it per sample)."""
        if name not in self._arrays:
            self._arrays[name] = self._root[f"{self.area}/{self.year}/{name}"]
        return self._arrays[name]

    @property
    def n_tiles(self) -> int:
        return int(self._array("labels").shape[0])

    def inputs(self, sensor: str | None = None) -> Any:
        """The zarr array (N, T, C, H, W) float32 of ``sensor`` (the primary one when None)."""
        name = sensor or self.primary_sensor
        if name not in self.sensors:
            raise InputError(f"The tile store has no sensor '{name}'; it has {', '.join(self.sensors)}.", argument="sensor")
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
    def labels(self) -> Any:
        """zarr array (N, H, W) uint8 of class ids, 0 = unlabelled."""
        return self._array("labels")

    @property
    def valid(self) -> Any:
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
            raise InputError(f"The test fold must be in 0–{self.n_folds - 1}, got {test_fold}.", argument="test_fold")
        folds = self.folds
        return np.flatnonzero(folds != test_fold), np.flatnonzero(folds == test_fold)


def open_tile_store(path: str) -> TileStore:
    """Open a store written by ``export_tiles`` (read-only)."""
    zarr = zarr_module()
    if not os.path.isfile(os.path.join(path, ".zattrs")):
        raise InputError(f"{path} is not a training tile store (no zarr metadata); export one with the Export training tiles step.", argument="path")
    root = zarr.open_group(zarr.storage.DirectoryStore(path), mode="r")
    attrs = dict(root.attrs)
    version = attrs.get("lc_dataset_version")
    if version is None:
        raise InputError(f"{path} is a zarr store but not one written by this plugin (no lc_dataset_version).", argument="path")
    if int(version) > DATASET_VERSION:
        raise InputError(f"{path} is a version {version} tile store; this plugin reads version {DATASET_VERSION}. Update the plugin.", argument="path")
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
