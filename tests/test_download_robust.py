"""What a long download needs, over real HTTP on 127.0.0.1 with injected faults: retries
(429 + Retry-After, 5xx, truncated bodies, dropped and refused connections), Planetary
Computer SAS signing, concurrency, cancel, the scene cache, resume after a killed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from osgeo import gdal

from lc_plugin.core.errors import Cancelled, LandCoverError, ServiceError
from lc_plugin.core.monitor import Monitor
from lc_plugin.io.cache import window_key
from lc_plugin.io.http import HttpClient, HttpError, RetryPolicy, retry_after_seconds
from lc_plugin.io.rasters import read_stack
from lc_plugin.runs.grid import read_patches
from lc_plugin.sources.download import download_patch, download_patches, request_key
from lc_plugin.sources.stac import StacSource
from tests.stac_faults import DROP, FaultyStacServer, fail
from tests.test_download import BANDS, COLLECTION, END, ITEMS, PATCH, START, build_scene, expected_day1, free_port, patch_centres
from tests.vectors import write_polygon

FAST = RetryPolicy(retries=4, backoff=0.02, timeout=5)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> str:
    return build_scene(str(tmp_path_factory.mktemp("scene")))


def fetch(srv: FaultyStacServer, out: str, **kwargs) -> dict:
    args = dict(start=START, end=END, stac_url=srv.url, collection=COLLECTION, bands=BANDS, policy=FAST)
    args.update(kwargs)
    return download_patch(PATCH, out, **args)


def reference(scene: str, tmp_path) -> np.ndarray:
    with FaultyStacServer(scene) as srv:
        fetch(srv, str(tmp_path / "ref.tif"), threads=1)
    return read_stack(str(tmp_path / "ref.tif")).data


# --------------------------------------------------------------------------- the HTTP layer


def test_retry_after_values():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert 0 <= retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") <= 0.0  # a date in the past: no wait
    assert RetryPolicy(backoff=1, max_delay=5).delay(0) == 1 and RetryPolicy(backoff=1, max_delay=5).delay(4) == 5


def test_429_honours_retry_after_then_500_then_success(scene):
    with FaultyStacServer(scene) as srv:
        srv.faults.add("/conformance", fail(429, "1"), fail(500), fail(503))
        client = HttpClient("test server", "stac_url", policy=FAST)
        t0 = time.monotonic()
        resp = client.request("GET", srv.url + "/conformance")
        elapsed = time.monotonic() - t0
    assert resp.status_code == 200 and client.attempts == 4
    assert 0.95 <= elapsed < 3  # the server's Retry-After (1 s), not the 0.02 s backoff


def test_truncated_and_dropped_answers_are_retried(scene):
    with FaultyStacServer(scene) as srv:
        requests.get(srv.url + "/conformance")  # the host has answered once
        srv.faults.truncate("/collections", times=2)
        srv.faults.add("/collections", DROP)
        client = HttpClient("test server", "stac_url", policy=FAST)
        data = client.get_json(srv.url + "/collections")
    assert data["collections"][0]["id"] == COLLECTION
    assert client.attempts == 4 and len(srv.faults.fired) == 3


def test_persistent_failure_says_what_and_how_often(scene):
    with FaultyStacServer(scene) as srv:
        srv.faults.add("/conformance", *[fail(502)] * 10)
        with pytest.raises(HttpError) as err:
            HttpClient("The STAC API at X", "stac_url", policy=FAST).request("GET", srv.url + "/conformance")
    assert isinstance(err.value, ServiceError) and err.value.status == 502 and err.value.argument == "stac_url"
    assert "HTTP 502" in str(err.value) and "5 attempts" in str(err.value)


def test_refused_at_first_contact_fails_fast_but_mid_run_is_retried(scene):
    url = f"http://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(HttpError) as err:
        HttpClient(f"The STAC API at {url}", "stac_url", policy=RetryPolicy(backoff=5)).request("GET", url + "/")
    assert time.monotonic() - t0 < 1 and "could not be reached" in str(err.value)

    srv = FaultyStacServer(scene).start()
    port = srv.port = int(srv.url.rsplit(":", 1)[1])
    client = HttpClient("test server", "stac_url", policy=RetryPolicy(retries=6, backoff=0.1, timeout=5))
    assert client.request("GET", srv.url + "/conformance").status_code == 200
    srv.close()  # the server goes away mid-run and comes back on the same port
    client.session.close()  # drop the kept-alive connection (its handler thread outlives close())
    restarted: list[FaultyStacServer] = []
    timer = threading.Timer(0.4, lambda: restarted.append(FaultyStacServer(scene, port=port).start()))
    timer.start()
    try:
        assert client.request("GET", f"http://127.0.0.1:{port}/conformance").status_code == 200
        assert client.attempts >= 3
    finally:
        timer.join()
        for s in restarted:
            s.close()


def test_client_errors_are_not_retried_and_secrets_redacted(scene):
    with FaultyStacServer(scene) as srv:
        srv.faults.add("/conformance", fail(403), fail(401))
        client = HttpClient("svc", "AUTHCFG", policy=FAST, secrets=lambda: ["injected"])
        with pytest.raises(HttpError) as err:
            client.request("GET", srv.url + "/conformance")
        assert err.value.status == 403 and "injected" not in str(err.value) and "***" in str(err.value)
        with pytest.raises(HttpError) as err:
            client.request(
                "GET", srv.url + "/conformance", on_status=lambda r: "the client id/secret from SH_CLIENT_ID was refused" if r.status_code == 401 else None
            )
        assert "SH_CLIENT_ID" in str(err.value) and client.attempts == 2


def test_cancel_during_backoff_acts_within_a_second(scene):
    with FaultyStacServer(scene) as srv:
        srv.faults.add("/conformance", fail(429, "30"))
        t0 = time.monotonic()
        monitor = Monitor(is_cancelled=lambda: time.monotonic() - t0 > 0.3)
        with pytest.raises(Cancelled):
            HttpClient("svc", None, policy=FAST).request("GET", srv.url + "/conformance", monitor=monitor)
    assert time.monotonic() - t0 < 1.3


# --------------------------------------------------------------------------- STAC downloads with faults


def test_search_and_cog_faults_are_survived(scene, tmp_path):
    ref = reference(scene, tmp_path)
    with FaultyStacServer(scene, page_size=1) as srv:
        srv.faults.add("/search", fail(500), fail(429, "0"))
        srv.faults.add("/cogs/S2_W_20230601/red.tif", fail(503), DROP)
        srv.faults.truncate("/cogs/S2_E_20230601/blue.tif", times=2)
        out = str(tmp_path / "p.tif")
        fetch(srv, out, threads=3)
        fired = list(srv.faults.fired)
    assert len(fired) == 6, fired
    np.testing.assert_array_equal(read_stack(out).data, ref)


def test_cog_not_found_fails_at_once(scene, tmp_path):
    with FaultyStacServer(scene) as srv:
        srv.faults.add("/cogs/S2_W_20230601/red.tif", *[fail(404)] * 20)
        t0 = time.monotonic()
        with pytest.raises(LandCoverError) as err:
            fetch(srv, str(tmp_path / "p.tif"), policy=RetryPolicy(retries=3, backoff=2))
    assert time.monotonic() - t0 < 2 and "red.tif" in str(err.value) and err.value.argument == "stac_url"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tif")]


def test_planetary_computer_signing(scene, tmp_path):
    ref = reference(scene, tmp_path)
    with FaultyStacServer(scene, sas_tokens=True) as srv:
        unsigned = StacSource(srv.url, COLLECTION, policy=FAST)
        with pytest.raises(LandCoverError) as err:
            fetch(srv, str(tmp_path / "u.tif"), source=unsigned)
        assert "403" in str(err.value)
        source = StacSource(srv.url, COLLECTION, policy=FAST, signing="planetary-computer", token_url=srv.url + "/api/sas/v1/token")
        out = str(tmp_path / "s.tif")
        fetch(srv, out, source=source, threads=2)
        assert source.signer.fetches == 1
        np.testing.assert_array_equal(read_stack(out).data, ref)
        srv.tokens.clear()  # storage stops accepting the token: one refresh, then it works
        gdal.VSICurlClearCache()  # (GDAL would otherwise answer from its in-memory copy)
        fetch(srv, str(tmp_path / "s2.tif"), source=source, threads=1, cache_dir=None)
        assert source.signer.fetches == 2
        token = srv.tokens[-1]
    tags = read_stack(out).tags
    assert token not in json.dumps(tags) and "sig=" not in json.dumps(tags)


# --------------------------------------------------------------------------- long-run behaviour


def test_concurrent_equals_serial_and_records_metadata(scene, tmp_path):
    ref = reference(scene, tmp_path)
    seen: list[float] = []
    lines: list[str] = []
    with FaultyStacServer(scene) as srv:
        fetch(srv, str(tmp_path / "c.tif"), threads=8, monitor=Monitor(seen.append, log=lines.append))
    stack = read_stack(str(tmp_path / "c.tif"))
    np.testing.assert_array_equal(stack.data, ref)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(100)
    assert len([line for line in lines if "(1/2)" in line or "(2/2)" in line]) == 2  # one line per date
    assert json.loads(stack.tags["ITEM_IDS"]) == [["S2_W_20230601", "S2_E_20230601"], ["S2_P_20230606"]]
    assert json.loads(stack.tags["CLOUD_COVER"]) == [[10.0, 20.0], [5.0]]
    # The partial scene of day 2 (x < 400500, y > 5099600) is kept, its coverage recorded.
    assert json.loads(stack.tags["DATA_COVERAGE"]) == [1.0, pytest.approx(900 / 3000, abs=1e-4)]


def test_cancel_mid_download_stops_fast_and_leaves_nothing(scene, tmp_path):
    with FaultyStacServer(scene) as srv:
        srv.faults.slow("/cogs/", 0.1)
        t0 = time.monotonic()
        progress: list[float] = []
        monitor = Monitor(progress.append, is_cancelled=lambda: time.monotonic() - t0 > 0.5)
        with pytest.raises(Cancelled):
            fetch(srv, str(tmp_path / "p.tif"), threads=2, monitor=monitor, cache_dir=str(tmp_path / "cache"))
        assert time.monotonic() - t0 < 2.5
    assert not os.path.exists(tmp_path / "p.tif")
    assert not [p for p in os.listdir(tmp_path) if "partial" in p]


def test_cache_makes_rerun_free_and_resume_skips(scene, tmp_path):
    ref = reference(scene, tmp_path)
    cache = str(tmp_path / "cache")
    with FaultyStacServer(scene) as srv:
        fetch(srv, str(tmp_path / "a.tif"), cache_dir=cache, keep_cache=True)
        first = len([r for r in srv.requests if "/cogs/" in r])
        srv.requests.clear()
        fetch(srv, str(tmp_path / "b.tif"), cache_dir=cache, keep_cache=True)
        assert not [r for r in srv.requests if "/cogs/" in r] and first > 0  # every scene from the cache
        srv.requests.clear()
        summary = fetch(srv, str(tmp_path / "b.tif"), resume=True)
        assert summary.skipped and srv.requests == []
        summary = fetch(srv, str(tmp_path / "b.tif"), resume=True, bands=["B04"])  # another request: redone
        assert not summary.skipped and read_stack(str(tmp_path / "b.tif")).bands == ["B04"]
    np.testing.assert_array_equal(read_stack(str(tmp_path / "a.tif")).data, ref)
    fetch_ok = StacSource("http://x", COLLECTION)
    assert request_key(fetch_ok, PATCH.grid, START, END, 80, BANDS) != request_key(fetch_ok, PATCH.grid, START, END, 70, BANDS)


KILL_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from lc_plugin.sources.download import download_patches
    from lc_plugin.io.http import RetryPolicy
    download_patches({grid!r}, {out!r}, start="2023-06-01", end="2023-06-30", stac_url={url!r}, collection={coll!r},
                     bands={bands!r}, threads=1, policy=RetryPolicy(retries=2, backoff=0.02))
""")


def test_resume_after_killed_run(scene, tmp_path):

    from lc_plugin.runs.grid import create_grid

    aoi = write_polygon(str(tmp_path / "aoi.gpkg"), "POLYGON((400250 5099450,400650 5099450,400650 5099650,400250 5099650,400250 5099450))")
    grid = str(tmp_path / "grid.gpkg")
    assert create_grid(aoi, grid, patch_px=30, resolution=10.0).count == 2
    out = tmp_path / "stacks"
    first, second = out / "1334_16998.tif", out / "1335_16998.tif"
    with FaultyStacServer(scene) as srv:
        srv.faults.slow("/cogs/", 0.05)
        script = KILL_SCRIPT.format(root=str(ROOT), grid=grid, out=str(out), url=srv.url, coll=COLLECTION, bands=BANDS)
        # GDAL would serve the second patch's windows from the tiles the first one fetched (same COGs), finishing it
        # in milliseconds; with its /vsicurl/ block cache off every read waits for the slow server and can be caught
        env = {**os.environ, "CPL_VSIL_CURL_NON_CACHED": "/vsicurl/" + srv.url}
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        try:
            deadline = time.monotonic() + 30
            cache = out / ".lc_cache"
            while time.monotonic() < deadline and proc.poll() is None:
                if first.exists() and cache.exists() and any(p.name.startswith("1335_16998__") and p.name.endswith(".npy") for p in cache.iterdir()):
                    break
                time.sleep(0.02)
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(10)
        assert first.exists() and not second.exists()
        assert [p for p in os.listdir(out) if ".partial" in p]  # the killed run's temporary stack
        signature = StacSource(srv.url, COLLECTION).signature()
        patch2 = read_patches(grid, ["1335_16998"])[0]
        cached = [i for i in ITEMS if (out / ".lc_cache" / f"1335_16998__{window_key(signature, i, patch2.grid, BANDS)}.npy").exists()]
        assert cached
        gdal.VSICurlClearCache()
        srv.requests.clear()
        lines: list[str] = []
        paths = download_patches(
            grid, str(out), start=START, end=END, stac_url=srv.url, collection=COLLECTION, bands=BANDS, monitor=Monitor(log=lines.append), policy=FAST
        )
        cog_reads = [r for r in srv.requests if r.startswith("GET /cogs/")]
        search_posts = [r for r in srv.requests if "/search" in r]
    assert any("1334_16998: complete stack found, skipped" in line for line in lines)
    assert len(search_posts) == 1  # only the unfinished patch was searched again
    assert not [p for p in os.listdir(out) if ".partial" in p] and not (out / ".lc_cache").exists()
    assert not [r for r in cog_reads if any(f"/{i}/" in r for i in cached)]  # cached scenes: no network
    with FaultyStacServer(scene) as srv:
        clean = download_patches(grid, str(tmp_path / "clean"), start=START, end=END, stac_url=srv.url, collection=COLLECTION, bands=BANDS, cache_dir=None)
    for a, b in zip(paths, clean):
        np.testing.assert_array_equal(read_stack(a).data, read_stack(b).data)
    stack = read_stack(paths[1])
    xx, yy = patch_centres(stack.grid)
    np.testing.assert_allclose(stack.data[0, 1], expected_day1("B04", xx, yy), atol=1e-6)


def test_presets(monkeypatch):
    from lc_plugin.sources.download import make_source

    pc = make_source("stac", preset="planetary-computer")
    assert pc.url == "https://planetarycomputer.microsoft.com/api/stac/v1" and pc.signer is not None
    es = make_source("stac", preset="earth-search")
    assert es.collection == "sentinel-2-l2a" and es.gdal_config == {"AWS_NO_SIGN_REQUEST": "YES"} and es.signer is None
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    with pytest.raises(LandCoverError) as err:
        make_source("stac", preset="cdse")
    assert err.value.argument == "preset" and "AWS_ACCESS_KEY_ID" in str(err.value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    cdse = make_source("stac", preset="cdse")
    assert cdse.url == "https://stac.dataspace.copernicus.eu/v1" and cdse.gdal_config["AWS_S3_ENDPOINT"] == "eodata.dataspace.copernicus.eu"
    assert "s" not in cdse.tags().values()
    with pytest.raises(LandCoverError) as err:
        make_source("stac", preset="nope")
    assert err.value.argument == "preset"
    with pytest.raises(LandCoverError) as err:
        make_source("ftp")
    assert err.value.argument == "source"
    for source in (pc, es, cdse):
        source.close()


def test_cancel_does_not_wait_for_a_hanging_request(scene, tmp_path):
    with FaultyStacServer(scene) as srv:
        srv.faults.slow("/cogs/", 3.0, times=4)
        t0 = time.monotonic()
        monitor = Monitor(is_cancelled=lambda: time.monotonic() - t0 > 0.3)
        with pytest.raises(Cancelled):
            fetch(srv, str(tmp_path / "p.tif"), threads=2, monitor=monitor)
        assert time.monotonic() - t0 < 2.2  # 0.3 s + a poll + IN_FLIGHT_GRACE_S, well short of the 3 s request
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tif")]
