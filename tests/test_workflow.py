"""The workbench run's pieces without Qt: settings, scene tiles of real STAC items, the drawn area, the legend."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from osgeo import ogr
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import Grid, TimeStack, write_stack
from lc_plugin.runs import BatchParameters
from lc_plugin.runs.workflow import WorkbenchSettings, list_scenes, reference_legend, scene_quicklook, scene_tile, write_area

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # not imported from conftest: two conftest modules share a session
STAC = SHARED_DATA / "stac-responses"
LULC = SHARED_DATA / "eo-learn-testpatch" / "TestEOPatch" / "vector_timeless" / "LULC.gpkg"


def test_settings_round_trip_and_unknown_entries_are_ignored():
    settings = WorkbenchSettings(aoi="a.gpkg", start="2017-01-01", end="2017-12-31", excluded_dates=["2017-07-10"], min_pixels=4)
    text = settings.to_json()
    assert WorkbenchSettings.from_json(text) == settings
    assert WorkbenchSettings.from_json(json.dumps({**json.loads(text), "from_a_newer_version": 1})) == settings
    assert WorkbenchSettings.from_json("") == WorkbenchSettings()


def test_check_names_what_is_missing(tmp_path):
    base = dict(aoi="a.gpkg", start="2017-01-01", end="2017-12-31", reference="r.gpkg", reference_field="LULC_ID", output_folder=str(tmp_path))
    WorkbenchSettings(**base).check()
    for change, parameter in [({"aoi": ""}, "aoi"), ({"start": "2017-13-01"}, "start"), ({"reference": ""}, "reference"),
                              ({"source": "local"}, "local_stacks"), ({"output_folder": ""}, "output_folder")]:
        with pytest.raises(LandCoverError) as err:
            WorkbenchSettings(**{**base, **change}).check()
        assert err.value.argument == parameter


def test_batch_parameters_are_a_rungrid_parameters_file(tmp_path):
    settings = WorkbenchSettings(start="2017-01-01", end="2017-12-31", reference="r.gpkg", reference_field="LULC_ID", erosion=2, step_days=10)
    settings.batch_parameters("grid.gpkg", "model.onnx").save(str(tmp_path / "p.json"))
    loaded = BatchParameters.load(str(tmp_path / "p.json"))
    assert (loaded.grid, loaded.model, loaded.start, loaded.step_days, loaded.erosion_px) == ("grid.gpkg", "model.onnx", "2017-01-01", 10, 2)
    assert loaded.bands == settings.bands and loaded.reference_field == "LULC_ID"


@pytest.mark.parametrize(
    "path, tile",
    [
        ("earth-search-v1/items_33TWN_2016-2022/S2A_33TWN_20171005_0_L2A.json", "33TWN"),
        ("planetary-computer/item_S2B_MSIL2A_20200705T101559_R065_T32TMT_20200825T083452.json", "32TMT"),
        ("cdse/item_S2A_MSIL2A_20200301T090901_N0500_R050_T35UPU_20230630T033416.json", "35UPU"),
    ],
)
def test_scene_tile_of_real_items(path, tile):
    if not (STAC / path).exists():
        pytest.skip("real STAC items not found")
    assert scene_tile(json.loads((STAC / path).read_text())) == tile


@pytest.mark.parametrize(
    "path, start",
    [
        ("earth-search-v1/items_33TWN_2016-2022/S2A_33TWN_20171005_0_L2A.json", "https://sentinel-cogs.s3.us-west-2.amazonaws.com/"),  # "thumbnail" JPEG
        ("planetary-computer/item_S2B_MSIL2A_20200705T101559_R065_T32TMT_20200825T083452.json", "https://planetarycomputer.microsoft.com/api/data/v1/item/preview.png"),
        ("cdse/item_S2A_MSIL2A_20200301T090901_N0500_R050_T35UPU_20230630T033416.json", "https://datahub.creodias.eu/odata/v1/Assets("),
    ],
)
def test_quicklook_of_real_items_is_an_image_url(path, start):
    """Planetary Computer's ``preview`` role thumbnail is a GeoTIFF: its PNG ``rendered_preview`` is taken instead."""
    if not (STAC / path).exists():
        pytest.skip("real STAC items not found")
    assert scene_quicklook(json.loads((STAC / path).read_text())).startswith(start)


def test_area_rectangle_is_a_polygon_file(tmp_path):
    path = write_area((465200.0, 5079100.0, 465700.0, 5079600.0), "EPSG:32633", str(tmp_path / "area.gpkg"))
    ds = ogr.Open(path)
    layer = ds.GetLayer(0)
    assert layer.GetFeatureCount() == 1 and layer.GetSpatialRef().GetAuthorityCode(None) == "32633"
    assert layer.GetExtent() == (465200.0, 465700.0, 5079100.0, 5079600.0)
    assert layer.GetNextFeature().GetGeometryRef().GetArea() == 500.0 * 500.0


def test_legend_is_the_one_the_rasterizer_embeds(testpatch):
    legend = reference_legend(str(LULC), "LULC_ID")
    assert [(c.id, c.name, c.color) for c in legend][:2] == [(1, "cultivated land", "#ffff00"), (2, "forest", "#054907")]
    assert 8 in legend.ids


def test_local_stacks_list_their_dates(tmp_path):
    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 2, 2)
    paths = []
    for name, days in (("a.tif", (1, 11)), ("b.tif", (11, 21))):
        dates = [dt.date(2017, 5, d) for d in days]
        paths.append(str(tmp_path / name))
        write_stack(paths[-1], TimeStack(np.zeros((2, 1, 2, 2), dtype="float32"), dates, ["B04"], grid))
    rows = list_scenes(WorkbenchSettings(source="local", local_stacks=paths), (0, 0, 1, 1), "EPSG:32633")
    assert [(r.date.day, r.ids) for r in rows] == [(1, ["a.tif"]), (11, ["a.tif", "b.tif"]), (21, ["b.tif"])]
