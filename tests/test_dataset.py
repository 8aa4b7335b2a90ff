"""Training-tile export: zarr round trip, tiling, georeferencing, stratified folds and bad input."""

from __future__ import annotations

import datetime as dt
import json
import sys
import types

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.classes import make_class_table
from lc_plugin.core.errors import Cancelled, LandCoverError
from lc_plugin.core.monitor import Monitor
from lc_plugin.io.rasters import Grid, TimeStack, tile_starts, write_class_raster, write_stack
from lc_plugin.reference.dataset import export_tiles, iterative_stratification, open_tile_store

zarr = pytest.importorskip("zarr")

DATES = [dt.date(2017, 3, 1), dt.date(2017, 6, 1), dt.date(2017, 9, 1)]
BANDS = ["B04", "B08"]


def make_pair(folder, index: int, height: int, width: int, labels: np.ndarray | None = None, *, dates=DATES, bands=BANDS, nan_at=None):
    """stack_<index>.tif whose value encodes (date, band, row, col) and ref_<index>.tif with ``labels``;
    ``nan_at`` (t, b, row, col) marks one missing value."""
    grid = Grid(CRS.from_epsg(32633), from_origin(500000 + 10000 * index, 5100000, 10, 10), width, height)
    t, b, r, c = np.meshgrid(np.arange(len(dates)), np.arange(len(bands)), np.arange(height), np.arange(width), indexing="ij")
    data = (1000 * index + 100 * t + 10 * b + r + c / 1000).astype(np.float32)
    if nan_at is not None:
        data[nan_at] = np.nan
    if labels is None:
        labels = np.ones((height, width), np.uint8)
    stack, ref = str(folder / f"stack_{index}.tif"), str(folder / f"ref_{index}.tif")
    write_stack(stack, TimeStack(data, list(dates), list(bands), grid))
    write_class_raster(ref, labels.astype(np.uint8), grid, make_class_table({1: "cultivated land", 2: "forest", 3: "water"}))
    return stack, ref


def test_tile_starts_shift_the_last_tile_inward():
    assert tile_starts(10, 4) == [0, 4, 6]
    assert tile_starts(10, 4, overlap=1) == [0, 3, 6]
    assert tile_starts(8, 4) == [0, 4]
    assert tile_starts(4, 4) == [0]


def test_round_trip(tmp_path):
    labels = np.zeros((10, 12), np.uint8)
    labels[:5, :6] = 1
    labels[5:, 6:] = 2
    labels[:, [0, 11]] = 3
    stack, ref = make_pair(tmp_path, 0, 10, 12, labels)
    store = export_tiles([stack], [ref], str(tmp_path / "tiles.zarr"), tile_size=4, n_folds=2, area="sl", seed=3)
    # rows 0, 4, 6 × cols 0, 4, 8: 9 tiles, all labelled (columns 0 and 11 are class 3 everywhere)
    assert store.n_tiles == 9 and store.tile_size == 4 and store.area == "sl" and store.year == 2017
    assert store.dates == DATES and store.bands == BANDS and store.sensors == ["S2L2A"]
    assert store.classes.ids == [1, 2, 3] and store.classes.by_id(2).name == "forest"
    assert CRS.from_wkt(store.crs) == CRS.from_epsg(32633)
    offsets = store.offsets
    assert offsets.tolist() == [[0, 0], [0, 4], [0, 8], [4, 0], [4, 4], [4, 8], [6, 0], [6, 4], [6, 8]]
    assert store.patches.tolist() == [0] * 9 and store.patch_names == ["stack_0.tif"]
    data = store.inputs()
    assert data.shape == (9, 3, 2, 4, 4) and data.dtype == np.float32 and data.chunks == (1, 3, 2, 4, 4)
    # tile 5 starts at row 4, col 8: value of (t=2, b=1, r=1, c=3) = 100*2 + 10*1 + (4+1) + (8+3)/1000
    assert data[5, 2, 1, 1, 3] == pytest.approx(215.011)
    assert store.labels[4].tolist() == labels[4:8, 4:8].tolist()
    assert (store.valid[:] == (store.labels[:] > 0)).all() and not store.valid[6].all()
    assert store.transforms[5].tolist() == [10, 0, 500000 + 80, 0, -10, 5100000 - 40]
    assert store.folds.dtype == np.int8 and set(store.folds.tolist()) <= {0, 1}
    train, test = store.fold_indices(1)
    assert sorted(train.tolist() + test.tolist()) == list(range(9)) and not set(train) & set(test)
    # the layout other tools can read without this plugin
    root = zarr.open_group(str(tmp_path / "tiles.zarr"), mode="r")
    assert root.attrs["lc_dataset_version"] == 1 and root.attrs["primary_sensor"] == "S2L2A"
    assert root["sl/2017/S2L2A"].attrs["dates"] == ["2017-03-01", "2017-06-01", "2017-09-01"]
    assert root["sl/2017/labels"].dtype == np.uint8 and root["sl/2017/valid"].dtype == bool
    assert json.loads(json.dumps(root.attrs["classes"]))[0] == {"id": 1, "name": "cultivated land", "color": "#ffff00"}


def test_unlabelled_tiles_dropped_and_nan_invalid(tmp_path):
    labels = np.zeros((8, 8), np.uint8)
    labels[:4, :4] = 1
    labels[4:, 4:] = 2
    labels[5, 4] = 0
    labels[0, 7] = 3
    stack, ref = make_pair(tmp_path, 0, 8, 8, labels, nan_at=(2, 1, 1, 2))
    store = export_tiles([stack], [ref], str(tmp_path / "t.zarr"), tile_size=4, n_folds=2)
    assert store.offsets.tolist() == [[0, 0], [0, 4], [4, 4]]  # tile (4, 0) has no label
    valid = store.valid[:]
    assert valid[0].sum() == 15 and not valid[0, 1, 2]  # one missing value of one date and band
    assert valid[1].sum() == 1 and valid[2].sum() == 15 and not valid[2, 1, 0]
    assert np.isnan(store.inputs()[0, 2, 1, 1, 2]) and store.labels[0, 1, 2] == 1
    assert export_tiles([stack], [ref], str(tmp_path / "t2.zarr"), tile_size=4, n_folds=2, min_labelled_fraction=0.9).n_tiles == 2


def test_extra_sensor_and_overwrite(tmp_path):
    stack, ref = make_pair(tmp_path, 0, 8, 8)
    extra_dir = tmp_path / "olci"
    extra_dir.mkdir()
    extra, _ = make_pair(extra_dir, 0, 8, 8, dates=[dt.date(2017, 5, 1)], bands=["Oa08", "Oa17", "Oa21"])
    out = str(tmp_path / "t.zarr")
    export_tiles([stack], [ref], out, tile_size=4, n_folds=2)
    store = export_tiles([stack], [ref], out, tile_size=4, n_folds=2, extra_stacks={"S3OLCI": [extra]})  # replaces the first store
    assert store.sensors == ["S2L2A", "S3OLCI"]
    assert store.sensor_meta("S3OLCI") == ([dt.date(2017, 5, 1)], ["Oa08", "Oa17", "Oa21"])
    assert store.inputs("S3OLCI").shape == (4, 1, 3, 4, 4)
    assert store.inputs("S3OLCI")[3, 0, 2, 0, 0] == pytest.approx(10 * 2 + 4 + 4 / 1000)  # band 2, row 4, col 4


def test_patches_with_bands_in_another_order(tmp_path):
    first = make_pair(tmp_path, 0, 4, 4)
    second = make_pair(tmp_path, 1, 4, 6, bands=["B08", "B04"])
    store = export_tiles([first[0], second[0]], [first[1], second[1]], str(tmp_path / "t.zarr"), tile_size=4, n_folds=2)
    assert store.bands == BANDS and store.patches.tolist() == [0, 1, 1] and store.offsets.tolist() == [[0, 0], [0, 0], [0, 2]]
    data = store.inputs()
    assert data[1, 0, 0, 0, 0] == 1000 + 10 * 1  # B04 is the second band of stack 1's file
    assert data[2, 2, 1, 3, 3] == pytest.approx(1000 + 200 + 0 + 3 + 5 / 1000)  # B08, date 2, row 3, col 2 + 3
    assert store.transforms[2].tolist() == [10, 0, 510000 + 20, 0, -10, 5100000]


def test_iterative_stratification_hand_example():
    # 12 samples, 3 folds: label 0 on 6 samples, label 1 on 3, label 2 on 9 (overlapping)
    presence = np.zeros((12, 3), bool)
    presence[:6, 0] = True
    presence[[0, 6, 11], 1] = True
    presence[3:, 2] = True
    for seed in range(10):
        folds = iterative_stratification(presence, 3, seed)
        assert folds.shape == (12,) and set(folds.tolist()) == {0, 1, 2}  # every sample in exactly one fold
        assert (np.abs(np.bincount(folds, minlength=3) - 4) <= 1).all()
        per_fold = np.array([presence[folds == k].sum(axis=0) for k in range(3)])
        assert per_fold.tolist() == [[2, 1, 3]] * 3  # each label's even share (6/3, 3/3, 9/3) in every fold
    assert (iterative_stratification(presence, 3, 7) == iterative_stratification(presence, 3, 7)).all()


def test_bad_input(tmp_path):
    stack, ref = make_pair(tmp_path, 0, 8, 8, np.zeros((8, 8), np.uint8))
    with pytest.raises(LandCoverError, match="No 4-pixel tile") as err:
        export_tiles([stack], [ref], str(tmp_path / "t.zarr"), tile_size=4)
    assert err.value.argument == "reference_paths"
    with pytest.raises(LandCoverError, match="smaller than a 16-pixel tile") as err:
        export_tiles([stack], [ref], str(tmp_path / "t.zarr"), tile_size=16)
    assert err.value.argument == "tile_size"
    other, _ = make_pair(tmp_path, 1, 8, 9)
    with pytest.raises(LandCoverError, match="not on the grid") as err:
        export_tiles([stack], [str(tmp_path / "ref_1.tif")], str(tmp_path / "t.zarr"), tile_size=4)
    assert err.value.argument == "reference_paths"
    with pytest.raises(LandCoverError, match="also an input") as err:
        export_tiles([stack], [ref], stack, tile_size=4)
    assert err.value.argument == "output_path"
    with pytest.raises(LandCoverError, match="DATASET|tile store") as err:
        open_tile_store(str(tmp_path))
    assert err.value.argument == "path"
    assert not list(tmp_path.glob(".*partial*"))


def test_output_folder_is_protected(tmp_path):
    stack, ref = make_pair(tmp_path, 0, 8, 8)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.jpg").write_bytes(b"x")
    with pytest.raises(LandCoverError, match="not a tile store") as err:
        export_tiles([stack], [ref], str(other), tile_size=4, n_folds=2)
    assert err.value.argument == "output_path" and (other / "keep.jpg").exists()
    with pytest.raises(LandCoverError, match="inside the output folder"):
        export_tiles([stack], [ref], str(tmp_path), tile_size=4, n_folds=2)
    (tmp_path / "empty.zarr").mkdir()
    assert export_tiles([stack], [ref], str(tmp_path / "empty.zarr"), tile_size=4, n_folds=2).n_tiles == 4


def test_cancel_leaves_no_store(tmp_path):
    stack, ref = make_pair(tmp_path, 0, 8, 8)
    out = str(tmp_path / "t.zarr")
    export_tiles([stack], [ref], out, tile_size=4, n_folds=2)
    calls = []
    monitor = Monitor(calls.append, lambda: len(calls) >= 1)
    with pytest.raises(Cancelled):
        export_tiles([stack], [ref], out, tile_size=2, n_folds=2, monitor=monitor)
    assert open_tile_store(out).tile_size == 4  # the earlier store is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref_0.qml", "ref_0.tif", "ref_0.tif.aux.xml", "stack_0.tif", "t.zarr"]


def test_without_zarr_names_the_package(tmp_path, monkeypatch):
    stack, ref = make_pair(tmp_path, 0, 8, 8)
    monkeypatch.setitem(sys.modules, "zarr", None)  # import zarr now raises ImportError
    with pytest.raises(LandCoverError, match='pip install --target .*lc_plugin_deps.* "zarr>=2.18,<3"'):
        export_tiles([stack], [ref], str(tmp_path / "t.zarr"), tile_size=4, n_folds=2)
    monkeypatch.setitem(sys.modules, "zarr", types.SimpleNamespace(__version__="3.0.8"))
    with pytest.raises(LandCoverError, match="need zarr 2, but zarr 3.0.8"):
        open_tile_store(str(tmp_path))
