"""Every class of fault, through processing.run and (a representative few, plus signals) through the
qgis_process binary: exit code, a message that names the parameter (printed once, no traceback),
no output / partial / .aux.xml file left, inputs unchanged, no secret in any message, log line,
metadata tag or report."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.classes import make_class_table
from lc_plugin.io.rasters import Grid, TimeStack, read_stack, read_stack_info, write_class_raster, write_stack
from lc_plugin.timeseries.cloud_model import S2CLOUDLESS_BANDS
from tests.downloads import download_params
from tests.vectors import write_polygon

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "qgis-process"
SECRETS = ("pw-secret", "tok-secret")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """Input files, good and bad, in one folder that the tests check stays unchanged."""
    folder = tmp_path_factory.mktemp("inputs")
    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 64, 48)
    dates = [dt.date(2017, 1, 1), dt.date(2017, 2, 1)]
    paths = {name: str(folder / name) for name in ("stack.tif", "nan.tif", "labels.tif", "notraster.tif", "empty.tif", "truncated.tif")}
    write_stack(paths["stack.tif"], TimeStack(np.full((2, 1, 48, 64), 0.2, np.float32), dates, ["B04"], grid))
    bands = [*S2CLOUDLESS_BANDS, "SCL"]
    write_stack(paths["nan.tif"], TimeStack(np.full((2, len(bands), 48, 64), np.nan, np.float32), dates, bands, grid))
    write_class_raster(paths["labels.tif"], np.ones((48, 64), np.uint8), grid, make_class_table({1: "forest"}))
    Path(paths["notraster.tif"]).write_text("a text file named .tif\n")
    Path(paths["empty.tif"]).write_bytes(b"")
    whole = Path(paths["nan.tif"]).read_bytes()
    Path(paths["truncated.tif"]).write_bytes(whole[: len(whole) // 2])  # a download cut short
    paths["aoi"] = write_polygon(str(folder / "aoi.gpkg"), "POLYGON ((465000 5079000, 465000 5080000, 466000 5080000, 466000 5079000, 465000 5079000))")
    Path(folder / "model.bin").write_bytes(b"\x08\x07")
    paths["model.bin"] = str(folder / "model.bin")
    Path(folder / "garbage.json").write_text("{not json")
    paths["garbage.json"] = str(folder / "garbage.json")
    Path(folder / "blocker").write_text("a file where a folder should be")
    paths["blocker"] = str(folder / "blocker")
    return paths


def snapshot(folder: str) -> dict[str, str]:
    """Name → content hash of every file in ``folder`` (inputs unchanged, nothing added)."""
    return {name: hashlib.sha256(Path(folder, name).read_bytes()).hexdigest() for name in sorted(os.listdir(folder))}


# (id, algorithm, parameters ({name} = an input's path, {out} = the output folder), words the message must hold)
CASES = [
    ("number-below-minimum", "interpolate", {"INPUT": "{stack.tif}", "STEP_DAYS": 0, "OUTPUT": "{out}/i.tif"}, ["STEP_DAYS", "at least 1"]),
    (
        "number-above-maximum",
        "filterscenes",
        {"INPUT": "{stack.tif}", "MASK": "{stack.tif}", "MIN_VALID_FRACTION": 1.5, "OUTPUT": "{out}/f.tif", "OUTPUT_MASK": "{out}/m.tif"},
        ["MIN_VALID_FRACTION", "from 0 to 1"],
    ),
    (
        "negative-seed",
        "train",
        {"INPUT": ["{stack.tif}"], "REFERENCE": ["{labels.tif}"], "SEED": -1, "OUTPUT_MODEL": "{out}/m.onnx"},
        ["SEED", "at least 0"],
    ),
    ("not-a-raster", "interpolate", {"INPUT": "{notraster.tif}", "OUTPUT": "{out}/i.tif"}, ["INPUT", "not a raster"]),
    ("empty-file", "interpolate", {"INPUT": "{empty.tif}", "OUTPUT": "{out}/i.tif"}, ["INPUT", "0 bytes"]),
    ("truncated-geotiff", "cloudmasks", {"INPUT": "{truncated.tif}", "OUTPUT": "{out}/c.tif"}, ["INPUT", "truncated"]),
    ("missing-file", "validcount", {"INPUT": "{out}/nowhere.tif", "OUTPUT": "{out}/v.tif"}, ["INPUT", "does not exist"]),
    ("nan-only-interpolate", "interpolate", {"INPUT": "{nan.tif}", "OUTPUT": "{out}/i.tif"}, ["INPUT", "No valid observation"]),
    ("nan-only-cloud-masks", "cloudmasks", {"INPUT": "{nan.tif}", "METHOD": 2, "OUTPUT": "{out}/c.tif"}, ["INPUT", "no data"]),
    (
        "dates-outside-stack",
        "interpolate",
        {"INPUT": "{stack.tif}", "START_DATE": "2019-01-01", "END_DATE": "2019-12-31", "OUTPUT": "{out}/i.tif"},
        ["START_DATE", "2019-01-01", "2017-01-01 – 2017-02-01"],
    ),
    ("model-not-onnx", "classify", {"INPUT": "{stack.tif}", "MODEL": "{model.bin}", "OUTPUT": "{out}/map.tif"}, ["MODEL", ".onnx"]),
    (
        "model-output-not-onnx",
        "train",
        {"INPUT": ["{stack.tif}"], "REFERENCE": ["{labels.tif}"], "OUTPUT_MODEL": "{out}/model.bin"},
        ["OUTPUT_MODEL", ".onnx"],
    ),
    ("too-many-patches", "creategrid", {"AOI": "{aoi}", "PATCH_SIZE": 10, "MAX_PATCHES": 50, "OUTPUT": "{out}/g.gpkg"}, ["MAX_PATCHES", "100 patches"]),
    ("output-folder-not-writable", "interpolate", {"INPUT": "{stack.tif}", "OUTPUT": "{blocker}/i.tif"}, ["OUTPUT", "not a folder"]),
    (  # an OSError from the engine, mapped to the parameter whose path it names
        "run-folder-inside-a-file",
        "rungrid",
        {"GRID": "{aoi}", "START_DATE": "2017-01-01", "END_DATE": "2017-03-31", "RUN_FOLDER": "{blocker}/run"},
        ["RUN_FOLDER", "blocker/run"],
    ),
    (
        "garbage-parameters-file",
        "rungrid",
        {"GRID": "{aoi}", "PARAMETERS_FILE": "{garbage.json}", "RUN_FOLDER": "{out}/run"},
        ["PARAMETERS_FILE", "garbage.json"],
    ),
]


def fill(value, paths: dict[str, str]):
    """``value`` (parameters, a list, a string) with every ``{name}`` replaced by that path."""
    if isinstance(value, dict):
        return {k: fill(v, paths) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, paths) for v in value]
    if isinstance(value, str):
        for name, path in paths.items():
            value = value.replace("{" + name + "}", path)
    return value


@pytest.mark.parametrize(("alg", "params", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fault_through_processing_run(run_alg, inputs, tmp_path, alg, params, words):
    from qgis.core import QgsProcessingException

    folder = os.path.dirname(inputs["stack.tif"])
    before = snapshot(folder)
    with pytest.raises(QgsProcessingException) as info:
        run_alg(alg, fill(params, {**inputs, "out": str(tmp_path)}))
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert "Traceback" not in message
    assert snapshot(folder) == before  # inputs unchanged, no .aux.xml beside them
    assert os.listdir(tmp_path) == []  # no output, no partial file


# --------------------------------------------------------------------------- secrets, failed grid runs


def recorder():
    """A feedback that keeps every line (the log a user sees)."""
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self) -> None:
            super().__init__()
            self.lines: list[str] = []

        def pushInfo(self, info: str) -> None:  # noqa: N802
            self.lines.append(info)

        def reportError(self, error: str, fatalError: bool = False) -> None:  # noqa: N802, N803
            self.lines.append(error)

    return Recorder()


def run_recorded(alg: str, params: dict):
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingException

    feedback = recorder()
    try:
        return processing.run(f"landcover:{alg}", params, context=QgsProcessingContext(), feedback=feedback), feedback.lines
    except QgsProcessingException as exc:
        return exc, feedback.lines


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, text


def secret_url(url: str) -> str:
    return url.replace("http://", "http://user:pw-secret@") + "/?token=tok-secret"


@pytest.fixture(scope="module")
def demo_grid(qgis_app, demo_scene, tmp_path_factory) -> str:
    from lc_plugin.runs.grid import create_grid

    scene, _ = demo_scene
    grid = str(tmp_path_factory.mktemp("grid") / "grid.gpkg")
    create_grid(scene.aoi_path, grid, patch_px=100)
    return grid



def test_download_with_credentials_in_the_url_keeps_them_out_of_tags_and_log(qgis_app, demo_scene, demo_grid, tmp_path):
    scene, _ = demo_scene
    from demo.stac_server import StacServer

    with StacServer(scene.root) as server:
        result, lines = run_recorded("download", download_params(demo_grid, secret_url(server.url), scene.collection, str(tmp_path)))
        assert isinstance(result, dict), result
        assert server.requests[0].startswith("POST /search?token=tok-secret")  # the query survived joining "search"
    _, _, _, tags = read_stack_info(result["OUTPUT"])
    assert tags["STAC_URL"] == secret_url(server.url).replace("pw-secret", "***").replace("tok-secret", "***")
    assert_no_secret(json.dumps(tags), *lines)


def test_failed_grid_run_exits_non_zero_unless_failures_are_accepted(qgis_app, demo_scene, demo_grid, tmp_path):
    """Every patch fails (a server that is down); the report and the resumable folder are written,
    the run fails naming ALLOW_FAILURES; accepting failures ends it normally. No secret anywhere."""
    scene, _ = demo_scene
    from demo.stac_server import StacServer

    with StacServer(scene.root) as dead:
        url = secret_url(dead.url)
    run = tmp_path / "run"
    params = {
        "GRID": demo_grid, "START_DATE": "2017-01-01", "END_DATE": "2017-03-31", "STAC_URL": url,
        "COLLECTION": scene.collection, "STEP_DAYS": 30, "RUN_FOLDER": str(run),
    }  # fmt: skip
    error, lines = run_recorded("rungrid", params)
    assert not isinstance(error, dict) and "ALLOW_FAILURES" in str(error) and "patches failed" in str(error), error
    report = json.loads((run / "report.json").read_text())
    assert report["counts"]["failed"] >= 1 and report["counts"]["done"] == 0
    assert all("could not be reached" in p["error"] for p in report["patches"])
    texts = [str(error), *lines] + [p.read_text() for p in run.rglob("*") if p.is_file() and p.suffix in (".json", ".html")]
    assert_no_secret(*texts)
    accepted, _ = run_recorded("rungrid", {**params, "ALLOW_FAILURES": True})
    assert isinstance(accepted, dict) and accepted["FAILED"] == report["counts"]["failed"] and accepted["DONE"] == 0
    # parameters.json holds the URL without its secrets: a rerun from it needs the full URL in STAC_URL
    # (the same but for the secrets: a rotated token is fine).
    rerun = {"GRID": demo_grid, "PARAMETERS_FILE": str(run / "parameters.json"), "RUN_FOLDER": str(run), "ALLOW_FAILURES": True}
    error, _ = run_recorded("rungrid", rerun)
    assert not isinstance(error, dict) and str(error).startswith("STAC_URL:") and "without its credentials" in str(error), error
    again, _ = run_recorded("rungrid", {**rerun, "STAC_URL": url.replace("tok-secret", "rotated-token")})
    assert again["FAILED"] == report["counts"]["failed"]


# --------------------------------------------------------------------------- the qgis_process binary


def qgis_process(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=180, **kwargs)


# A fault caught by the parameter check (text output) and one the algorithm reports (--json): a
# qgis_process start costs ~3 s, so the other classes go through processing.run only.
BINARY_CASES = [("not-a-raster", False), ("nan-only-interpolate", True)]


@pytest.mark.parametrize(("case", "json_output"), BINARY_CASES, ids=[f"{c}-{'json' if j else 'text'}" for c, j in BINARY_CASES])
def test_fault_through_qgis_process(qgis_app, inputs, tmp_path, case, json_output):
    """Exit code 1; the message once (no duplicate, no traceback, no setapi warning); with --json the
    error on stdout as JSON and once on stderr; nothing written; inputs unchanged."""
    _, alg, params, words = next(c for c in CASES if c[0] == case)
    folder = os.path.dirname(inputs["stack.tif"])
    before = snapshot(folder)
    pairs = [f"{k}={v}" for k, v in fill(params, {**inputs, "out": str(tmp_path)}).items()]
    proc = qgis_process(*(["--json"] if json_output else []), "run", f"landcover:{alg}", "--", *pairs)
    assert proc.returncode == 1, proc.stderr
    output = proc.stdout + proc.stderr
    line = next(line for line in proc.stderr.splitlines() if words[0] + ":" in line and words[1] in line)
    message = line[line.index(words[0] + ":") :]
    assert proc.stderr.count(message) == 1, proc.stderr
    assert "Traceback" not in output and "DeprecationWarning" not in output and "ERROR 1:" not in output, output
    assert (json.loads(proc.stdout)["error"] == message) if json_output else message not in proc.stdout, proc.stdout
    assert snapshot(folder) == before and os.listdir(tmp_path) == []


def test_process_pool_ignores_a_foreign_python3_first_on_path(qgis_app, demo_scene, demo_grid, tmp_path):
    """In qgis_process sys.executable is the first python3 on PATH; a foreign one there (pyenv, conda)
    must not start the workers: every patch fails for the reason given (the server is down), not
    for a worker that could not start."""
    scene, _ = demo_scene
    from demo.stac_server import StacServer

    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'foreign python3' >&2\nexit 3\n")
    fake.chmod(0o755)
    with StacServer(scene.root) as dead:
        url = dead.url
    run = tmp_path / "run"
    params = [f"GRID={demo_grid}", "START_DATE=2017-01-01", "END_DATE=2017-03-31", f"STAC_URL={url}", f"COLLECTION={scene.collection}"]
    params += ["EXECUTOR=1", "WORKERS=1", "ALLOW_FAILURES=true", f"RUN_FOLDER={run}"]
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    proc = qgis_process("run", "landcover:rungrid", "--", *params, env=env)
    assert proc.returncode == 0 and "foreign python3" not in proc.stderr, proc.stderr[-2000:]
    patches = json.loads((run / "report.json").read_text())["patches"]
    assert patches and all("could not be reached" in p["error"] for p in patches), [p["error"] for p in patches]


@pytest.fixture(scope="module")
def undisturbed_stack(qgis_app, demo_scene, demo_grid, tmp_path_factory) -> np.ndarray:
    from demo.stac_server import StacServer

    scene, _ = demo_scene
    with StacServer(scene.root) as server:
        result, _ = run_recorded("download", download_params(demo_grid, server.url, scene.collection, str(tmp_path_factory.mktemp("reference"))))
    return read_stack(result["OUTPUT"]).data


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_a_download_and_the_rerun_gives_the_same_stack(qgis_app, demo_scene, demo_grid, undisturbed_stack, tmp_path, sig):
    """A download from a slow server is signalled once its stack is being written: it stops within
    seconds, exits non-zero, leaves no .partial file; the rerun gives the stack of an undisturbed run."""
    scene, _ = demo_scene
    from demo.stac_server import StacServer

    out = tmp_path / "stacks"
    with StacServer(scene.root, latency=0.2) as slow:
        pairs = [f"{k}={v}" for k, v in download_params(demo_grid, slow.url, scene.collection, str(out)).items()]
        proc = subprocess.Popen([str(SCRIPT), "run", "landcover:download", "--", *pairs], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(1200):  # until the temporary stack exists (at most 2 minutes)
                if out.is_dir() and any(".partial" in name for name in os.listdir(out)):
                    break
                time.sleep(0.1)
            proc.send_signal(sig)
            _, stderr = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 1 and f"Stopped by {sig.name}" in stderr, stderr
    assert not [name for name in os.listdir(out) if ".partial" in name or name.endswith(".tif")], os.listdir(out)
    with StacServer(scene.root) as server:
        again, _ = run_recorded("download", download_params(demo_grid, server.url, scene.collection, str(out)))
    assert np.array_equal(read_stack(again["OUTPUT"]).data, undisturbed_stack, equal_nan=True)
    assert sorted(os.listdir(out)) == ["465_5079.tif"]
