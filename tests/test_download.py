"""STAC search + windowed COG reads against demo.stac_server over real HTTP on 127.0.0.1.

The scene is generated here: uint16 COGs in EPSG:32633 on a global 10 m grid with origin
(400000, 5100000), whose DN are a known linear function of the pixel centre, so the expected
value at any patch pixel can be computed by hand:

    DN(x, y) = base + 2 * col + 4 * row,  col = (x - 400000) / 10 - 0.5,  row = (5100000 - y) / 10 - 0.5
    base = 1000 + 500 * band_index + 100 * day_index + 10 * tile_code

(20 m bands hold the same function at their own pixel centres, so bilinear resampling to 10 m
reproduces it exactly away from edges). SCL (20 m, uint8) is ``2 * tile_code + k % 2`` with k the
20 m column inside the tile.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import date

import numpy as np
import pytest
import rasterio
import requests
from osgeo import gdal, osr
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import transform_bounds

from demo.scene import write_cog
from demo.stac_server import StacServer
from lc_plugin.core.errors import Cancelled, DataError, InputError, LandCoverError
from lc_plugin.core.monitor import Monitor
from lc_plugin.io.http import RetryPolicy
from lc_plugin.io.overviews import block_means
from lc_plugin.io.rasters import Grid, read_stack
from lc_plugin.runs.grid import Patch, create_grid
from lc_plugin.sources.download import DownloadResult, download_patch, download_patches
from lc_plugin.sources.stac_assets import find_asset
from lc_plugin.sources.stac_search import search_items
from tests.vectors import write_polygon

X0, Y0 = 400000.0, 5100000.0
BANDS = ["B02", "B04", "B11", "SCL"]
V1_KEYS = {"B02": "blue", "B04": "red", "B11": "swir16", "SCL": "scl"}
RES = {"B02": 10, "B04": 10, "B11": 20, "SCL": 20}
COLLECTION = "s2-test"

# id: (tile code, day index, datetime, cloud, bounds (minx, miny, maxx, maxy), raster:bands, baseline, key style)
ITEMS = {
    "S2_W_20230601": (1, 0, "2023-06-01T10:00:00Z", 10.0, (400000, 5099000, 400600, 5100000), {"scale": 0.0001, "offset": -0.1, "nodata": 0}, "04.00", "v1"),
    "S2_E_20230601": (2, 0, "2023-06-01T10:00:05Z", 20.0, (400400, 5099000, 401000, 5100000), {"scale": 0.0001, "nodata": 0}, "04.00", "v1"),
    "S2_P_20230606": (3, 1, "2023-06-06T10:00:00Z", 5.0, (400000, 5099600, 400500, 5100000), None, "05.00", "band"),
    "S2_C_20230611": (4, 2, "2023-06-11T10:00:00Z", 95.0, (400000, 5099000, 401000, 5100000), {"scale": 0.0001, "nodata": 0}, "05.00", "v1"),
    "S2_X_20230715": (5, 3, "2023-07-15T10:00:00Z", 1.0, (400000, 5099000, 401000, 5100000), {"scale": 0.0001, "nodata": 0}, "05.00", "v1"),
}
# Nodata hole in tile W (aligned to the 20 m grid): x 400440..400560, y 5099480..5099600.
HOLE = (400440, 5099480, 400560, 5099600)
START, END = date(2023, 6, 1), date(2023, 6, 30)

# The patch: 60 x 50 px at 10 m, origin shifted (20, 10) px from the COG grid origin.
PATCH_GRID = Grid(CRS.from_epsg(32633), Affine(10.0, 0.0, 400200.0, 0.0, -10.0, 5099900.0), 60, 50)
PATCH = Patch("test", PATCH_GRID)
UTM33_WKT = CRS.from_epsg(32633).to_wkt()


def dn(band: str, code: int, day: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    base = 1000 + 500 * BANDS.index(band) + 100 * day + 10 * code
    return base + 2 * ((x - X0) / 10 - 0.5) + 4 * ((Y0 - y) / 10 - 0.5)


def build_scene(root: str, items: dict = ITEMS) -> str:
    os.makedirs(os.path.join(root, "items"), exist_ok=True)
    with open(os.path.join(root, "collection.json"), "w") as f:
        json.dump(
            {"type": "Collection", "id": COLLECTION, "stac_version": "1.0.0", "description": "test", "links": [], "license": "proprietary", "extent": {}}, f
        )
    for item_id, (code, day, when, cloud, (minx, miny, maxx, maxy), rb, baseline, style) in items.items():
        assets = {}
        for band in BANDS:
            res = RES[band]
            w, h = int((maxx - minx) / res), int((maxy - miny) / res)
            xs = minx + res * (np.arange(w) + 0.5)
            ys = maxy - res * (np.arange(h) + 0.5)
            xx, yy = np.meshgrid(xs, ys)
            if band == "SCL":
                arr = (2 * code + (np.arange(w)[None, :] % 2) + 0 * yy).astype(np.uint8)
            else:
                arr = np.round(dn(band, code, day, xx, yy)).astype(np.uint16)
            if code == 1:
                hole = (xx > HOLE[0]) & (xx < HOLE[2]) & (yy > HOLE[1]) & (yy < HOLE[3])
                arr[hole] = 0
            key = V1_KEYS[band] if style == "v1" else band
            rel = f"cogs/{item_id}/{key}.tif"
            write_cog(os.path.join(root, rel), arr, (minx, res, 0, maxy, 0, -res), UTM33_WKT, blocksize=256)
            asset = {"href": rel, "type": "image/tiff; application=geotiff; profile=cloud-optimized", "roles": ["data"]}
            if rb is not None:
                asset["raster:bands"] = [{"nodata": 0}] if band == "SCL" else [dict(rb)]
            assets[key] = asset
        if style == "v1":
            assets["blue-jp2"] = {"href": "cogs/does-not-exist.jp2"}  # Earth Search has such decoys
        b84 = transform_bounds("EPSG:32633", "EPSG:4326", minx, miny, maxx, maxy)
        ring = [[b84[0], b84[1]], [b84[2], b84[1]], [b84[2], b84[3]], [b84[0], b84[3]], [b84[0], b84[1]]]
        item = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": item_id,
            "collection": COLLECTION,
            "bbox": list(b84),
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"datetime": when, "eo:cloud_cover": cloud, "s2:processing_baseline": baseline},
            "assets": assets,
            "links": [],
        }
        with open(os.path.join(root, "items", f"{item_id}.json"), "w") as f:
            json.dump(item, f)
    return root


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> str:
    return build_scene(str(tmp_path_factory.mktemp("scene")))


@pytest.fixture()
def server(scene):
    with StacServer(scene) as srv:
        yield srv


def patch_centres(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    t = grid.transform
    xs = t.c + t.a * (np.arange(grid.width) + 0.5)
    ys = t.f + t.e * (np.arange(grid.height) + 0.5)
    return np.meshgrid(xs, ys)


def expected_day1(band: str, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Tile W (offset -0.1) where it has data, else tile E (offset 0)."""
    in_w = (xx < 400600) & ~((xx > HOLE[0]) & (xx < HOLE[2]) & (yy > HOLE[1]) & (yy < HOLE[3]))
    if band == "SCL":
        w = 2 + (np.floor((xx - 400000) / 20) % 2)
        e = 4 + (np.floor((xx - 400400) / 20) % 2)
        return np.where(in_w, w, e)
    return np.where(in_w, dn(band, 1, 0, xx, yy) * 0.0001 - 0.1, dn(band, 2, 0, xx, yy) * 0.0001)


def fetch(server: StacServer, out: str, **kwargs) -> dict:
    args = dict(start=START, end=END, stac_url=server.url, collection=COLLECTION, max_cloud=80.0, bands=BANDS)
    args.update(kwargs)
    return download_patch(PATCH, out, **args)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- download_patch


def test_download_patch_values(server, tmp_path):
    out = str(tmp_path / "patch.tif")
    summary = fetch(server, out)
    assert summary == DownloadResult(out, ["2023-06-01", "2023-06-06"], ["S2_W_20230601", "S2_E_20230601", "S2_P_20230606"])
    stack = read_stack(out)
    assert stack.dates == [date(2023, 6, 1), date(2023, 6, 6)]
    assert stack.bands == BANDS
    assert stack.data.dtype == np.float32 and stack.data.shape == (2, 4, 50, 60)
    assert stack.grid.crs == CRS.from_epsg(32633) and stack.grid.transform == PATCH_GRID.transform
    assert stack.tags["SOURCE"] == "stac" and stack.tags["STAC_URL"] == server.url and stack.tags["COLLECTION"] == COLLECTION
    assert json.loads(stack.tags["ITEM_IDS"]) == [["S2_W_20230601", "S2_E_20230601"], ["S2_P_20230606"]]
    assert json.loads(stack.tags["PROCESSING_BASELINE"]) == [["04.00", "04.00"], ["05.00"]]

    xx, yy = patch_centres(PATCH_GRID)
    # Hand check of one pixel: row 2, col 3 -> centre (400235, 5099875) -> global col 23, row 12, tile W.
    assert stack.data[0, 0, 2, 3] == pytest.approx((1000 + 10 + 2 * 23 + 4 * 12) * 0.0001 - 0.1, abs=1e-6)
    # Day 1: both tiles merged (W first, E fills W's nodata hole and the east half); no NaN.
    for bi, band in enumerate(BANDS):
        if band == "B11":
            continue
        np.testing.assert_allclose(stack.data[0, bi], expected_day1(band, xx, yy), atol=1e-6, err_msg=band)
    assert stack.data[0, 1, 35, 30] == pytest.approx(dn("B04", 2, 0, 400505.0, 5099545.0) * 0.0001, abs=1e-6)  # in the hole
    # B11 is 20 m: bilinear reproduces the linear DN away from tile edges and the hole.
    for r, c in ((5, 5), (20, 10), (45, 55), (10, 50)):
        assert stack.data[0, 2, r, c] == pytest.approx(expected_day1("B11", xx[r, c], yy[r, c]), abs=1e-6)
    assert not np.isnan(stack.data[0]).any()
    # Internal AVERAGE overviews for drawing and for cloud masks at 40 m (tests/test_overviews.py):
    # GDAL sees them; the bands of day 2, partly outside its item, are recorded as holding NaN.
    ds = gdal.Open(out)
    assert [ds.GetRasterBand(1).GetOverview(k).XSize for k in range(ds.GetRasterBand(1).GetOverviewCount())] == [15, 4]
    ds = None
    assert json.loads(stack.tags["LC_OVERVIEWS"]) == {"resampling": "AVERAGE", "factors": [4, 16], "nan_bands": [5, 6, 7, 8]}
    with rasterio.open(out, overview_level=0) as src:
        flat = stack.data.reshape(8, 50, 60)
        np.testing.assert_array_equal(src.read(), block_means(flat, np.isfinite(flat), 4))

    # Day 2: the partial item (no raster:bands, baseline 05.00 -> offset -0.1) covers x < 400500, y > 5099600.
    inside = (xx < 400500) & (yy > 5099600)
    assert inside.sum() == 30 * 30
    for bi, band in enumerate(BANDS):
        day2 = stack.data[1, bi]
        assert np.isnan(day2[~inside]).all(), band
        assert not np.isnan(day2[inside]).any(), band
    np.testing.assert_allclose(stack.data[1, 0][inside], (dn("B02", 3, 1, xx, yy) * 0.0001 - 0.1)[inside], atol=1e-6)
    scl = 6 + (np.floor((xx - 400000) / 20) % 2)
    np.testing.assert_array_equal(stack.data[1, 3][inside], scl[inside])

    # Only windowed range reads of the COGs; the cloudy and out-of-range items were never touched.
    tif_gets = [r for r in server.requests if r.startswith("GET /cogs/")]
    assert tif_gets and all("bytes=" in r for r in tif_gets)
    assert not [r for r in server.requests if "S2_C_" in r or "S2_X_" in r]
    assert not [p for p in os.listdir(tmp_path) if "partial" in p]
    assert gdal.GetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN") is None  # thread-local settings restored


def test_paging_gives_same_result(scene, tmp_path):
    with StacServer(scene, page_size=10) as srv:
        fetch(srv, str(tmp_path / "a.tif"))
    with StacServer(scene, page_size=1) as srv:
        fetch(srv, str(tmp_path / "b.tif"))
        assert len([r for r in srv.requests if r.startswith("POST /search")]) == 3  # 3 matching items
    a, b = read_stack(str(tmp_path / "a.tif")), read_stack(str(tmp_path / "b.tif"))
    np.testing.assert_array_equal(a.data, b.data)
    assert a.dates == b.dates and a.tags["ITEM_IDS"] == b.tags["ITEM_IDS"]


def test_search_items_filters(server):
    bbox = transform_bounds("EPSG:32633", "EPSG:4326", *PATCH_GRID.bounds)
    ids = sorted(i["id"] for i in search_items(server.url, COLLECTION, bbox, START, END, 80.0))
    assert ids == ["S2_E_20230601", "S2_P_20230606", "S2_W_20230601"]
    ids = sorted(i["id"] for i in search_items(server.url, COLLECTION, bbox, START, date(2023, 12, 31), 100.0))
    assert ids == sorted(ITEMS)
    assert search_items(server.url, "other", bbox, START, END, 80.0) == []
    far = (20.0, 40.0, 20.1, 40.1)
    assert search_items(server.url, COLLECTION, far, START, END, 80.0) == []
    item = search_items(server.url, COLLECTION, bbox, date(2023, 6, 6), date(2023, 6, 6), 80.0)[0]
    assert item["assets"]["B02"]["href"] == f"{server.url}/cogs/S2_P_20230606/B02.tif"


def test_server_down(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(LandCoverError) as err:
        download_patch(PATCH, str(tmp_path / "p.tif"), start=START, end=END, stac_url=url, collection=COLLECTION)
    assert err.value.argument == "stac_url"
    assert url in str(err.value) and "could not be reached" in str(err.value)
    assert not os.path.exists(tmp_path / "p.tif")


def test_server_timeout():
    with socket.socket() as s:  # accepts connections but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(5)
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(LandCoverError) as err:
            search_items(url, COLLECTION, (0, 0, 1, 1), START, END, 80.0, timeout=0.3, policy=RetryPolicy(retries=1, backoff=0.01))
    assert err.value.argument == "stac_url" and "could not be reached" in str(err.value)


def test_server_error_status(scene, tmp_path):
    with StacServer(scene, fail_status=500) as srv, pytest.raises(LandCoverError) as err:
        fetch(srv, str(tmp_path / "p.tif"))
    assert err.value.argument == "stac_url"
    assert "500" in str(err.value) and "simulated server failure" in str(err.value)
    assert not os.path.exists(tmp_path / "p.tif")


def test_not_a_stac_api(server, tmp_path):
    with pytest.raises(LandCoverError) as err:
        fetch(server, str(tmp_path / "p.tif"), stac_url=server.url + "/cogs")
    assert err.value.argument == "stac_url" and "HTTP 405" in str(err.value) and "root URL of a STAC API" in str(err.value)


def test_no_scenes(server, tmp_path):
    with pytest.raises(LandCoverError) as err:
        fetch(server, str(tmp_path / "p.tif"), start=date(2022, 1, 1), end=date(2022, 3, 1))
    assert isinstance(err.value, DataError) and err.value.argument == "start"
    assert "2022-01-01" in str(err.value) and "2022-03-01" in str(err.value) and "widen" in str(err.value)
    with pytest.raises(LandCoverError) as err:  # only the cloudy scene in that window
        fetch(server, str(tmp_path / "p.tif"), start=date(2023, 6, 10), end=date(2023, 6, 12), max_cloud=50)
    assert err.value.argument == "start" and "50" in str(err.value)
    assert not os.path.exists(tmp_path / "p.tif")


def test_bad_arguments(server, tmp_path):
    for kwargs, parameter in (
        ({"start": END, "end": START}, "end"),
        ({"max_cloud": 120}, "max_cloud"),
        ({"bands": []}, "bands"),
        ({"bands": ["B02", "B08"]}, "bands"),  # B08 / nir is not in the items
    ):
        with pytest.raises(LandCoverError) as err:
            fetch(server, str(tmp_path / "p.tif"), **kwargs)
        assert isinstance(err.value, InputError) and err.value.argument == parameter, kwargs
    assert "B08" in str(err.value) and "S2_" in str(err.value)
    assert not os.listdir(tmp_path)


def test_cancel_leaves_no_output(server, tmp_path):
    calls = []

    def cancel_after_search() -> bool:
        calls.append(1)
        return len(calls) > 3  # let the search through, stop during the reads

    out = tmp_path / "p.tif"
    with pytest.raises(Cancelled):
        fetch(server, str(out), monitor=Monitor(is_cancelled=cancel_after_search))
    with pytest.raises(Cancelled):
        fetch(server, str(out), monitor=Monitor(is_cancelled=lambda: True))
    assert not os.listdir(tmp_path)


def test_missing_cog_names_href(tmp_path):
    items = {"S2_W_20230601": ITEMS["S2_W_20230601"]}
    root = build_scene(str(tmp_path / "scene"), items)
    os.remove(os.path.join(root, "cogs", "S2_W_20230601", "red.tif"))
    with StacServer(root) as srv, pytest.raises(LandCoverError) as err:
        fetch(srv, str(tmp_path / "p.tif"))
    assert f"{srv.url}/cogs/S2_W_20230601/red.tif" in str(err.value)
    assert "B04" in str(err.value)
    assert not os.path.exists(tmp_path / "p.tif")


def test_windowed_full_resolution_reads(tmp_path):
    """A 1024 px COG whose overviews hold a wrong constant: only the patch's bytes are fetched,
    and even a coarse patch is computed from full-resolution pixels, never from the overviews."""
    root = str(tmp_path / "big")
    rng = np.random.default_rng(0)
    arr = rng.integers(1000, 61000, size=(1024, 1024), dtype=np.uint16)
    src = str(tmp_path / "src.tif")
    ds = gdal.GetDriverByName("GTiff").Create(src, 1024, 1024, 1, gdal.GDT_UInt16, ["TILED=YES"])
    ds.SetGeoTransform((X0, 10, 0, Y0, 0, -10))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(arr)
    ds.BuildOverviews("NEAREST", [2, 4, 8])
    for i in range(ds.GetRasterBand(1).GetOverviewCount()):
        ds.GetRasterBand(1).GetOverview(i).Fill(7)
    ds = None
    cog = os.path.join(root, "cogs", "BIG", "red.tif")
    os.makedirs(os.path.dirname(cog))
    gdal.Translate(cog, src, format="COG", creationOptions=["OVERVIEWS=FORCE_USE_EXISTING", "BLOCKSIZE=256"])
    os.makedirs(os.path.join(root, "items"))
    with open(os.path.join(root, "collection.json"), "w") as f:
        json.dump({"type": "Collection", "id": COLLECTION}, f)
    b84 = transform_bounds("EPSG:32633", "EPSG:4326", X0, Y0 - 10240, X0 + 10240, Y0)
    with open(os.path.join(root, "items", "BIG.json"), "w") as f:
        json.dump(
            {
                "type": "Feature",
                "id": "BIG",
                "collection": COLLECTION,
                "bbox": list(b84),
                "properties": {"datetime": "2023-06-01T10:00:00Z", "eo:cloud_cover": 0},
                "assets": {"red": {"href": "cogs/BIG/red.tif"}},
            },
            f,
        )

    fine = Patch("fine", Grid(CRS.from_epsg(32633), Affine(10.0, 0, X0 + 3000, 0, -10.0, Y0 - 3000), 40, 40))
    coarse = Patch("coarse", Grid(CRS.from_epsg(32633), Affine(80.0, 0, X0, 0, -80.0, Y0), 128, 128))
    kwargs = dict(start=START, end=END, collection=COLLECTION, bands=["B04"])
    with StacServer(root) as srv:
        download_patch(fine, str(tmp_path / "fine.tif"), stac_url=srv.url, **kwargs)
        ranges = [r.rsplit("bytes=", 1)[1] for r in srv.requests if r.startswith("GET /cogs/") and "bytes=" in r]
        fetched = sum(int(b) - int(a) + 1 for a, b in (r.split("-") for r in ranges))
        download_patch(coarse, str(tmp_path / "coarse.tif"), stac_url=srv.url, **kwargs)
    size = os.path.getsize(cog)
    assert size > 2_000_000 and fetched < 0.15 * size  # the header and the one 256 px tile under the patch
    np.testing.assert_allclose(read_stack(str(tmp_path / "fine.tif")).data[0, 0], arr[300:340, 300:340] * 0.0001, atol=1e-6)
    coarse_values = read_stack(str(tmp_path / "coarse.tif")).data[0, 0]
    assert coarse_values.min() > 0.01  # an overview would give 7 * 0.0001
    assert abs(float(coarse_values.mean()) - 3.1) < 0.05


def test_find_asset_keys():
    item = {"id": "x", "assets": {"NIR": {"href": "a"}, "nir08": {"href": "b"}, "B02": {"href": "c"}, "scl": {"href": "d"}}}
    assert find_asset(item, "B08")["href"] == "a"
    assert find_asset(item, "B8A")["href"] == "b"
    assert find_asset(item, "B02")["href"] == "c"
    assert find_asset(item, "SCL")["href"] == "d"
    with pytest.raises(LandCoverError) as err:
        find_asset(item, "B11")
    assert err.value.argument == "bands" and "B11" in str(err.value) and "x" in str(err.value)


# --------------------------------------------------------------------------- grid -> download


def test_grid_to_download_patches(server, tmp_path):
    # AOI x 400250..400650, y 5099450..5099650 with 300 m patches -> cols 1334, 1335, row 16998.
    aoi = write_polygon(str(tmp_path / "aoi.gpkg"), "POLYGON((400250 5099450,400650 5099450,400650 5099650,400250 5099650,400250 5099450))")
    grid = str(tmp_path / "grid.gpkg")
    assert create_grid(aoi, grid, patch_px=30, resolution=10.0).count == 2

    seen: list[float] = []
    out_dir = str(tmp_path / "stacks")
    paths = download_patches(
        grid, out_dir, monitor=Monitor(seen.append), start=START, end=END, stac_url=server.url, collection=COLLECTION, bands=["B04", "SCL"]
    )
    assert sorted(os.path.basename(p) for p in paths) == ["1334_16998.tif", "1335_16998.tif"]
    assert seen[-1] == pytest.approx(100.0) and seen == sorted(seen)
    for path in paths:
        stack = read_stack(path)
        assert stack.bands == ["B04", "SCL"] and stack.data.shape == (2, 2, 30, 30)
        col = int(os.path.basename(path).split("_")[0])
        assert stack.grid.transform == Affine(10.0, 0.0, col * 300.0, 0.0, -10.0, 16999 * 300.0)
        xx, yy = patch_centres(stack.grid)
        # B04 was band index 1 in the scene's DN formula.
        np.testing.assert_allclose(stack.data[0, 0], expected_day1("B04", xx, yy), atol=1e-6)
        np.testing.assert_array_equal(stack.data[0, 1], expected_day1("SCL", xx, yy))

    only = download_patches(
        grid, str(tmp_path / "one"), patch_ids=["1335_16998"], layer="patches", start=START, end=END, stac_url=server.url, collection=COLLECTION, bands=["B04"]
    )
    assert [os.path.basename(p) for p in only] == ["1335_16998.tif"]


# --------------------------------------------------------------------------- the server itself


def test_server_endpoints_and_ranges(server, scene):
    url = server.url
    landing = requests.get(url + "/").json()
    assert {link["rel"] for link in landing["links"]} >= {"conformance", "search", "data"}
    assert "https://api.stacspec.org/v1.0.0/item-search" in requests.get(url + "/conformance").json()["conformsTo"]
    assert [c["id"] for c in requests.get(url + "/collections").json()["collections"]] == [COLLECTION]
    assert requests.get(f"{url}/collections/{COLLECTION}").json()["id"] == COLLECTION
    assert requests.get(f"{url}/collections/nope").status_code == 404

    # GET search with paging through "next" URLs.
    ids, link = [], f"{url}/search?collections={COLLECTION}&limit=2&datetime=2023-06-01T00:00:00Z/2023-06-30T23:59:59Z"
    while link:
        page = requests.get(link).json()
        ids += [f["id"] for f in page["features"]]
        link = next((lk["href"] for lk in page["links"] if lk["rel"] == "next"), None)
    assert sorted(ids) == ["S2_C_20230611", "S2_E_20230601", "S2_P_20230606", "S2_W_20230601"]
    page = requests.post(url + "/search", json={"query": {"eo:cloud_cover": {"lt": 10}}}).json()
    assert sorted(f["id"] for f in page["features"]) == ["S2_P_20230606", "S2_X_20230715"]

    path = "/cogs/S2_W_20230601/blue.tif"
    size = os.path.getsize(scene + path)
    head = requests.head(url + path)
    assert head.status_code == 200 and head.headers["Accept-Ranges"] == "bytes" and int(head.headers["Content-Length"]) == size
    with open(scene + path, "rb") as f:
        raw = f.read()
    r = requests.get(url + path, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == raw[10:20] and r.headers["Content-Range"] == f"bytes 10-19/{size}"
    r = requests.get(url + path, headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == raw[-5:]
    r = requests.get(url + path, headers={"Range": f"bytes={size - 3}-"})
    assert r.content == raw[-3:]
    assert requests.get(url + path, headers={"Range": f"bytes={size}-"}).status_code == 416
    assert requests.get(url + path).content == raw
    assert requests.get(url + "/cogs/none.tif").status_code == 404
    assert requests.get(url + "/../" + os.path.basename(scene)).status_code == 404
    assert any("bytes=10-19" in r for r in server.requests)


def test_server_is_concurrent(server):
    errors = []

    def hit() -> None:
        try:
            assert requests.get(server.url + "/conformance", timeout=5).status_code == 200
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
