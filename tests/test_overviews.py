"""Stack overviews: GDAL's AVERAGE written by the stack writer, and cloud masks read from them."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import numpy as np
import pytest
import rasterio
from osgeo import gdal
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.windows import Window

from lc_plugin.io import overviews
from lc_plugin.io.rasters import Grid, StackWriter, TimeStack, write_stack
from lc_plugin.timeseries.cloud_model import S2CLOUDLESS_BANDS
from lc_plugin.timeseries.cloud_resolution import block_means_of, overview_factors
from lc_plugin.timeseries.clouds import compute_masks, read_layers

S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]


def grid(width: int, height: int) -> Grid:
    return Grid(CRS.from_epsg(32633), from_origin(465180.0, 5080250.0, 10.0, 10.0), width, height)


def write(path, data: np.ndarray, dates: list[dt.date], bands: list[str], factors=(4, 16)) -> None:
    """(T, B, H, W) → a stack written date by date, as Download writes it."""
    with StackWriter(str(path), dates, bands, grid(data.shape[3], data.shape[2]), overviews=factors) as out:
        for t in range(data.shape[0]):
            out.write(data[t : t + 1], dates=slice(t, t + 1))


def dates(n: int) -> list[dt.date]:
    return [dt.date(2020, 5, 1) + dt.timedelta(days=5 * i) for i in range(n)]


def test_block_means_by_hand():
    values = np.array([[1, 2, 3], [4, np.nan, 6], [7, 8, 9]], dtype=np.float32)
    # 2 × 2 blocks from the top-left corner; the last row and column are blocks of their own.
    expected = np.array([[7 / 3, 4.5], [7.5, 9]], dtype=np.float32)  # the float64 mean, rounded once
    np.testing.assert_array_equal(overviews.block_means(values, np.isfinite(values), 2), expected)
    np.testing.assert_array_equal(overviews.block_means(np.full((2, 2), np.nan, np.float32), np.zeros((2, 2), bool), 2), [[np.nan]])


def test_writer_overviews_are_gdal_average(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.random((2, 3, 48, 64), dtype=np.float32) * 0.8
    data[0, 1, 10:30, 5:9] = np.nan  # a hole cutting through blocks
    data[1, :, :, :20] = np.nan  # a date partly outside the footprint
    write(tmp_path / "ours.tif", data, dates(2), ["B02", "B03", "B04"])
    write(tmp_path / "gdal.tif", data, dates(2), ["B02", "B03", "B04"], factors=())
    with rasterio.open(tmp_path / "gdal.tif", "r+") as dst:
        dst.build_overviews([4], Resampling.average)
    for name in ("ours.tif", "gdal.tif"):
        ds = gdal.Open(str(tmp_path / name))
        assert ds.GetRasterBand(1).GetOverviewCount() == (2 if name == "ours.tif" else 1)
        ds = None
    with rasterio.open(tmp_path / "ours.tif", overview_level=0) as a, rasterio.open(tmp_path / "gdal.tif", overview_level=0) as b:
        assert a.shape == (12, 16)
        np.testing.assert_array_equal(a.read(), b.read())  # bit for bit, NaN where a block has no data
    with rasterio.open(tmp_path / "ours.tif") as src:
        info = json.loads(src.tags()[overviews.TAG_OVERVIEWS])
        assert info == {"resampling": "AVERAGE", "factors": [4, 16], "nan_bands": [2, 4, 5, 6]}
        assert overviews.average_level(src, 4) == 0 and overviews.average_level(src, 16) == 1
        assert overviews.average_level(src, 8) is None
    with rasterio.open(tmp_path / "ours.tif", overview_level=1) as src:
        flat = data.reshape(6, 48, 64)
        np.testing.assert_array_equal(src.read(), overviews.block_means(flat, np.isfinite(flat), 16))
    with rasterio.open(tmp_path / "gdal.tif") as src:
        assert overviews.average_level(src, 4) is None  # another writer's overviews: not trusted


def test_windows_off_the_blocks_leave_no_overviews(tmp_path):
    data = np.ones((1, 1, 40, 40), dtype=np.float32)
    with StackWriter(str(tmp_path / "s.tif"), dates(1), ["B02"], grid(40, 40), overviews=[4]) as out:
        out.write(data[:, :, :, :22], Window(0, 0, 22, 40))
        out.write(data[:, :, :, 22:], Window(22, 0, 18, 40))
    with rasterio.open(tmp_path / "s.tif") as src:
        assert src.overviews(1) == [] and overviews.TAG_OVERVIEWS not in src.tags()
        assert (src.read() == 1).all()
    assert sorted(os.listdir(tmp_path)) == ["s.tif"]


def test_failed_write_leaves_no_spill(tmp_path):
    with pytest.raises(RuntimeError):
        with StackWriter(str(tmp_path / "s.tif"), dates(1), ["B02"], grid(32, 32), overviews=[4]) as out:
            out.write(np.ones((1, 1, 32, 32), dtype=np.float32))
            raise RuntimeError("stop")
    assert os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def l1c(testpatch):
    """Five real 13-band L1C dates (101 × 100 px: edge blocks), one with a strip outside the footprint."""
    pytest.importorskip("s2cloudless")
    scenes = np.load(testpatch / "REFERENCE_SCENES.npy", allow_pickle=False)
    data = np.ascontiguousarray(np.moveaxis(scenes, -1, 1), dtype=np.float32)
    data[2, :, :, :7] = np.nan
    return data


def test_cloud_masks_from_overviews_equal_the_full_decode(l1c, tmp_path):
    days = dates(l1c.shape[0])
    write(tmp_path / "ov.tif", l1c, days, S2_BANDS)
    write_stack(str(tmp_path / "plain.tif"), TimeStack(l1c, days, S2_BANDS, grid(100, 101)))
    shutil.copy(tmp_path / "plain.tif", tmp_path / "nearest.tif")
    with rasterio.open(tmp_path / "nearest.tif", "r+") as dst:  # overviews of another kind: not used
        dst.build_overviews([4], Resampling.nearest)
    band_index = [S2_BANDS.index(b) for b in S2CLOUDLESS_BANDS]
    full = read_layers(str(tmp_path / "plain.tif"), [0, 1], band_index)
    from_overview = read_layers(str(tmp_path / "ov.tif"), [0, 1], band_index, overview_level=0)
    np.testing.assert_array_equal(np.moveaxis(from_overview, 1, -1), block_means_of(full, np.isfinite(full).all(axis=1), 4))
    results = {
        name: compute_masks(str(tmp_path / name), method="s2cloudless", processing_resolution=40, probabilities=True, threads=2)
        for name in ("ov.tif", "plain.tif", "nearest.tif")
    }
    for name in ("plain.tif", "nearest.tif"):
        np.testing.assert_array_equal(results[name].masks, results["ov.tif"].masks)
        np.testing.assert_array_equal(results[name].probabilities, results["ov.tif"].probabilities)
    masks = results["ov.tif"].masks[:, 0]
    assert (masks[2, :, :7] == 255).all() and set(np.unique(masks[2, :, 7:])) <= {0, 1}
    assert 0.05 < (masks == 1).mean() < 0.95  # real clouds, not an empty mask


def test_overview_factors():
    assert overview_factors(grid(10, 10)) == [4, 16]
    assert overview_factors(Grid(CRS.from_epsg(32633), from_origin(0, 0, 20, 20), 10, 10)) == [2, 8]
    assert overview_factors(Grid(CRS.from_epsg(32633), from_origin(0, 0, 60, 60), 10, 10)) == []
