"""A pixel's series, cloud flags, indices and class read back equal the values written into the files."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.classes import make_class_table
from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import Grid, TimeStack, read_stack, write_class_raster, write_raster, write_stack
from lc_plugin.timeseries.profiles import read_pixel_class, read_pixel_series, series_names

GRID = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 5, 4)
DATES = [dt.date(2017, 3, 1), dt.date(2017, 4, 1), dt.date(2017, 5, 1)]
BANDS = ["B03", "B04", "B08", "B11", "SCL"]


def centre(row: int, col: int) -> tuple[float, float]:
    return 465000 + 10 * col + 5, 5080000 - 10 * row - 5


@pytest.fixture
def stack(tmp_path):
    data = np.random.default_rng(3).uniform(0.01, 0.5, (3, 5, 4, 5)).astype("float32")
    data[1, :, 2, 3] = np.nan  # no data on the second date at (2, 3)
    path = tmp_path / "stack.tif"
    write_stack(str(path), TimeStack(data, DATES, BANDS, GRID))
    mask = np.zeros((2, 1, 4, 5), dtype=np.uint8)
    mask[1, 0, 2, 3] = 1  # cloud on 2017-05-01 only; the mask has no 2017-04-01
    write_stack(str(tmp_path / "clm.tif"), TimeStack(mask, [DATES[0], DATES[2]], ["CLM"], GRID), kind="cloudmask", nodata=255)
    return str(path), str(tmp_path / "clm.tif"), data


def test_series_equals_the_stack_and_marks_cloudy_dates(stack):
    path, mask, data = stack
    series = read_pixel_series(path, *centre(2, 3), mask_path=mask)
    assert (series.row, series.col) == (2, 3) and series.dates == DATES and series.bands == BANDS
    assert np.array_equal(series.values, data[:, :, 2, 3].astype(np.float64), equal_nan=True)
    assert series.cloudy.tolist() == [False, False, True]
    full = read_stack(path)
    for row, col in [(0, 0), (3, 4), (1, 2)]:
        assert np.array_equal(read_pixel_series(path, *centre(row, col)).series("B04"), full.band("B04")[:, row, col].astype(np.float64))


def test_indices_by_hand(stack):
    path, _, data = stack
    series = read_pixel_series(path, *centre(0, 1))
    b03, b04, b08, b11 = (data[:, i, 0, 1].astype(np.float64) for i in range(4))
    assert np.allclose(series.series("NDVI"), (b08 - b04) / (b08 + b04))
    assert np.allclose(series.series("NDWI"), (b03 - b08) / (b03 + b08))
    assert np.allclose(series.series("NDBI"), (b11 - b08) / (b11 + b08))
    assert np.isnan(read_pixel_series(path, *centre(2, 3)).series("NDVI")[1])
    assert series_names(BANDS) == ["NDVI", "NDWI", "NDBI", "B03", "B04", "B08", "B11"]  # SCL is not a reflectance
    with pytest.raises(LandCoverError, match="not a band"):
        series.series("B02")


def test_point_outside_is_refused(stack):
    path, _, _ = stack
    with pytest.raises(LandCoverError, match="outside"):
        read_pixel_series(path, 464990, 5079995)


def test_class_and_probabilities(tmp_path):
    classes = make_class_table({1: "cultivated land", 2: "forest"})
    labels = np.zeros((4, 5), dtype=np.uint8)
    labels[1, 1] = 2
    write_class_raster(str(tmp_path / "map.tif"), labels, GRID, classes)
    proba = np.zeros((2, 4, 5), dtype="float32")
    proba[:, 1, 1] = [0.25, 0.75]
    write_raster(str(tmp_path / "p.tif"), proba, GRID, nodata=float("nan"), descriptions=classes.names)
    pixel = read_pixel_class(str(tmp_path / "map.tif"), *centre(1, 1), str(tmp_path / "p.tif"))
    assert (pixel.class_id, pixel.name) == (2, "forest")
    assert pixel.probabilities == {"cultivated land": 0.25, "forest": 0.75}
    assert read_pixel_class(str(tmp_path / "map.tif"), *centre(0, 0)).name == "no data"
    with rasterio.open(tmp_path / "p.tif") as src:
        assert src.descriptions == ("cultivated land", "forest")
