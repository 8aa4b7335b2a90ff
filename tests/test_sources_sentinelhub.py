"""The Sentinel Hub source against tests.servers.SentinelHubServer on 127.0.0.1 (real HTTP):
OAuth2 client credentials, token expiry and refresh, catalogue paging, one Process API request
per date, TIFF answers placed on the patch grid, faults, and secrets kept out of everything."""

from __future__ import annotations

import json
import os
from datetime import date

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import transform_bounds

from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.http import RetryPolicy
from lc_plugin.io.rasters import Grid, read_stack
from lc_plugin.runs.grid import Patch
from lc_plugin.sources.download import download_patch, make_source
from lc_plugin.sources.sentinelhub import SentinelHubSource, evalscript
from tests.servers import SentinelHubServer, sh_item, sh_value
from tests.stac_faults import fail

FAST = RetryPolicy(retries=4, backoff=0.02, timeout=5)
GRID = Grid(CRS.from_epsg(32633), Affine(10.0, 0.0, 404000.0, 0.0, -10.0, 5096000.0), 40, 30)
PATCH = Patch("sh", GRID)
SECRET = "s3cret-value-42"
B84 = list(transform_bounds("EPSG:32633", "EPSG:4326", 400000, 5090000, 410000, 5100000))
ITEMS = [
    sh_item("S2A_T33TWM_20230601", "2023-06-01T10:00:00Z", 10.0, B84, "05.09"),
    sh_item("S2A_T33TVM_20230601", "2023-06-01T10:00:04Z", 30.0, B84, "05.09"),
    sh_item("S2B_T33TWM_20230604", "2023-06-04T10:00:00Z", 20.0, B84, "05.09"),
    sh_item("S2B_T33TWM_20230611", "2023-06-11T10:00:00Z", 95.0, B84, "05.09"),
]
BANDS = ["B02", "B04", "B8A", "CLM", "CLP"]


def source(srv: SentinelHubServer, secret: str = SECRET) -> SentinelHubSource:
    return SentinelHubSource(srv.url, credentials=("test-client", secret), policy=FAST)


def fetch(srv, out, **kwargs):
    args = dict(start=date(2023, 6, 1), end=date(2023, 6, 30), max_cloud=50.0, bands=BANDS, threads=2)
    args.update(kwargs)
    args.setdefault("source", source(srv))
    return download_patch(PATCH, out, **args)


def centres() -> tuple[np.ndarray, np.ndarray]:
    t = GRID.transform
    return np.meshgrid(t.c + 10 * (np.arange(40) + 0.5), t.f - 10 * (np.arange(30) + 0.5))


def test_sentinelhub_download_values_and_metadata(tmp_path):
    with SentinelHubServer(ITEMS, page_size=1, footprint_max_x=404300) as srv:
        out = str(tmp_path / "sh.tif")
        summary = fetch(srv, out)
        process = [r for r in srv.requests if r.endswith("/process")]
        searches = [r for r in srv.requests if "/catalog/" in r]
        assert len(process) == 2 and len(searches) == 3  # one request per date; catalogue pages of one item
        assert srv.tokens_issued == 1
        body = srv.process_bodies[0]
        assert body["input"]["bounds"]["properties"]["crs"].endswith("/32633") and body["output"]["width"] == 40
        assert body["input"]["data"][0]["dataFilter"]["maxCloudCoverage"] == 50.0
        headers = "".join(srv.seen_headers)
    stack = read_stack(out)
    assert stack.dates == [date(2023, 6, 1), date(2023, 6, 4)] and stack.bands == BANDS
    assert stack.grid.transform == GRID.transform and stack.grid.crs == GRID.crs
    assert json.loads(stack.tags["ITEM_IDS"]) == [["S2A_T33TVM_20230601", "S2A_T33TWM_20230601"], ["S2B_T33TWM_20230604"]]
    assert stack.tags["SOURCE"] == "sentinelhub" and json.loads(stack.tags["PROCESSING_BASELINE"]) == [["05.09"], ["05.09"]]
    assert summary.dates == ["2023-06-01", "2023-06-04"]
    xx, yy = centres()
    inside = xx < 404300
    # Georeferencing by hand: pixel (row 0, col 0) is centred on (404005, 5095995): global col 400, row 400.
    assert stack.data[1, 0, 0, 0] == pytest.approx((1000 + 100 + 30 + 2 * 400 + 4 * 400) * 1e-4, abs=1e-6)
    for ti, day in enumerate((0, 3)):
        for bi, band in enumerate(BANDS):
            values = stack.data[ti, bi]
            np.testing.assert_allclose(values[inside], sh_value(band, day, xx, yy)[inside], atol=1e-6)
            assert np.isnan(values[~inside]).all()  # outside the data footprint: kept as no data
    assert set(np.unique(stack.data[0, 3][inside])) == {0.0, 1.0}
    assert json.loads(stack.tags["DATA_COVERAGE"]) == [0.75, 0.75]
    # The secret never travels beyond the token endpoint and never lands in the output.
    text = json.dumps(stack.tags)
    assert SECRET not in text and "tok-" not in text
    assert SECRET not in headers


def test_token_expiry_and_refresh(tmp_path):
    with SentinelHubServer(ITEMS, token_uses=1) as srv:  # the service expires each token after one request
        src = source(srv)
        fetch(srv, str(tmp_path / "a.tif"), source=src, threads=1)
        # search (token 1), process day 1 -> 401 -> token 2, process day 2 -> 401 -> token 3
        assert srv.tokens_issued == 3 and src.tokens.fetches == 3
        assert len([r for r in srv.requests if r.endswith("/process")]) == 4
    with SentinelHubServer(ITEMS, expires_in=30) as srv:  # shorter than the 60 s margin: renewed before each use
        fetch(srv, str(tmp_path / "b.tif"), threads=1)
        assert srv.tokens_issued >= 3
        assert not [r for r in srv.requests if r.endswith("/process")] == []


def test_faults_on_process_api_are_retried(tmp_path):
    with SentinelHubServer(ITEMS) as srv:
        srv.faults.add("/api/v1/process", fail(429, "0"), fail(500), fail(503, "0"))
        srv.faults.add("TRUNCATE:/api/v1/process", ("truncate",))
        srv.faults.add("/api/v1/catalog", fail(502))
        srv.faults.add(SentinelHubServer.__module__ and "/auth/", fail(500))
        fetch(srv, str(tmp_path / "p.tif"), threads=1)
        assert len(srv.faults.fired) == 6, srv.faults.fired
    assert read_stack(str(tmp_path / "p.tif")).data.shape == (2, 5, 30, 40)


def test_refused_and_missing_credentials(tmp_path, monkeypatch):
    with SentinelHubServer(ITEMS) as srv:
        with pytest.raises(LandCoverError) as err:
            fetch(srv, str(tmp_path / "p.tif"), source=source(srv, "wrong-secret-123"))
        assert err.value.argument == "credentials" and "refused the OAuth client id/secret" in str(err.value)
        assert "wrong-secret-123" not in str(err.value)
        monkeypatch.setenv("SH_CLIENT_ID", "test-client")
        monkeypatch.setenv("SH_CLIENT_SECRET", "bad-env-secret")
        with pytest.raises(LandCoverError) as err:
            fetch(srv, str(tmp_path / "p.tif"), source=make_source("sentinelhub", endpoint=srv.url, policy=FAST))
        assert "SH_CLIENT_ID/SH_CLIENT_SECRET" in str(err.value) and "bad-env-secret" not in str(err.value)
        monkeypatch.setenv("SH_CLIENT_SECRET", SECRET)
        fetch(srv, str(tmp_path / "env.tif"), source=make_source("sentinelhub", endpoint=srv.url, policy=FAST))
        with pytest.raises(LandCoverError) as err:
            fetch(srv, str(tmp_path / "p.tif"), bands=["B02", "SCL"])
        assert err.value.argument == "bands" and "SCL" in str(err.value) and srv.requests[-1].endswith("/process")
        srv.faults.add("/api/v1/process", fail(403))
        with pytest.raises(LandCoverError) as err:
            fetch(srv, str(tmp_path / "p.tif"), threads=1)
        assert "403" in str(err.value) and "processing units" in str(err.value) and SECRET not in str(err.value)
    monkeypatch.delenv("SH_CLIENT_ID")
    with pytest.raises(LandCoverError) as err:
        make_source("sentinelhub")
    assert err.value.argument == "credentials" and "SH_CLIENT_ID" in str(err.value)
    with pytest.raises(LandCoverError) as err:  # the endpoint is gone: that is what the message points at
        fetch(srv, str(tmp_path / "p.tif"))
    assert err.value.argument == "endpoint" and "could not be reached" in str(err.value)
    assert not os.path.exists(tmp_path / "p.tif")


def test_evalscript_and_endpoints():
    script = evalscript(["B02", "CLM", "CLP"])
    assert '"B02", "CLM", "CLP", "dataMask"' in script and "s.CLP / 255" in script and "FLOAT32" in script
    assert 'units: ["REFLECTANCE", "DN", "DN", "DN"]' in script
    cdse = SentinelHubSource("cdse", credentials=("a", "b"))
    assert cdse.process_url == "https://sh.dataspace.copernicus.eu/api/v1/process"
    assert "identity.dataspace.copernicus.eu" in cdse.tokens.token_url
    assert SentinelHubSource(credentials=("a", "b")).process_url == "https://services.sentinel-hub.com/api/v1/process"
    # CDSE's Sentinel Hub lists no CLM/CLP for sentinel-2-l1c: not in its defaults; the L1C bands s2cloudless needs stay.
    assert cdse.default_bands() == ["B01", "B02", "B03", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12"]
    assert SentinelHubSource(credentials=("a", "b")).default_bands()[-2:] == ["CLM", "CLP"]


def test_large_patch_is_split_into_blocks_the_process_api_accepts(tmp_path):
    """2600 × 30 px is over the Process API's 2500 px per side (HTTP 400 from the server): two blocks, mosaicked."""
    wide = Grid(CRS.from_epsg(32633), Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 5096000.0), 2600, 30)
    with SentinelHubServer(ITEMS[2:3]) as srv:
        src = source(srv)
        out = download_patch(Patch("wide", wide), str(tmp_path / "wide.tif"), start=date(2023, 6, 4), end=date(2023, 6, 4),
                             max_cloud=50.0, bands=["B04", "CLM"], source=src)
        sizes = [(b["output"]["width"], b["output"]["height"], b["input"]["bounds"]["bbox"][0]) for b in srv.process_bodies]
        assert sizes == [(2500, 30, 400000.0), (100, 30, 425000.0)]
        # The catalogue was asked with the Accept header it wants (the server refuses others with 406).
        accepts = [json.loads(h).get("Accept") for r, h in zip(srv.requests, srv.seen_headers) if "/catalog/" in r]
        assert accepts == ["application/geo+json"]
    stack = read_stack(out.path)
    t = wide.transform
    xx, yy = np.meshgrid(t.c + 10 * (np.arange(2600) + 0.5), t.f - 10 * (np.arange(30) + 0.5))
    np.testing.assert_allclose(stack.data[0, 0], sh_value("B04", 3, xx, yy), atol=1e-6)
    np.testing.assert_array_equal(stack.data[0, 1], sh_value("CLM", 3, xx, yy))


def test_requests_refused_together_share_one_renewal():
    import requests

    from lc_plugin.sources.sentinelhub import TokenManager
    from tests.servers import TOKEN_PATH

    with SentinelHubServer(ITEMS) as srv:
        tokens = TokenManager(srv.url + TOKEN_PATH, ("test-client", SECRET), "test", FAST)
        first = tokens.token()
        srv.expire_tokens()
        refused = [requests.post(srv.url + "/api/v1/process", json={}, headers={"Authorization": f"Bearer {first}"}) for _ in range(2)]
        assert [r.status_code for r in refused] == [401, 401]
        for resp in refused:  # two threads that were refused with the same token
            assert tokens.refresh(resp)
        assert tokens.fetches == 2 and tokens.token() != first
        tokens.client.close()
