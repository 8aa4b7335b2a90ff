"""Faults handled in the engine: secrets masked, URLs joined with their query, one deadline for a
hanging server, a killed run's leftovers swept, workers on QGIS's own Python, garbage parameter
files, too many patches, interpolation outside the observed dates."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import sys
import threading

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from demo.stac_server import StacServer
from lc_plugin import runs
from lc_plugin.core.atomic import atomic_directory, atomic_output, remove_leftovers
from lc_plugin.core.errors import LandCoverError
from lc_plugin.core.redaction import join_url, redact_text, redact_url
from lc_plugin.io.http import HttpClient, HttpError, RetryPolicy
from lc_plugin.io.rasters import Grid, TimeStack, write_stack
from lc_plugin.runs import executors, run_report
from lc_plugin.runs.grid import create_grid
from lc_plugin.sources.stac_search import search_items
from lc_plugin.timeseries.interpolate import GRID_EDGE_DAYS, interpolate_file
from tests.test_download import COLLECTION, END, START, build_scene
from tests.vectors import write_polygon

# --------------------------------------------------------------------------- secrets and URLs


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://user:pw-secret@host/v1", "https://user:***@host/v1"),
        ("https://tok-secret@host/v1", "https://***@host/v1"),
        ("https://host/v1?token=tok-secret&collections=s2", "https://host/v1?token=***&collections=s2"),
        # An Azure SAS (Planetary Computer) and an AWS presigned URL: only the signatures are secret.
        ("https://a.blob.core.windows.net/c/x.tif?st=2023&se=2024&sig=abc%2Fdef", "https://a.blob.core.windows.net/c/x.tif?st=2023&se=2024&sig=***"),
        ("https://b.s3.amazonaws.com/x.tif?X-Amz-Credential=AK&X-Amz-Signature=ff", "https://b.s3.amazonaws.com/x.tif?X-Amz-Credential=***&X-Amz-Signature=***"),
        ("https://earth-search.aws.element84.com/v1", "https://earth-search.aws.element84.com/v1"),
    ],
)
def test_redact_url(url, redacted):
    assert redact_url(url) == redacted


def test_redact_text_masks_urls_and_bare_queries():
    text = "HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: /search?api_key=k-secret&limit=5 (GET https://u:p-secret@h/x)"
    assert redact_text(text) == "HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: /search?api_key=***&limit=5 (GET https://u:***@h/x)"


@pytest.mark.parametrize(
    ("base", "joined"),
    [
        ("https://host/?token=x", "https://host/search?token=x"),
        ("https://host/v1/", "https://host/v1/search"),
        ("https://host/v1?a=1&b=2", "https://host/v1/search?a=1&b=2"),
    ],
)
def test_join_url_keeps_the_query(base, joined):
    assert join_url(base, "search") == joined


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> str:
    return build_scene(str(tmp_path_factory.mktemp("scene")))


def test_search_with_token_url_posts_to_search_with_the_token(scene):
    with StacServer(scene) as srv:
        items = search_items(f"{srv.url}/?token=tok-secret", COLLECTION, (-180.0, -90.0, 180.0, 90.0), START, END, 100.0)
        assert items and srv.requests[0].startswith("POST /search?token=tok-secret")


def test_http_error_never_shows_the_secret():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    url = f"http://user:pw-secret@127.0.0.1:{port}/search?token=tok-secret"
    with pytest.raises(HttpError) as info:
        HttpClient(f"The STAC API at {url}", "STAC_URL", policy=RetryPolicy(retries=0)).request("GET", url)
    message = str(info.value)
    assert "could not be reached" in message and "pw-secret" not in message and "tok-secret" not in message, message


def test_hanging_server_gets_one_overall_deadline():
    """A server that accepts and never answers: the deadline (1 s) ends the retries, not
    (retries + 1) x timeout; counted in attempts, not timed."""
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)
    accepted: list[socket.socket] = []

    def accept_and_say_nothing() -> None:
        with contextlib.suppress(OSError):  # ends when the socket is closed
            while True:
                accepted.append(hang.accept()[0])

    threading.Thread(target=accept_and_say_nothing, daemon=True).start()
    url = f"http://127.0.0.1:{hang.getsockname()[1]}/search"
    client = HttpClient("The STAC API", "STAC_URL", policy=RetryPolicy(retries=50, backoff=0.01, max_delay=0.01, timeout=0.3, deadline=1.0))
    try:
        with pytest.raises(HttpError, match="overall deadline of 1 s") as info:
            client.request("GET", url)
    finally:
        hang.close()
        for conn in accepted:
            conn.close()
    assert "STAC_URL" == info.value.argument and 2 <= client.attempts <= 5, client.attempts


# --------------------------------------------------------------------------- files


def test_killed_run_leftovers_are_swept_by_the_next_write(tmp_path):
    out = tmp_path / "map.tif"
    stale = [tmp_path / ".map.0123abcd.partial.tif", tmp_path / ".map.0123abcd.partial.tif.aux.xml"]
    for path in stale:
        path.write_text("half")
    other = tmp_path / ".mapx.0123abcd.partial.tif"  # another output's: kept
    other.write_text("half")
    with atomic_output(str(out)) as tmp:
        with open(tmp, "w") as f:
            f.write("whole")
    assert out.read_text() == "whole" and not any(p.exists() for p in stale) and other.exists()
    store = tmp_path / "tiles.zarr"
    (tmp_path / ".tiles.89abcdef.partial.zarr").mkdir()
    with atomic_directory(str(store)) as tmp:
        open(os.path.join(tmp, "a"), "w").close()
    assert sorted(os.listdir(tmp_path)) == [".mapx.0123abcd.partial.tif", "map.tif", "tiles.zarr"]
    assert remove_leftovers(str(out)) == []


@pytest.mark.parametrize(("where", "words"), [("blocker/out.tif", "is a file, not a folder"), ("blocker/sub/out.tif", "cannot be written")])
def test_output_folder_that_cannot_be_written_is_named(tmp_path, where, words):
    """(A read-only folder gives the second message too, but the tests run as root, who may write anywhere.)"""
    (tmp_path / "blocker").write_text("not a folder")
    with pytest.raises(LandCoverError, match=words) as info:
        with atomic_output(str(tmp_path / where)):
            pass
    assert str(tmp_path / where) in str(info.value) and sorted(os.listdir(tmp_path)) == ["blocker"]


# --------------------------------------------------------------------------- grid runs


def test_workers_use_the_running_python_not_the_first_python3_on_path(tmp_path, monkeypatch):
    """Inside qgis_process (QGIS 3.22, Debian) sys.executable is the first python3 on PATH; a foreign one
    there (pyenv, conda) must not start the workers. Same for a QGIS binary as sys.executable."""
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'foreign python' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(sys, "executable", "/usr/bin/qgis_process.bin")
    python = executors.python_executable()
    assert python.startswith(sys.prefix) and os.path.basename(python) == f"python{sys.version_info.major}.{sys.version_info.minor}"
    monkeypatch.setattr(sys, "executable", str(fake))
    assert executors.python_executable() == python
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=executors.spawn_context()) as pool:  # a worker that must import numpy
        assert pool.submit(np.sqrt, 4.0).result() == 2.0


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", ["Cannot read"]),
        ("[1, 2]", ["holds a list"]),
        ('{"grid": "g", "start": "2017-01-01", "end": "2017-12-31", "colour": 1}', ["Unknown entries", "colour"]),
        ('{"grid": "g", "start": "2017-01-01", "end": "2017-12-31", "bands": "B04"}', ["bands", "expected a list"]),
    ],
)
def test_garbage_parameters_file_names_parameters_file(tmp_path, content, words):
    path = tmp_path / "parameters.json"
    path.write_text(content)
    with pytest.raises(LandCoverError) as info:
        runs.BatchParameters.load(str(path))
    assert info.value.argument == "parameters_file"
    for word in words:
        assert word in str(info.value), str(info.value)


def test_parameters_and_report_hold_no_secret(tmp_path):
    params = runs.BatchParameters(grid="g.gpkg", start="2017-01-01", end="2017-12-31", stac_url="https://u:pw-secret@h/v1?token=tok-secret")
    params.save(str(tmp_path / "parameters.json"))
    record = executors.failed_record("1_2", OSError(f"cannot open {params.stac_url}/search"))
    run_report.write_report(str(tmp_path), params, [record], None, executor="sequential", workers=1, wall_s=1.0)
    for name in ("parameters.json", "report.json", "report.html"):
        text = (tmp_path / name).read_text()
        assert "pw-secret" not in text and "tok-secret" not in text and "h/v1" in text, name
    saved = runs.BatchParameters.load(str(tmp_path / "parameters.json"))
    assert saved.stac_url == "https://u:***@h/v1?token=***" and saved.digest() == params.digest()  # a rotated token resumes


# --------------------------------------------------------------------------- grid size, dates


def test_too_many_patches_refused_before_writing(tmp_path):
    aoi = write_polygon(str(tmp_path / "aoi.gpkg"), "POLYGON ((400000 5000000, 400000 5100000, 500000 5100000, 500000 5000000, 400000 5000000))")
    out = tmp_path / "grid.gpkg"
    with pytest.raises(LandCoverError) as info:
        create_grid(aoi, str(out), patch_px=100, resolution=10.0, max_patches=9_999)  # 100 x 100 patches of 1 km
    assert info.value.argument == "max_patches" and "10,000 patches" in str(info.value), str(info.value)
    assert os.listdir(tmp_path) == ["aoi.gpkg"]
    # A thin diagonal AOI: small area, large bounding box; counted row by row.
    diagonal = write_polygon(str(tmp_path / "d.gpkg"), "POLYGON ((400000 5000000, 400100 5000000, 500000 5099900, 500000 5100000, 400000 5000000))")
    with pytest.raises(LandCoverError, match="more than") as info:
        create_grid(diagonal, str(out), patch_px=100, resolution=10.0, max_patches=150)
    assert info.value.argument == "max_patches" and not out.exists()
    assert create_grid(diagonal, str(out), patch_px=100, resolution=10.0, max_patches=10_000).count == 199
    # = the 1 km cells on the diagonal y = x plus the 99 below it that the band x - 0.1 km < y < x enters.


def small_stack(path: str, dates: list[dt.date]) -> str:
    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 4, 3)
    data = np.arange(len(dates) * 12, dtype=np.float32).reshape(len(dates), 1, 3, 4) / 100
    write_stack(path, TimeStack(data, dates, ["B04"], grid))
    return path


@pytest.mark.parametrize(
    ("start", "end", "parameter"),
    [
        (dt.date(2019, 1, 1), dt.date(2019, 12, 31), "start"),  # a 2017 stack onto 2019 dates
        (dt.date(2016, 11, 1), dt.date(2017, 6, 1), "start"),
        (dt.date(2017, 3, 1), dt.date(2017, 9, 1), "end"),
    ],
)
def test_interpolation_outside_the_observed_dates_is_refused(tmp_path, start, end, parameter):
    stack = small_stack(str(tmp_path / "s.tif"), [dt.date(2017, 3, 1), dt.date(2017, 5, 1), dt.date(2017, 7, 1)])
    out = tmp_path / "i.tif"
    with pytest.raises(LandCoverError) as info:
        interpolate_file(stack, str(out), step_days=16, start=start, end=end)
    message = str(info.value)
    assert info.value.argument == parameter and "2017-03-01 – 2017-07-01" in message and start.isoformat() in message, message
    assert sorted(os.listdir(tmp_path)) == ["s.tif"]


def test_interpolation_within_one_step_of_the_observations_is_kept(tmp_path):
    stack = small_stack(str(tmp_path / "s.tif"), [dt.date(2017, 3, 1), dt.date(2017, 5, 1), dt.date(2017, 7, 1)])
    dates = interpolate_file(stack, str(tmp_path / "i.tif"), step_days=16, start=dt.date(2017, 2, 13), end=dt.date(2017, 7, 17)).dates
    assert dates[0] == dt.date(2017, 2, 13) and dates[-1] == dt.date(2017, 7, 7)  # Feb 13 = Mar 1 - 16 days
    dates = interpolate_file(stack, str(tmp_path / "j.tif"), step_days=16, start=dt.date(2017, 7, 1), end=dt.date(2017, 7, 17)).dates
    assert dates == [dt.date(2017, 7, 1), dt.date(2017, 7, 17)]  # Jul 17 = Jul 1 + 16 days


def test_grid_runs_allow_a_season_at_the_edges_but_not_another_year(tmp_path):
    """A grid run's shared date grid may start a season before a patch's first clear scene
    (``GRID_EDGE_DAYS``): a cloudy January must not fail the patch; a 2017 stack still never gets 2019."""
    stack = small_stack(str(tmp_path / "s.tif"), [dt.date(2017, 3, 1), dt.date(2017, 5, 1), dt.date(2017, 7, 1)])
    dates = interpolate_file(stack, str(tmp_path / "i.tif"), step_days=16, start=dt.date(2017, 1, 1), end=dt.date(2017, 9, 30), edge_days=GRID_EDGE_DAYS).dates
    assert dates[0] == dt.date(2017, 1, 1) and dates[-1] == dt.date(2017, 9, 30)  # Jan 1 + 17 × 16 days, before Jul 1 + 92 days
    with pytest.raises(LandCoverError, match=r"the allowed edge \(92 days\)") as info:
        interpolate_file(stack, str(tmp_path / "j.tif"), step_days=16, start=dt.date(2019, 1, 1), end=dt.date(2019, 12, 31), edge_days=GRID_EDGE_DAYS)
    assert info.value.argument == "start" and not (tmp_path / "j.tif").exists()
