"""The time-stack format read as a person writes it: LC_DATES/LC_BANDS as JSON or plain lists, or
only band descriptions 'YYYY-MM-DD BAND'; anything else is a LandCoverError naming the file."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine

from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import parse_tag_list, read_stack, read_stack_info
from lc_plugin.timeseries.clouds import read_layers

DATES = [dt.date(2023, 5, 1), dt.date(2023, 5, 11)]
BANDS = ["B04", "B08", "SCL"]


def write(path, tags: dict[str, str] | None = None, descriptions: list[str] | None = None, count: int = 6) -> str:
    """A 6-band float32 GeoTIFF (band i filled with i) written with plain rasterio, as another tool would."""
    profile = dict(driver="GTiff", width=4, height=3, count=count, dtype="float32", crs=CRS.from_epsg(32633),
                   transform=Affine(10, 0, 500000, 0, -10, 5100000))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.arange(count, dtype=np.float32)[:, None, None] * np.ones((count, 3, 4), np.float32))
        if tags:
            dst.update_tags(**tags)
        for i, text in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, text)
    return str(path)


@pytest.mark.parametrize(
    "dates, bands",
    [
        ('["2023-05-01", "2023-05-11"]', '["B04", "B08", "SCL"]'),  # JSON, as the plugin writes it
        ("2023-05-01,2023-05-11", "B04,B08,SCL"),  # plain comma lists
        ("2023-05-01, 2023-05-11", "B04, B08, SCL"),  # with spaces
        ("2023-05-01 2023-05-11", "B04;B08;SCL"),  # spaces, semicolons
        ("[2023-05-01, 2023-05-11]", "[B04, B08, SCL]"),  # brackets without quotes: not JSON, still a list
        ("2023-05-01T10:05:00Z,2023-05-11T10:05:00Z", "'B04','B08','SCL'"),  # times and quotes
    ],
)
def test_tags_as_a_person_writes_them(tmp_path, dates, bands):
    path = write(tmp_path / "s.tif", {"LC_DATES": dates, "LC_BANDS": bands})
    stack = read_stack(path)
    assert stack.dates == DATES and stack.bands == BANDS and stack.data.shape == (2, 3, 3, 4)
    assert stack.data[1, 0, 0, 0] == 3.0  # date-major: date 1, band 0 is raster band 4
    assert read_layers(path, [1], [2])[0, 0, 0, 0] == 5.0


def test_band_descriptions_alone(tmp_path):
    path = write(tmp_path / "d.tif", descriptions=[f"{d} {b}" for d in ("2023-05-01", "2023-05-11") for b in BANDS])
    dates, bands, _, _ = read_stack_info(path)
    assert dates == DATES and bands == BANDS
    assert read_stack(path).data[1, 2, 0, 0] == 5.0


@pytest.mark.parametrize(
    "tags, descriptions, words",
    [
        ({"LC_DATES": "May 1st, May 11th", "LC_BANDS": "B04,B08,SCL"}, None, "LC_DATES holds 'May', which is not a date YYYY-MM-DD"),
        ({"LC_DATES": "2023-05-01,2023-13-45", "LC_BANDS": "B04,B08,SCL"}, None, "not a date YYYY-MM-DD"),
        ({"LC_DATES": '{"a": 1}', "LC_BANDS": "B04"}, None, "not a date YYYY-MM-DD"),
        ({"LC_DATES": "[]", "LC_BANDS": "B04,B08,SCL"}, None, "LC_DATES or LC_BANDS is empty"),
        ({"LC_DATES": "2023-05-01", "LC_BANDS": "B04,B08,SCL"}, None, "6 raster bands, but metadata says 1 dates × 3 bands"),
        (None, None, "is not a time stack (no LC_DATES/LC_BANDS metadata"),
        (None, ["red", "nir", "scl", "red", "nir", "scl"], "not every band description is 'YYYY-MM-DD BAND'"),
        (None, [f"{d} {b}" for b in BANDS for d in ("2023-05-01", "2023-05-11")], "not every band of every date in date-major order"),
    ],
)
def test_anything_else_says_what_is_expected(tmp_path, tags, descriptions, words):
    path = write(tmp_path / "bad.tif", tags, descriptions)
    with pytest.raises(LandCoverError) as err:
        read_stack_info(path)
    message = str(err.value)
    assert path in message and words in message
    assert "LC_DATES=2023-05-01,2023-05-11" in message or "raster bands" in message


def test_parse_tag_list():
    assert parse_tag_list('["B02", "B8A"]') == ["B02", "B8A"]
    assert parse_tag_list(" B02 ,B8A,, ") == ["B02", "B8A"]
    assert parse_tag_list("") == []
