"""Reference rasterization: hand-checked burns and erosion, the real eo-learn LULC, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from osgeo import gdal, ogr, osr
from rasterio.crs import CRS
from rasterio.transform import from_bounds, from_origin

from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import Grid, read_class_raster, write_raster
from lc_plugin.reference.rasterize import disk, erode_classes, rasterize_reference, rasterize_reference_file

gdal.UseExceptions()
ogr.UseExceptions()

EPSG = 32633
# 10×10 grid of 10 m pixels, x 0–100, y 0–100.
GRID10 = Grid(CRS.from_epsg(EPSG), from_origin(0, 100, 10, 10), 10, 10)
PATCH_BOUNDS = (465181.0522318204, 5079244.8912012065, 466180.53145382757, 5080254.63349641)


def box(x0, y0, x1, y1) -> str:
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def write_gpkg(path, features, fields=(("CLASS_ID", ogr.OFTInteger), ("CLASS_NAME", ogr.OFTString)), epsg=EPSG, layer="ref"):
    """features: list of (wkt, {field: value})."""
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = None
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
    lyr = ds.CreateLayer(layer, srs, ogr.wkbPolygon)
    for name, ftype in fields:
        lyr.CreateField(ogr.FieldDefn(name, ftype))
    for wkt, values in features:
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        for k, v in values.items():
            f.SetField(k, v)
        lyr.CreateFeature(f)
    ds = None
    return str(path)


def test_disk_matches_skimage_footprints():
    assert disk(1).astype(int).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert disk(2).sum() == 13
    assert disk(0).tolist() == [[True]]


def test_square_burns_pixel_centres_and_erodes_one_ring(tmp_path):
    # 6×6 pixels: columns 2..7, rows 2..7 (y from 80 down to 20).
    path = write_gpkg(tmp_path / "sq.gpkg", [(box(20, 20, 80, 80), {"CLASS_ID": 3, "CLASS_NAME": "grassland"})])
    labels, table = rasterize_reference(path, "CLASS_ID", GRID10)
    expected = np.zeros((10, 10), np.uint8)
    expected[2:8, 2:8] = 3
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, expected)
    assert table.ids == [3] and table.names == ["grassland"]

    eroded, _ = rasterize_reference(path, "CLASS_ID", GRID10, erosion_px=1)
    expected = np.zeros((10, 10), np.uint8)
    expected[3:7, 3:7] = 3
    np.testing.assert_array_equal(eroded, expected)


def test_pixel_centre_rule_ignores_slivers(tmp_path):
    # Covers 40 % of column 2 (x 20–24) and all of column 3: only column 3's centres are inside.
    path = write_gpkg(tmp_path / "s.gpkg", [(box(26, 0, 40, 100), {"CLASS_ID": 1})])
    labels, _ = rasterize_reference(path, "CLASS_ID", GRID10)
    assert np.all(labels[:, 3] == 1)
    assert np.count_nonzero(labels) == 10


def test_adjacent_classes_each_erode_at_the_shared_border(tmp_path):
    path = write_gpkg(
        tmp_path / "two.gpkg",
        [(box(0, 0, 50, 100), {"CLASS_ID": 1, "CLASS_NAME": "a"}), (box(50, 0, 100, 100), {"CLASS_ID": 2, "CLASS_NAME": "b"})],
    )
    labels, table = rasterize_reference(path, "CLASS_ID", GRID10)
    assert np.all(labels[:, :5] == 1) and np.all(labels[:, 5:] == 2)
    eroded, _ = rasterize_reference(path, "CLASS_ID", GRID10, erosion_px=1)
    # The shared border loses one column on each side; the patch edge does not erode (as in eo-learn).
    assert np.all(eroded[:, 4] == 0) and np.all(eroded[:, 5] == 0)
    assert np.all(eroded[:, :4] == 1) and np.all(eroded[:, 6:] == 2)
    assert table.names == ["a", "b"]


def test_erode_classes_keeps_nodata_and_radius_zero():
    labels = np.zeros((7, 7), np.uint8)
    labels[1:6, 1:6] = 4
    np.testing.assert_array_equal(erode_classes(labels, 0), labels)
    out = erode_classes(labels, 2)
    expected = np.zeros((7, 7), np.uint8)
    expected[3, 3] = 4
    np.testing.assert_array_equal(out, expected)


def test_table_lists_all_layer_classes_and_later_features_win(tmp_path):
    path = write_gpkg(
        tmp_path / "t.gpkg",
        [
            (box(0, 0, 100, 100), {"CLASS_ID": 2}),
            (box(0, 0, 30, 30), {"CLASS_ID": 8}),
            (box(1000, 1000, 1100, 1100), {"CLASS_ID": 5}),  # outside the grid, still in the table
        ],
        fields=(("CLASS_ID", ogr.OFTInteger),),
    )
    labels, table = rasterize_reference(path, "CLASS_ID", GRID10)
    assert table.ids == [2, 5, 8]
    assert table.names == ["class 2", "class 5", "class 8"]  # no legend applied unless chosen (issue 15)
    assert np.all(labels[7:, :3] == 8) and np.count_nonzero(labels == 2) == 91


def test_real_field_with_whole_numbers_is_accepted(tmp_path):
    path = write_gpkg(tmp_path / "r.gpkg", [(box(0, 0, 100, 100), {"C": 4.0})], fields=(("C", ogr.OFTReal),))
    labels, table = rasterize_reference(path, "C", GRID10)
    assert np.all(labels == 4) and table.ids == [4]


def _patch_grid() -> Grid:
    return Grid(CRS.from_epsg(EPSG), from_bounds(*PATCH_BOUNDS, 100, 101), 100, 101)


def test_real_lulc_matches_eo_learn_raster(testpatch):
    gpkg = str(testpatch / "TestEOPatch" / "vector_timeless" / "LULC.gpkg")
    expected = np.load(testpatch / "TestEOPatch" / "mask_timeless" / "LULC.npy", allow_pickle=False)[..., 0]
    labels, table = rasterize_reference(gpkg, "LULC_ID", _patch_grid())
    agreement = float(np.mean(labels == expected))
    assert agreement >= 0.99  # measured: 1.0 (10100 of 10100 pixels) with the pixel-centre rule
    counts = dict(zip(*np.unique(labels, return_counts=True)))
    readme = {0: 155, 1: 11, 2: 7601, 3: 1777, 4: 358, 8: 198}
    for class_id, n in readme.items():
        assert abs(int(counts.get(class_id, 0)) - n) <= max(2, 0.01 * n)
    assert table.ids == [1, 2, 3, 4, 8]
    assert table.by_id(2).name == "forest"  # LULC_NAME found automatically


def test_real_lulc_reprojected_vector(testpatch, tmp_path):
    gpkg = str(testpatch / "TestEOPatch" / "vector_timeless" / "LULC.gpkg")
    merc = str(tmp_path / "lulc_3857.gpkg")
    gdal.VectorTranslate(merc, gpkg, dstSRS="EPSG:3857", format="GPKG")
    expected = np.load(testpatch / "TestEOPatch" / "mask_timeless" / "LULC.npy", allow_pickle=False)[..., 0]
    labels, _ = rasterize_reference(merc, "LULC_ID", _patch_grid())
    assert np.mean(labels == expected) >= 0.999


def test_rasterize_reference_file_writes_class_raster(testpatch, tmp_path):
    like = str(tmp_path / "like.tif")
    grid = _patch_grid()
    write_raster(like, np.zeros((2, grid.height, grid.width), np.float32), grid)
    out = str(tmp_path / "ref.tif")
    gpkg = str(testpatch / "TestEOPatch" / "vector_timeless" / "LULC.gpkg")
    messages = []
    from lc_plugin.core.monitor import Monitor

    table = rasterize_reference_file(gpkg, "LULC_ID", like, out, erosion_px=1, monitor=Monitor(log=messages.append))
    labels, stored, out_grid = read_class_raster(out)
    assert stored == table and out_grid.width == 100 and out_grid.height == 101
    assert labels.dtype == np.uint8
    direct, _ = rasterize_reference(gpkg, "LULC_ID", grid, erosion_px=1)
    np.testing.assert_array_equal(labels, direct)
    assert np.count_nonzero(labels == 0) > 155  # erosion removed border pixels
    assert any("forest" in m for m in messages) and "names from the name field" in messages[0]
    with pytest.raises(LandCoverError) as err:
        rasterize_reference_file(gpkg, "LULC_ID", like, like)
    assert err.value.argument == "out_path"


@pytest.mark.parametrize(
    ("field", "ftype", "value", "needle"),
    [
        ("NOPE", None, None, "available fields: CLASS_ID"),
        ("D", ogr.OFTDate, "2017-01-01", "type Date"),
        ("R", ogr.OFTReal, 2.5, "2.5"),
        ("CLASS_ID", None, 300, "1–255"),
    ],
)
def test_field_errors(tmp_path, field, ftype, value, needle):
    fields = [("CLASS_ID", ogr.OFTInteger)]
    values = {"CLASS_ID": 300 if value == 300 else 1}
    if ftype is not None:
        fields.append((field, ftype))
        values[field] = value
    path = write_gpkg(tmp_path / "e.gpkg", [(box(0, 0, 100, 100), values)], fields=fields)
    with pytest.raises(LandCoverError) as err:
        rasterize_reference(path, field, GRID10)
    assert err.value.argument == "class_field"
    assert needle in str(err.value)


def test_empty_layer_and_missing_crs(tmp_path):
    empty = write_gpkg(tmp_path / "empty.gpkg", [])
    with pytest.raises(LandCoverError) as err:
        rasterize_reference(empty, "CLASS_ID", GRID10)
    assert err.value.argument == "vector_path" and "no features" in str(err.value)
    nocrs = write_gpkg(tmp_path / "nocrs.gpkg", [(box(0, 0, 100, 100), {"CLASS_ID": 1})], epsg=None)
    with pytest.raises(LandCoverError) as err:
        rasterize_reference(nocrs, "CLASS_ID", GRID10)
    assert err.value.argument == "vector_path" and "coordinate reference system" in str(err.value)


def test_reference_outside_the_patch(tmp_path):
    path = write_gpkg(tmp_path / "far.gpkg", [(box(5000, 5000, 6000, 6000), {"CLASS_ID": 1})])
    like = str(tmp_path / "like.tif")
    write_raster(like, np.zeros((10, 10), np.float32), GRID10)
    out = tmp_path / "out.tif"
    with pytest.raises(LandCoverError) as err:
        rasterize_reference_file(path, "CLASS_ID", like, str(out))
    msg = str(err.value)
    assert err.value.argument == "vector_path" and "outside the patch" in msg
    assert "(5000.00, 5000.00, 6000.00, 6000.00)" in msg and "(0.00, 0.00, 100.00, 100.00)" in msg
    assert not out.exists()


def test_missing_layer_and_name_field(tmp_path):
    path = write_gpkg(tmp_path / "l.gpkg", [(box(0, 0, 100, 100), {"CLASS_ID": 1})])
    with pytest.raises(LandCoverError) as err:
        rasterize_reference(path, "CLASS_ID", GRID10, layer="other")
    assert err.value.argument == "vector_path" and "ref" in str(err.value)
    with pytest.raises(LandCoverError) as err:
        rasterize_reference(path, "CLASS_ID", GRID10, name_field="LABEL")
    assert err.value.argument == "name_field"
    labels, table = rasterize_reference(path, "CLASS_ID", GRID10, layer="ref", name_field="CLASS_NAME")
    assert table.names == ["class 1"]  # empty names: no legend applied unless chosen (issue 15)
    assert json.loads(table.to_json())[0]["id"] == 1
