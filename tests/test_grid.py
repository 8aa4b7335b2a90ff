"""create_grid / read_patches on hand-computed AOIs and on the real Slovenian border."""

from __future__ import annotations

import math
import os

import pytest
from osgeo import ogr, osr
from rasterio.crs import CRS

from lc_plugin.core.errors import Cancelled, LandCoverError
from lc_plugin.core.monitor import Monitor
from lc_plugin.runs.grid import create_grid, read_patches, utm_epsg_for_lonlat


def srs_of(crs: int | str | None) -> osr.SpatialReference | None:
    if crs is None:
        return None
    srs = osr.SpatialReference()
    srs.SetFromUserInput(f"EPSG:{crs}" if isinstance(crs, int) else crs)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def write_layer(path: str, crs: int | str | None, wkts: list[str | None], geom_type: int = ogr.wkbUnknown) -> str:
    """A vector file with one feature per WKT (None = a feature without geometry)."""
    driver = ogr.GetDriverByName("GeoJSON" if path.endswith(".geojson") else "GPKG")
    ds = driver.CreateDataSource(path)
    layer = ds.CreateLayer("aoi", srs=srs_of(crs), geom_type=geom_type)
    layer.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    for i, wkt in enumerate(wkts):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("name", f"f{i}")
        if wkt is not None:
            feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(feature)
    ds = None
    return path


def box_wkt(minx: float, miny: float, maxx: float, maxy: float) -> str:
    return f"POLYGON(({minx} {miny},{maxx} {miny},{maxx} {maxy},{minx} {maxy},{minx} {miny}))"


def grid_features(path: str) -> dict[str, dict]:
    ds = ogr.Open(path)
    layer = ds.GetLayerByName("patches")
    out = {}
    for f in layer:
        env = f.GetGeometryRef().GetEnvelope()
        out[f.GetField("patch_id")] = {
            "bounds": (env[0], env[2], env[1], env[3]),
            **{k: f.GetField(k) for k in ("col", "row", "crs", "resolution", "width_px", "height_px")},
        }
    return out


# Triangle in EPSG:32633 with 1 km patches (100 px x 10 m). Its bbox covers cols 401..403,
# rows 5001..5002 (6 cells); the hypotenuse x = 403500 - 1.25 (y - 5001200) reaches x = 402500
# at y = 5002000, so cell 403_5002 (x >= 403000, y >= 5002000) lies in the bbox but outside.
TRIANGLE = "POLYGON((401500 5001200,403500 5001200,401500 5002800,401500 5001200))"
TRIANGLE_IDS = {"401_5001", "402_5001", "403_5001", "401_5002", "402_5002"}


def test_utm_epsg_for_lonlat():
    assert utm_epsg_for_lonlat(14.5, 46.0) == 32633
    assert utm_epsg_for_lonlat(12.0, 46.0) == 32633  # zone 33 starts at 12 E
    assert utm_epsg_for_lonlat(11.999, 46.0) == 32632
    assert utm_epsg_for_lonlat(15.0, -10.0) == 32733
    assert utm_epsg_for_lonlat(-180.0, 0.0) == 32601
    assert utm_epsg_for_lonlat(179.99, 1.0) == 32660
    assert utm_epsg_for_lonlat(-0.1, 51.5) == 32630


def test_triangle_patches_exact(tmp_path):
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), 32633, [TRIANGLE])
    out = str(tmp_path / "grid.gpkg")
    n = create_grid(aoi, out, patch_px=100, resolution=10.0).count
    feats = grid_features(out)
    assert n == 5 and set(feats) == TRIANGLE_IDS
    f = feats["403_5001"]
    assert f["bounds"] == (403000.0, 5001000.0, 404000.0, 5002000.0)
    fields = (f["col"], f["row"], f["crs"], f["resolution"], f["width_px"], f["height_px"])
    assert fields == (403, 5001, "EPSG:32633", 10.0, 100, 100)
    assert feats["401_5002"]["bounds"] == (401000.0, 5002000.0, 402000.0, 5003000.0)
    assert not [p for p in os.listdir(tmp_path) if "partial" in p]

    patches = {p.id: p for p in read_patches(out)}
    assert set(patches) == TRIANGLE_IDS
    g = patches["402_5002"].grid
    assert g.crs == CRS.from_epsg(32633)
    assert (g.width, g.height) == (100, 100)
    assert tuple(g.transform)[:6] == (10.0, 0.0, 402000.0, 0.0, -10.0, 5003000.0)
    assert g.bounds == (402000.0, 5002000.0, 403000.0, 5003000.0)


def test_patch_touching_aoi_edge_is_left_out(tmp_path):
    # Exactly one cell: its neighbours only share an edge with the AOI.
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), 32633, [box_wkt(402000, 5001000, 403000, 5002000)])
    out = str(tmp_path / "grid.gpkg")
    assert create_grid(aoi, out, patch_px=100, resolution=10.0).count == 1
    assert set(grid_features(out)) == {"402_5001"}


def test_features_are_unioned_and_ids_stable(tmp_path):
    # Two features far apart; the ids of the triangle's patches do not change.
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), 32633, [TRIANGLE, box_wkt(410100, 5001100, 410200, 5001200), None])
    out = str(tmp_path / "grid.gpkg")
    assert create_grid(aoi, out, patch_px=100, resolution=10.0).count == 6
    assert set(grid_features(out)) == TRIANGLE_IDS | {"410_5001"}


def test_self_intersecting_aoi_is_repaired(tmp_path):
    # A bow-tie (invalid) over cells 401_5001 and 402_5002 only: the lobes touch at (402000, 5002000).
    bowtie = "POLYGON((401200 5001200,402800 5002800,402800 5002200,401200 5001800,401200 5001200))"
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), 32633, [bowtie])
    out = str(tmp_path / "grid.gpkg")
    assert create_grid(aoi, out, patch_px=100, resolution=10.0).count == 2
    assert set(grid_features(out)) == {"401_5001", "402_5002"}


def test_buffer_changes_bounds_not_ids(tmp_path):
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), 32633, [TRIANGLE])
    out = str(tmp_path / "grid.gpkg")
    assert create_grid(aoi, out, patch_px=100, resolution=10.0, buffer_px=5).count == 5
    feats = grid_features(out)
    assert set(feats) == TRIANGLE_IDS
    assert feats["403_5001"]["bounds"] == (402950.0, 5000950.0, 404050.0, 5002050.0)
    assert (feats["403_5001"]["width_px"], feats["403_5001"]["height_px"]) == (110, 110)
    (p,) = read_patches(out, ["403_5001"])
    assert (p.grid.width, p.grid.height) == (110, 110)
    assert p.grid.bounds == (402950.0, 5000950.0, 404050.0, 5002050.0)
    assert p.grid.transform.a == 10.0 and p.grid.transform.e == -10.0


def test_wgs84_aoi_gets_utm_33n(tmp_path):
    aoi = write_layer(str(tmp_path / "aoi.geojson"), 4326, [box_wkt(15.0, 46.0, 15.05, 46.03)])
    out = str(tmp_path / "grid.gpkg")
    n = create_grid(aoi, out, patch_px=200, resolution=10.0).count
    feats = grid_features(out)
    assert n == len(feats) > 0
    assert {f["crs"] for f in feats.values()} == {"EPSG:32633"}
    # Independent check: the AOI's corners in EPSG:32633 fall in the first/last columns and rows.
    ct = osr.CoordinateTransformation(srs_of(4326), srs_of(32633))
    corners = [ct.TransformPoint(lon, lat)[:2] for lon, lat in ((15.0, 46.0), (15.05, 46.0), (15.0, 46.03), (15.05, 46.03))]
    cols = {math.floor(x / 2000) for x, _ in corners}
    rows = {math.floor(y / 2000) for _, y in corners}
    assert {f["col"] for f in feats.values()} == set(range(min(cols), max(cols) + 1))
    assert {f["row"] for f in feats.values()} == set(range(min(rows), max(rows) + 1))
    for pid, f in feats.items():
        assert f["bounds"][0] == f["col"] * 2000 and f["bounds"][1] == f["row"] * 2000
        assert pid == f"{f['col']}_{f['row']}"
    (p,) = read_patches(out, [next(iter(feats))])
    assert p.grid.crs == CRS.from_epsg(32633)


def test_southern_hemisphere(tmp_path):
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), 4326, [box_wkt(15.0, -10.02, 15.02, -10.0)])
    out = str(tmp_path / "grid.gpkg")
    create_grid(aoi, out, patch_px=100, resolution=10.0)
    assert {f["crs"] for f in grid_features(out).values()} == {"EPSG:32733"}


def test_aoi_across_utm_zones_needs_explicit_crs(tmp_path):
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), 4326, [box_wkt(17.95, 46.0, 18.05, 46.05)])
    out = str(tmp_path / "grid.gpkg")
    with pytest.raises(LandCoverError) as err:
        create_grid(aoi, out, patch_px=500, resolution=10.0)
    assert err.value.argument == "crs"
    assert "33" in str(err.value) and "34" in str(err.value)
    assert not os.path.exists(out)
    # With an explicit CRS it works.
    assert create_grid(aoi, out, crs="EPSG:32633", patch_px=500, resolution=10.0).count > 0
    assert {f["crs"] for f in grid_features(out).values()} == {"EPSG:32633"}


def test_negative_ids_and_wkt_crs(tmp_path):
    # A custom transverse Mercator without an EPSG code, given as WKT; coordinates around 0.
    wkt = srs_of("+proj=tmerc +lat_0=46 +lon_0=15 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs").ExportToWkt()
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), wkt, [box_wkt(-1500, 500, -500, 1500)])
    out = str(tmp_path / "grid.gpkg")
    assert create_grid(aoi, out, crs=wkt, patch_px=100, resolution=10.0).count == 4
    feats = grid_features(out)
    assert set(feats) == {"-2_0", "-1_0", "-2_1", "-1_1"}
    assert feats["-2_0"]["bounds"] == (-2000.0, 0.0, -1000.0, 1000.0)
    assert feats["-2_0"]["crs"].startswith(("PROJCS", "PROJCRS"))
    (p,) = read_patches(out, ["-2_1"])
    assert p.grid.crs == CRS.from_wkt(wkt)
    assert p.grid.bounds == (-2000.0, 1000.0, -1000.0, 2000.0)


def test_epsg_wkt_is_stored_as_code(tmp_path):
    # QGIS passes the chosen CRS as WKT; a WKT with an EPSG code is stored as "EPSG:nnnn".
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), 32633, [TRIANGLE])
    out = str(tmp_path / "grid.gpkg")
    create_grid(aoi, out, crs=srs_of(32633).ExportToWkt(), patch_px=100, resolution=10.0)
    assert {f["crs"] for f in grid_features(out).values()} == {"EPSG:32633"}


def test_aoi_reprojected_to_explicit_crs(tmp_path):
    # The triangle given in EPSG:3857 and gridded in EPSG:32633 gives the same patches.
    ct = osr.CoordinateTransformation(srs_of(32633), srs_of(3857))
    geom = ogr.CreateGeometryFromWkt(TRIANGLE)
    geom.Segmentize(10)  # keep the edges straight in 32633 after the round trip
    geom.Transform(ct)
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), 3857, [geom.ExportToWkt()])
    out = str(tmp_path / "grid.gpkg")
    create_grid(aoi, out, crs="EPSG:32633", patch_px=100, resolution=10.0)
    assert set(grid_features(out)) == TRIANGLE_IDS


@pytest.mark.parametrize(
    "wkts, geom_type, crs, words",
    [
        (["POINT(401000 5001000)"], ogr.wkbPoint, 32633, "Point"),
        (["LINESTRING(401000 5001000, 402000 5002000)"], ogr.wkbLineString, 32633, "Line String"),
        ([], ogr.wkbPolygon, 32633, "no features"),
        ([None, None], ogr.wkbPolygon, 32633, "empty"),
        ([TRIANGLE], ogr.wkbPolygon, None, "no CRS"),
    ],
)
def test_bad_aoi(tmp_path, wkts, geom_type, crs, words):
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), crs, wkts, geom_type)
    out = str(tmp_path / "grid.gpkg")
    with pytest.raises(LandCoverError) as err:
        create_grid(aoi, out, patch_px=100, resolution=10.0)
    assert err.value.argument == "aoi_path"
    assert words in str(err.value)
    assert not os.path.exists(out)


def test_unreadable_or_missing_aoi(tmp_path):
    bad = tmp_path / "aoi.gpkg"
    bad.write_text("not a geopackage")
    for path in (str(bad), str(tmp_path / "missing.gpkg")):
        with pytest.raises(LandCoverError) as err:
            create_grid(path, str(tmp_path / "grid.gpkg"))
        assert err.value.argument == "aoi_path"


def test_bad_parameters(tmp_path):
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), 32633, [TRIANGLE])
    out = str(tmp_path / "grid.gpkg")
    for kwargs, parameter in (
        ({"patch_px": 0}, "patch_px"),
        ({"resolution": 0.0}, "resolution"),
        ({"resolution": -10.0}, "resolution"),
        ({"crs": "EPSG:4326"}, "crs"),
        ({"crs": "not a crs"}, "crs"),
    ):
        with pytest.raises(LandCoverError) as err:
            create_grid(aoi, out, **kwargs)
        assert err.value.argument == parameter, kwargs
    assert not os.path.exists(out)
    with pytest.raises(LandCoverError) as err:
        create_grid(aoi, aoi)
    assert err.value.argument == "out_path"


def test_read_patches_selection_and_unknown_id(tmp_path):
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), 32633, [TRIANGLE])
    out = str(tmp_path / "grid.gpkg")
    create_grid(aoi, out, patch_px=100, resolution=10.0)
    assert [p.id for p in read_patches(out, ["402_5002", "401_5001"])] == ["402_5002", "401_5001"]
    with pytest.raises(LandCoverError) as err:
        read_patches(out, ["401_5001", "999_999"])
    assert err.value.argument == "patch_ids"
    assert "999_999" in str(err.value) and "401_5001" in str(err.value)
    assert [p.id for p in read_patches(out, ["401_5001"], layer="patches")] == ["401_5001"]
    with pytest.raises(LandCoverError) as err:
        read_patches(aoi)
    assert "patch grid" in str(err.value) and err.value.argument == "grid_path"
    with pytest.raises(LandCoverError) as err:
        read_patches(out, layer="nope")
    assert "patches" in str(err.value) and err.value.argument == "layer"


def test_progress_and_cancel(tmp_path):
    aoi = write_layer(str(tmp_path / "aoi.gpkg"), 32633, [TRIANGLE])
    out = str(tmp_path / "grid.gpkg")
    seen: list[float] = []
    create_grid(aoi, out, patch_px=100, resolution=10.0, monitor=Monitor(seen.append))
    assert seen == [0.0, 50.0, 100.0]  # one update per patch row (2 rows), then done
    os.remove(out)
    with pytest.raises(Cancelled):
        create_grid(aoi, out, patch_px=100, resolution=10.0, monitor=Monitor(is_cancelled=lambda: True))
    assert os.listdir(tmp_path) == ["aoi.gpkg"]


def test_slovenia_10km(tmp_path, testpatch):
    border = str(testpatch / "svn_border.geojson")
    out = str(tmp_path / "grid.gpkg")
    n = create_grid(border, out, patch_px=1000, resolution=10.0).count

    # Brute force: every 10 km cell of the border's bbox that shares area with the border.
    ds = ogr.Open(border)
    layer = ds.GetLayer(0)
    union = ogr.Geometry(ogr.wkbMultiPolygon)
    for f in layer:
        g = f.GetGeometryRef()
        for i in range(g.GetGeometryCount()):
            union.AddGeometry(g.GetGeometryRef(i).Clone())
    union = union.UnionCascaded()
    minx, maxx, miny, maxy = union.GetEnvelope()
    expected = set()
    for col in range(int(minx // 10000), int(maxx // 10000) + 1):
        for row in range(int(miny // 10000), int(maxy // 10000) + 1):
            cell = ogr.CreateGeometryFromWkt(box_wkt(col * 10000, row * 10000, (col + 1) * 10000, (row + 1) * 10000))
            if cell.Intersects(union) and cell.Intersection(union).GetArea() > 0:
                expected.add(f"{col}_{row}")

    feats = grid_features(out)
    assert set(feats) == expected and n == len(expected)
    # Slovenia is ~20 300 km^2 (>= 203 full cells); the border cells add roughly a hundred more.
    assert 203 < n < 400
    assert {f["crs"] for f in feats.values()} == {"EPSG:32633"}
    for f in feats.values():
        cell = ogr.CreateGeometryFromWkt(box_wkt(*f["bounds"]))
        assert cell.Intersects(union)
    patches = read_patches(out)
    assert len(patches) == n and all(p.grid.width == 1000 for p in patches)
