"""Sentinel-3 OLCI EFR products through a STAC API (lc_plugin.sources.olci_stac), against a STAC server on 127.0.0.1.

The item served is the real stactools-packages/sentinel3 example of an OL_1_EFR product (tests/data/olci): its
asset keys, types and the files it lists (the manifest and 21 radiance files, not the geolocation, tie-point,
instrument or flag files) are kept; its hrefs point at the local server and its footprint at the small product
that tests/olci_products.py writes there with the real manifest of the same product.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import numpy as np
import pytest
from osgeo import gdal

from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.http import RetryPolicy
from lc_plugin.sources import olci, olci_stac
from tests import olci_products as op
from tests.stac_faults import FaultyStacServer, fail
from tests.test_olci import _patch

ITEM = os.path.join(os.path.dirname(__file__), "data", "olci", "stac_item_S3A_OL_1_EFR_20211021T073827_20211021T074112_0164_077_334_4320.json")
START = dt.datetime(2021, 10, 21, 7, 38, 27, 254946)  # the real product's start: its manifest is served unchanged
DAY = START.date()
FAST = RetryPolicy(retries=2, backoff=0.0, timeout=10.0)


def _footprint(product: str) -> list[float]:
    """The small swath's bounds widened by 1°: a real product's footprint is far larger than a patch."""
    geo = olci._NetCDF(os.path.join(product, "geo_coordinates.nc"))
    lat, lon = geo.read("latitude"), geo.read("longitude")
    return [float(lon.min()) - 1, float(lat.min()) - 1, float(lon.max()) + 1, float(lat.max()) + 1]


def _catalogue(root: str, *, href_prefix: str = "", folder: str = "", drop: tuple[str, ...] = ()) -> str:
    """Write the product under ``root/folder`` and the real item (hrefs ``href_prefix + <product>/<file>``) beside it."""
    product = op.write_product(os.path.join(root, folder), START)
    with open(ITEM, encoding="utf-8") as f:
        item = json.load(f)
    for key in drop:
        del item["assets"][key]
    for asset in item["assets"].values():
        asset["href"] = f"{href_prefix}{os.path.basename(product)}/{os.path.basename(asset['href'])}"
    w, s, e, n = item["bbox"] = _footprint(product)
    item["geometry"] = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    os.makedirs(os.path.join(root, "items"))
    with open(os.path.join(root, "items", "item.json"), "w", encoding="utf-8") as f:
        json.dump(item, f)
    with open(os.path.join(root, "collection.json"), "w", encoding="utf-8") as f:
        json.dump({"type": "Collection", "id": olci_stac.DEFAULT_COLLECTION, "stac_version": "1.0.0", "links": []}, f)
    return product


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch):
    """The per-run cache goes here, so the tests can see it is gone afterwards."""
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(cache))
    return cache


def _files_fetched(server: FaultyStacServer, product: str) -> list[str]:
    prefix = f"GET /{os.path.basename(product)}/"
    return [r[len(prefix):] for r in server.requests if r.startswith(prefix)]


def test_stac_stack_equals_the_local_read_of_the_same_product(tmp_path, tmp_cache):
    root = str(tmp_path / "stac")
    product = _catalogue(root)
    local = olci.olci_stack([product], _patch())
    with FaultyStacServer(root) as server:
        server.faults.add(f"/{os.path.basename(product)}/Oa07_radiance.nc", fail(503, "0"))  # retried as the HTTP client does
        stack = olci_stac.olci_stac_stack(server.url, olci_stac.DEFAULT_COLLECTION, _patch(), DAY, DAY, policy=FAST)
    np.testing.assert_array_equal(stack.data, local.data)
    assert stack.dates == [DAY] and stack.bands == olci.OLCI_BANDS and stack.grid == local.grid
    assert stack.tags["SOURCE"] == "Sentinel-3 OLCI L1B EFR (STAC sentinel-3-olci-1-efr-ntc)"
    fetched = _files_fetched(server, product)
    # The manifest first, then the geolocation (to drop a product whose swath misses), the rest once each
    # (Oa07 twice: the 503 and its retry); the four files the item does not list were found through the manifest.
    assert fetched[:2] == ["xfdumanifest.xml", "geo_coordinates.nc"]
    assert sorted(set(fetched)) == sorted(olci.NEEDED_FILES) and len(fetched) == len(olci.NEEDED_FILES) + 1
    assert list(tmp_cache.iterdir()) == []


def test_stac_stack_file_and_what_a_search_must_be_given(tmp_path, tmp_cache):
    from lc_plugin.io.rasters import read_stack, write_raster

    root = str(tmp_path / "stac")
    _catalogue(root)
    patch = _patch()
    grid_raster, out = str(tmp_path / "patch.tif"), str(tmp_path / "olci.tif")
    write_raster(grid_raster, np.zeros((patch.height, patch.width), np.uint8), patch)
    with FaultyStacServer(root) as server:
        olci_stac.olci_stac_stack_file(server.url, olci_stac.DEFAULT_COLLECTION, grid_raster, out, start=DAY, end=DAY, policy=FAST)
        with pytest.raises(LandCoverError, match="lists no item of sentinel-3-olci-1-efr-ntc over the patch between 2020-01-01") as err:
            olci_stac.olci_stac_stack(server.url, olci_stac.DEFAULT_COLLECTION, patch, dt.date(2020, 1, 1), dt.date(2020, 1, 31), policy=FAST)
        assert err.value.argument == "collection"
        with pytest.raises(LandCoverError, match="needs both a start and an end date"):
            olci_stac.olci_stac_stack(server.url, olci_stac.DEFAULT_COLLECTION, patch, None, DAY)
    assert read_stack(out).dates == [DAY]


def test_a_missing_file_names_the_item_and_leaves_nothing(tmp_path, tmp_cache):
    root = str(tmp_path / "stac")
    product = _catalogue(root)
    os.remove(os.path.join(product, "tie_geometries.nc"))  # listed by the manifest, absent on the server
    with FaultyStacServer(root) as server, pytest.raises(LandCoverError) as err:
        olci_stac.olci_stac_stack(server.url, olci_stac.DEFAULT_COLLECTION, _patch(), DAY, DAY, policy=FAST)
    message = str(err.value)
    assert "STAC item S3A_OL_1_EFR_20211021T073827_20211021T074112_0164_077_334_4320" in message
    assert "HTTP 404 for tie_geometries.nc" in message
    assert list(tmp_cache.iterdir()) == []


def test_an_item_without_a_manifest_asset_is_refused_naming_it(tmp_path, tmp_cache):
    root = str(tmp_path / "stac")
    _catalogue(root, drop=("safe-manifest",))
    with FaultyStacServer(root) as server, pytest.raises(LandCoverError, match="no asset for the product manifest") as err:
        olci_stac.olci_stac_stack(server.url, olci_stac.DEFAULT_COLLECTION, _patch(), DAY, DAY, policy=FAST)
    assert "S3A_OL_1_EFR_20211021T073827" in str(err.value) and "oa01-radiance" in str(err.value)


def test_a_swath_that_misses_the_patch_costs_only_its_manifest_and_geolocation(tmp_path, tmp_cache):
    root = str(tmp_path / "stac")
    product = _catalogue(root)
    far = _patch(20.0, 64.0 + 170.0)  # 51 km beside the swath, inside the item's footprint
    with FaultyStacServer(root) as server, pytest.raises(LandCoverError, match="None of the OLCI products covers the patch"):
        olci_stac.olci_stac_stack(server.url, olci_stac.DEFAULT_COLLECTION, far, DAY, DAY, policy=FAST)
    assert _files_fetched(server, product) == ["xfdumanifest.xml", "geo_coordinates.nc"]


def test_s3_hrefs_are_read_through_gdal_vsis3(tmp_path, tmp_cache, monkeypatch):
    """CDSE's hrefs are s3://eodata/…: GDAL's /vsis3/ against the local server standing in for CDSE's S3 endpoint."""
    root = str(tmp_path / "stac")
    product = _catalogue(root, href_prefix="s3://eodata/", folder="eodata")
    local = olci.olci_stack([product], _patch())
    with FaultyStacServer(root) as server:
        for key, value in {"AWS_S3_ENDPOINT": server.url[len("http://"):], "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE",
                           "AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret"}.items():
            monkeypatch.setenv(key, value)
        stack = olci_stac.olci_stac_stack(server.url, olci_stac.DEFAULT_COLLECTION, _patch(), DAY, DAY, policy=FAST)
        os.remove(os.path.join(product, "Oa03_radiance.nc"))
        gdal.VSICurlClearCache()  # GDAL remembers what it listed of the server
        with pytest.raises(LandCoverError, match="cannot read Oa03_radiance.nc at s3://eodata/") as err:
            olci_stac.olci_stac_stack(server.url, olci_stac.DEFAULT_COLLECTION, _patch(), DAY, DAY, policy=FAST)
    np.testing.assert_array_equal(stack.data, local.data)
    assert "test-secret" not in str(err.value)


def test_cancel_during_the_fetch_leaves_no_output_and_no_cache(tmp_path, tmp_cache):
    from lc_plugin.core.errors import Cancelled
    from lc_plugin.core.monitor import Monitor
    from lc_plugin.io.rasters import write_raster

    root = str(tmp_path / "stac")
    product = _catalogue(root)
    patch = _patch()
    grid_raster, out = str(tmp_path / "patch.tif"), str(tmp_path / "olci.tif")
    write_raster(grid_raster, np.zeros((patch.height, patch.width), np.uint8), patch)
    with FaultyStacServer(root) as server:
        cancelled = lambda: "geo_coordinates.nc" in _files_fetched(server, product)  # noqa: E731 - the user presses Cancel then
        with pytest.raises(Cancelled):
            olci_stac.olci_stac_stack_file(server.url, olci_stac.DEFAULT_COLLECTION, grid_raster, out, start=DAY, end=DAY, policy=FAST,
                                           monitor=Monitor(is_cancelled=cancelled))
    assert len(_files_fetched(server, product)) <= 3 and not os.path.exists(out)
    assert list(tmp_cache.iterdir()) == [] and sorted(os.listdir(tmp_path)) == ["cache", "patch.tif", "stac"]
