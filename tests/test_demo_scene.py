"""The embedded demo scene: real NDVI, clouds and cloud cover survive the COG/STAC packaging."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_bounds

from demo import scene as demo_scene

BBOX = (465181.0522318204, 5079244.8912012065, 466180.53145382757, 5080254.63349641)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_scene")
    return demo_scene.build_scene(str(out))


@pytest.fixture(scope="module")
def source():
    return demo_scene.load_source()


def _items(root: str) -> list[dict]:
    folder = os.path.join(root, "items")
    items = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            items.append(json.load(f))
    return items


def _reflectance(path: str) -> np.ndarray:
    with rasterio.open(path) as ds:
        dn = ds.read(1).astype(np.float64)
    out = dn * 0.0001  # Earth Search sentinel-2-l2a: the declared offset -0.1 is already in the pixels
    out[dn == 0] = np.nan
    return out


def test_scene_api(built):
    assert built.collection == "sentinel-2-l2a-demo"
    assert built.start.isoformat() == "2017-01-01" and built.end.isoformat() == "2017-12-31"
    assert built.bands == ["B02", "B03", "B04", "B08", "B11", "B12"]
    assert os.path.isfile(built.aoi_path) and os.path.isfile(built.reference_path)
    assert os.path.isfile(os.path.join(built.root, "collection.json"))
    from osgeo import ogr

    ds = ogr.Open(built.aoi_path)
    layer = ds.GetLayerByName("aoi")
    assert layer.GetFeatureCount() == 1 and layer.GetSpatialRef().GetAuthorityCode(None) == "32633"
    minx, maxx, miny, maxy = layer.GetExtent()
    assert np.allclose((minx, miny, maxx, maxy), BBOX)
    ref_ds = ogr.Open(built.reference_path)  # keep the dataset alive while its layer is used
    ref = ref_ds.GetLayer(0)
    assert ref.GetFeatureCount() == 88
    fields = [ref.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(ref.GetLayerDefn().GetFieldCount())]
    assert "LULC_ID" in fields and "LULC_NAME" in fields


def test_items(built, source):
    items = _items(built.root)
    assert len(items) == 36
    clm = source["clm"]
    for t, item in enumerate(sorted(items, key=lambda i: i["properties"]["datetime"])):
        props = item["properties"]
        assert props["datetime"] == str(source["timestamps"][t]) + "Z"
        assert props["eo:cloud_cover"] == pytest.approx(100.0 * float(np.mean(clm[t] == 1)), abs=0.006)
        assert props["s2:processing_baseline"] == "04.00" and props["proj:epsg"] == 32633
        assert props["earthsearch:boa_offset_applied"] is True
        assert set(item["assets"]) == {"blue", "green", "red", "nir", "swir16", "swir22", "scl"}
        lon0, lat0, lon1, lat1 = item["bbox"]
        assert 14.5 < lon0 < lon1 < 14.6 and 45.8 < lat0 < lat1 < 45.9
        assert item["geometry"]["type"] == "Polygon"
        for key, asset in item["assets"].items():
            assert asset["href"] == f"cogs/{item['id']}/{key}.tif"
            assert os.path.isfile(os.path.join(built.root, asset["href"]))
            rb = asset["raster:bands"][0]
            if key == "scl":
                assert rb == {"nodata": 0, "data_type": "uint8"}
            else:
                assert rb == {"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1}
    # Some dates are clear, some fully cloudy, some partly: the chain sees real variety.
    covers = [i["properties"]["eo:cloud_cover"] for i in items]
    assert min(covers) == 0.0 and max(covers) == 100.0 and any(0 < c < 100 for c in covers)


def test_cog_grid_and_layout(built):
    item = _items(built.root)[0]
    for key in ("nir", "scl"):
        path = os.path.join(built.root, item["assets"][key]["href"])
        with rasterio.open(path) as ds:
            assert ds.crs.to_epsg() == 32633
            assert (ds.width, ds.height) == (100, 101)
            assert ds.transform.almost_equals(from_bounds(*BBOX, 100, 101), precision=1e-9)
            assert ds.nodata == 0
            assert ds.dtypes[0] == ("uint8" if key == "scl" else "uint16")
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"


def _date_with_clouds_and_clear(source) -> int:
    fractions = source["clm"].reshape(len(source["clm"]), -1).mean(axis=1)
    return int(np.argmin(np.abs(fractions - 0.5)))


def test_ndvi_is_the_real_ndvi_and_clouds_are_flagged(built, source):
    t = _date_with_clouds_and_clear(source)
    item = next(i for i in _items(built.root) if i["properties"]["datetime"] == str(source["timestamps"][t]) + "Z")
    root = built.root

    def band(key):
        return _reflectance(os.path.join(root, item["assets"][key]["href"]))

    red, nir = band("red"), band("nir")
    with rasterio.open(os.path.join(root, item["assets"]["scl"]["href"])) as ds:
        scl = ds.read(1)
    cloud = source["clm"][t] == 1
    clear = ~cloud
    assert cloud.any() and clear.any()

    ndvi = (nir - red) / (nir + red)
    assert np.nanmax(np.abs(ndvi[clear] - source["ndvi"][t][clear])) < 1e-3
    assert set(np.unique(scl[cloud])) <= {8, 9}
    clp = source["clp_u8"][t] / 255.0
    assert np.all(scl[cloud & (clp >= 0.7)] == 9)
    assert set(np.unique(scl[clear])) <= {4, 5}
    assert np.all((scl[clear] == 4) == (source["ndvi"][t][clear] > 0.3))
    # Clouds are bright and flat across bands.
    assert np.allclose(band("blue")[cloud], band("swir22")[cloud], atol=2e-4)
    assert np.all(band("blue")[cloud] >= 0.25 - 1e-4)
    # Clear reflectances are plausible.
    for key in ("blue", "green", "red", "nir", "swir16", "swir22"):
        values = band(key)[clear]
        assert np.all(np.isfinite(values)) and values.min() >= 0.0 and values.max() < 1.0


def test_ndvi_on_every_clear_date(built, source):
    """Every clear pixel of every date reproduces the real NDVI."""
    for t, item in enumerate(sorted(_items(built.root), key=lambda i: i["properties"]["datetime"])):
        clear = source["clm"][t] == 0
        if not clear.any():
            continue
        red = _reflectance(os.path.join(built.root, item["assets"]["red"]["href"]))
        nir = _reflectance(os.path.join(built.root, item["assets"]["nir"]["href"]))
        ndvi = (nir - red) / (nir + red)
        assert np.max(np.abs(ndvi[clear] - source["ndvi"][t][clear])) < 1e-3


def test_idempotent(built):
    marker = os.path.join(built.root, "scene.json")
    paths = [marker]
    for dirpath, _, names in os.walk(built.root):
        paths += [os.path.join(dirpath, n) for n in names]
    before = {p: os.stat(p).st_mtime_ns for p in paths}
    start = time.perf_counter()
    again = demo_scene.build_scene(built.root)
    assert time.perf_counter() - start < 0.5
    assert again == built
    assert {p: os.stat(p).st_mtime_ns for p in paths} == before


def test_incomplete_scene_is_rebuilt(tmp_path):
    scene = demo_scene.build_scene(str(tmp_path))
    victim = os.path.join(scene.root, "cogs", sorted(os.listdir(os.path.join(scene.root, "cogs")))[3], "nir.tif")
    os.remove(victim)
    demo_scene.build_scene(str(tmp_path))
    assert os.path.isfile(victim)
    with open(os.path.join(tmp_path, "scene.json"), encoding="utf-8") as f:
        marker = json.load(f)
    assert marker["version"] == demo_scene.SCENE_VERSION and len(marker["dates"]) == 36


def test_deterministic(built, tmp_path):
    other = demo_scene.build_scene(str(tmp_path))
    item = _items(built.root)[5]
    for key in ("blue", "scl"):
        rel = item["assets"][key]["href"]
        with rasterio.open(os.path.join(built.root, rel)) as a, rasterio.open(os.path.join(other.root, rel)) as b:
            assert np.array_equal(a.read(), b.read())


def test_embedded_copy_matches_original(testpatch, source):
    """The npz in demo/data is a faithful extract of the shared test patch."""
    patch = testpatch / "TestEOPatch"
    timestamps = json.loads((patch / "timestamps.json").read_text())
    keep = [i for i, t in enumerate(timestamps) if t.startswith("2017")]
    assert list(source["timestamps"]) == [timestamps[i] for i in keep]
    assert np.array_equal(source["ndvi"], np.load(patch / "data" / "NDVI.npy")[keep, ..., 0])
    assert np.array_equal(source["clm"], np.load(patch / "mask" / "CLM.npy")[keep, ..., 0])
    clp = np.load(patch / "data" / "CLP.npy")[keep, ..., 0]
    assert np.max(np.abs(source["clp_u8"] / 255.0 - clp)) <= 0.5 / 255 + 1e-6
    scenes = np.load(testpatch / "REFERENCE_SCENES.npy")
    assert np.array_equal(source["base_scene"], scenes[4])  # frame 0 of the series, 2015-07-11
    assert str(source["base_timestamp"]) == timestamps[0]


def test_stac_source_reads_the_demo_like_earth_search(built):
    """The demo models Earth Search sentinel-2-l2a: declared offset -0.1, pixels already corrected; the source must not apply it."""
    from lc_plugin.io.rasters import Grid
    from lc_plugin.sources.stac_assets import read_item

    item = _items(built.root)[0]
    for asset in item["assets"].values():  # hrefs are relative to the scene folder (the server's root)
        asset["href"] = os.path.join(built.root, asset["href"])
    red_path = item["assets"]["red"]["href"]
    data, scalings = read_item(item, Grid.of(red_path), ["B04"])
    assert (scalings["B04"].scale, scalings["B04"].offset) == (0.0001, 0.0) and "boa_offset_applied is true" in scalings["B04"].reason
    np.testing.assert_allclose(data[0], _reflectance(red_path), atol=1e-6)
