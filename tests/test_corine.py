"""CORINE Land Cover legend and reference rasters (lc_plugin.reference.corine)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from osgeo import ogr, osr
from rasterio.crs import CRS
from rasterio.transform import Affine

from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import Grid, read_class_raster, write_raster
from lc_plugin.reference import corine

PATCH = Grid(CRS.from_epsg(32633), Affine(10, 0, 465_000, 0, -10, 5_080_000), 60, 40)


def test_legend_is_the_official_44_classes():
    codes = [c[0] for c in corine.CLC_LEGEND]
    assert len(codes) == 44 and len(set(codes)) == 44 and codes == sorted(codes)
    assert codes[0] == 111 and codes[-1] == 523
    _, level3 = corine.clc_recode("3")
    assert level3.by_id(1).name == "Continuous urban fabric" and level3.by_id(1).color == "#e6004d"  # 230-000-077
    assert level3.by_id(23).name == "Broad-leaved forest" and level3.by_id(23).rgb() == (128, 255, 0)
    assert level3.by_id(44).name == "Sea and ocean" and level3.by_id(44).rgb() == (230, 242, 255)
    codes2, level2 = corine.clc_recode("2")
    codes1, level1 = corine.clc_recode("1")
    assert len(level2) == 15 and len(level1) == 5
    assert level1.names == ["Artificial surfaces", "Agricultural areas", "Forest and semi natural areas", "Wetlands", "Water bodies"]
    assert codes1[313] == 3 and codes2[313] == level2.ids[level2.names.index("Forests")]
    assert level2.by_id(codes2[313]).rgb() == (128, 255, 0)  # a group takes its first level-3 class's colour
    codes_v, vegetation = corine.clc_recode("vegetation")
    assert sorted(codes_v) == [211, 212, 213, 221, 222, 223, 231, 241, 242, 243, 244, 311, 312, 313, 321, 322, 323, 324]
    assert vegetation.ids == list(range(12, 30))  # their GRID_CODEs


def _clc_layer(path, values: list[str]) -> str:
    """CLC-like polygons in EPSG:3035 (as the EEA distributes CLC) with a text field Code_18: the patch's west third,
    middle third and east third get values[0], [1], [2]."""
    utm, laea = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32633)
    laea.ImportFromEPSG(3035)
    for s in (utm, laea):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_laea = osr.CoordinateTransformation(utm, laea)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("clc", srs=laea, geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("Code_18", ogr.OFTString))
    x0, y0, x1, y1 = PATCH.bounds
    for i, value in enumerate(values):
        a, b = x0 + i * 200, x0 + (i + 1) * 200
        ring = f"POLYGON(({a} {y0 - 50},{b} {y0 - 50},{b} {y1 + 50},{a} {y1 + 50},{a} {y0 - 50}))"
        geom = ogr.CreateGeometryFromWkt(ring)
        geom.Transform(to_laea)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(geom)
        feature.SetField("Code_18", value)
        layer.CreateFeature(feature)
    ds = None
    return str(path)


@pytest.mark.parametrize(
    ("level", "expected", "colours"),
    [
        ("3", (23, 18, 41), {23: (128, 255, 0), 18: (230, 230, 77), 41: (128, 242, 230)}),
        ("1", (3, 2, 5), {3: (128, 255, 0), 2: (255, 255, 168), 5: (0, 204, 242)}),
        ("vegetation", (23, 18, 0), {23: (128, 255, 0), 18: (230, 230, 77)}),
    ],
)
def test_text_codes_rasterized_with_official_colours(tmp_path, level, expected, colours):
    vector = _clc_layer(tmp_path / "clc.gpkg", ["311", "231", "512"])
    like = str(tmp_path / "patch.tif")
    write_raster(like, np.zeros((PATCH.height, PATCH.width), np.uint8), PATCH)
    out = str(tmp_path / f"ref_{level}.tif")
    corine.rasterize_clc_file(vector, "Code_18", like, out, level=level)
    labels, table, _ = read_class_raster(out)
    assert [labels[20, 10], labels[20, 30], labels[20, 50]] == list(expected)
    with rasterio.open(out) as src:
        cmap = src.colormap(1)
    for class_id, rgb in colours.items():
        assert cmap[class_id][:3] == rgb and table.by_id(class_id).rgb() == rgb
    assert len(table) == {"3": 44, "1": 5, "vegetation": 18}[level]  # the whole level, so every patch shares one table


def test_no_data_codes_and_bad_codes(tmp_path):
    vector = _clc_layer(tmp_path / "clc.gpkg", ["999", "311", "990"])
    labels, _ = corine.rasterize_clc(vector, "Code_18", PATCH)
    assert labels[20, 10] == 0 and labels[20, 30] == 23 and labels[20, 50] == 0
    bad = _clc_layer(tmp_path / "bad.gpkg", ["311", "31A", "512"])
    with pytest.raises(LandCoverError, match="'31A' is not a CORINE code") as err:
        corine.rasterize_clc(bad, "Code_18", PATCH)
    assert err.value.argument == "code_field"
    unknown = _clc_layer(tmp_path / "unknown.gpkg", ["311", "314", "512"])
    with pytest.raises(LandCoverError, match="314 .*not a CORINE level-3 code"):
        corine.rasterize_clc(unknown, "Code_18", PATCH)
    with pytest.raises(LandCoverError, match="no field 'CODE_12'"):
        corine.rasterize_clc(vector, "CODE_12", PATCH)
