"""The chain over a grid: executors agree, failures are isolated, runs resume, the mosaic holds the patches."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace

import numpy as np
import pytest
from osgeo import gdal

from lc_plugin import runs
from lc_plugin.core.errors import LandCoverError
from lc_plugin.runs.batch import BatchParameters, run_batch

gdal.UseExceptions()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Demo scene served over HTTP, a 12-patch grid (40 px) and a model trained on the whole demo patch."""
    from demo.grid_run import grid_run_parameters
    from demo.scene import build_scene
    from tests.stac_faults import FaultyStacServer

    tmp = tmp_path_factory.mktemp("batch")
    scene = build_scene(str(tmp / "scene"))
    start, end = scene.start, scene.start.replace(month=5, day=31)  # five months keep the test fast
    with FaultyStacServer(scene.root) as server:
        params, count = grid_run_parameters(scene, server.url, str(tmp), 40, start, end, min_valid_fraction=0.5)
        assert count >= 8
        reference_run = run_batch(params, str(tmp / "sequential"))
        yield tmp, params, reference_run, server


def _array(path: str) -> np.ndarray:
    ds = gdal.Open(path)
    return ds.ReadAsArray()


def _maps(run_folder: str, ids: list[str]) -> dict[str, np.ndarray]:
    return {pid: _array(os.path.join(run_folder, pid, "landcover.tif")) for pid in ids}


def test_sequential_run_writes_patches_mosaic_and_report(setup):
    tmp, params, result, _ = setup
    assert len(result.records) >= 8 and not result.failed
    assert {r["status"] for r in result.records} == {"done"}
    assert BatchParameters.load(os.path.join(result.run_folder, "parameters.json")) == params
    report = json.load(open(result.report_json, encoding="utf-8"))
    assert report["counts"]["done"] == len(result.records) and report["versions"]["numpy"]
    assert os.path.isfile(os.path.join(result.run_folder, "workflow.png"))
    assert "Land-cover run" in open(result.report_html, encoding="utf-8").read()
    maps = _maps(result.run_folder, result.done)
    assert len({m.tobytes() for m in maps.values()}) > 1  # patches differ
    assert all((m > 0).any() for m in maps.values())


def test_mosaic_pixels_equal_the_patch_pixels(setup):
    _, _, result, _ = setup
    cog = gdal.Open(os.path.join(result.run_folder, "landcover_cog.tif"))
    cgt = cog.GetGeoTransform()
    mosaic = cog.ReadAsArray()
    rng = np.random.default_rng(0)
    for pid in result.done:
        ds = gdal.Open(os.path.join(result.run_folder, pid, "landcover.tif"))
        gt, data = ds.GetGeoTransform(), ds.ReadAsArray()
        for r, c in rng.integers(0, data.shape, size=(5, 2)):
            x, y = gt[0] + (c + 0.5) * gt[1], gt[3] + (r + 0.5) * gt[5]
            mc, mr = int((x - cgt[0]) / cgt[1]), int((y - cgt[3]) / cgt[5])
            assert mosaic[mr, mc] == data[r, c], (pid, r, c)


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_parallel_executors_match_sequential(setup, executor):
    tmp, params, reference, _ = setup
    result = run_batch(params, str(tmp / executor), executor=executor, workers=2)
    assert result.done == reference.done and not result.failed
    expected, got = _maps(reference.run_folder, reference.done), _maps(result.run_folder, result.done)
    for pid in expected:
        np.testing.assert_array_equal(got[pid], expected[pid])
    np.testing.assert_array_equal(_array(os.path.join(result.run_folder, "landcover_cog.tif")), _array(os.path.join(reference.run_folder, "landcover_cog.tif")))


_SIDECARS = (".json", ".qml", ".aux.xml")  # markers, progress, a class map's style


def test_one_pass_equals_the_separate_steps_and_writes_no_intermediate(setup):
    """The default run (one pass per patch) against KEEP_INTERMEDIATES (the separate steps, their files kept)."""
    tmp, params, reference, _ = setup
    ids = reference.done[:3]
    result = run_batch(replace(params, patch_ids=ids, keep_intermediates=True), str(tmp / "steps"))
    assert result.done == ids
    for pid, expected in _maps(reference.run_folder, ids).items():
        np.testing.assert_array_equal(_array(str(tmp / "steps" / pid / "landcover.tif")), expected)
        kept = sorted(p for p in os.listdir(tmp / "steps" / pid) if not p.endswith(_SIDECARS))
        assert kept == ["clm.tif", "filtered.vrt", "filtered_clm.vrt", "interpolated.tif", "landcover.tif", "reference.tif", "stack.tif"]
        written = sorted(p for p in os.listdir(os.path.join(reference.run_folder, pid)) if not p.endswith(_SIDECARS))
        assert written == ["landcover.tif", "reference.tif", "stack.tif"]


def test_failing_patch_is_reported_and_the_rest_complete(setup):
    tmp, params, reference, _ = setup
    run = tmp / "failing"
    shutil.copytree(reference.run_folder, run)
    ids = reference.done
    bad = ids[3]
    for pid in ids:  # force a fresh run of every patch (stacks are kept, so downloads resume)
        os.remove(run / pid / runs.DONE_MARKER)
    shutil.rmtree(run / bad)
    (run / bad).write_text("a file where the patch folder should be")
    result = run_batch(params, str(run), executor="processes", workers=2)
    assert result.failed == [bad] and len(result.done) == len(ids) - 1
    report = json.load(open(result.report_json, encoding="utf-8"))
    failed = [p for p in report["patches"] if p["status"] == "failed"]
    assert failed[0]["patch"] == bad and "Traceback" in failed[0]["traceback"] and failed[0]["error"]
    assert report["counts"]["failed"] == 1 and bad in open(result.report_html, encoding="utf-8").read()
    # fixed and rerun: only the failed patch runs again
    (run / bad).unlink()
    again = run_batch(params, str(run))
    statuses = {r["patch"]: r["status"] for r in again.records}
    assert statuses[bad] == "done" and sum(s == "skipped" for s in statuses.values()) == len(ids) - 1


def test_interrupted_run_resumes_with_the_same_result(setup):
    tmp, params, reference, _ = setup
    run = tmp / "resume"
    shutil.copytree(reference.run_folder, run)
    ids = reference.done
    redo = ids[::3]
    for pid in redo:  # interrupted midway: some markers never written, one patch's map half-written
        os.remove(run / pid / runs.DONE_MARKER)
    os.remove(run / ids[1] / "landcover.tif")
    for name in ("landcover_cog.tif", "landcover.vrt", "report.json"):
        os.remove(run / name)
    result = run_batch(params, str(run), executor="processes", workers=2)
    statuses = {r["patch"]: r["status"] for r in result.records}
    assert sorted(p for p, s in statuses.items() if s == "done") == sorted(set(redo) | {ids[1]})
    assert all(statuses[p] == "skipped" for p in ids if p not in redo and p != ids[1])
    for pid, expected in _maps(reference.run_folder, ids).items():
        np.testing.assert_array_equal(_array(str(run / pid / "landcover.tif")), expected)
    np.testing.assert_array_equal(_array(str(run / "landcover_cog.tif")), _array(os.path.join(reference.run_folder, "landcover_cog.tif")))


def test_changed_parameters_redo_every_patch_and_bad_settings_name_the_parameter(setup, tmp_path):
    _, params, reference, _ = setup
    assert replace(params, min_valid_fraction=0.6).digest() != params.digest()
    assert not runs.is_done(os.path.join(reference.run_folder, reference.done[0]), replace(params, step_days=20).digest())
    with pytest.raises(LandCoverError) as err:
        run_batch(params, str(tmp_path), executor="spark")
    assert err.value.argument == "executor"
    with pytest.raises(LandCoverError) as err:
        run_batch(replace(params, model=str(tmp_path / "none.onnx")), str(tmp_path))
    assert err.value.argument == "model"


def test_killed_run_resumes_with_the_same_result(setup):
    """A run process killed after a few patches: the rerun skips those and finishes identically."""
    import subprocess
    import sys
    import time

    tmp, params, reference, _ = setup
    run = tmp / "killed"
    run.mkdir()
    params.save(str(tmp / "killed.json"))
    code = (
        "import sys; sys.path.insert(0, sys.argv[3]);"
        "from lc_plugin.runs.batch import BatchParameters, run_batch;"
        "run_batch(BatchParameters.load(sys.argv[1]), sys.argv[2])"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp / "killed.json"), str(run), root])
    deadline = time.time() + 60
    try:
        while time.time() < deadline and proc.poll() is None:
            if sum((run / pid / runs.DONE_MARKER).exists() for pid in reference.done) >= 3:
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    before = {pid for pid in reference.done if (run / pid / runs.DONE_MARKER).exists()}
    assert 3 <= len(before) < len(reference.done) and not (run / "report.json").exists()
    result = run_batch(params, str(run), executor="processes", workers=2)
    statuses = {r["patch"]: r["status"] for r in result.records}
    assert {p for p, s in statuses.items() if s == "skipped"} == before
    assert {p for p, s in statuses.items() if s == "done"} == set(reference.done) - before
    for pid, expected in _maps(reference.run_folder, reference.done).items():
        np.testing.assert_array_equal(_array(str(run / pid / "landcover.tif")), expected)
    np.testing.assert_array_equal(_array(str(run / "landcover_cog.tif")), _array(os.path.join(reference.run_folder, "landcover_cog.tif")))


class Recorder:
    """A Monitor's callbacks that keep what the run reports; cancels once ``cancel_when`` is true."""

    def __init__(self, cancel_when=None) -> None:
        self.lines: list[str] = []
        self.percents: list[float] = []
        self.cancel_when = cancel_when

    def monitor(self):
        from lc_plugin.core.monitor import Monitor

        return Monitor(self.percents.append, lambda: bool(self.cancel_when and self.cancel_when(self)), self.lines.append)


def test_workers_report_each_step_to_the_run(setup):
    tmp, params, reference, _ = setup
    ids = reference.done[:4]
    rec = Recorder()
    run_batch(replace(params, patch_ids=ids), str(tmp / "progress"), executor="processes", workers=2, monitor=rec.monitor())
    for pid in ids:  # step lines written by the worker processes reach the run's log
        for step in ("download", "reference", runs.ONE_PASS_STEP):
            assert f"Patch {pid}: {step}" in rec.lines, (pid, step)
    assert rec.percents == sorted(rec.percents) and rec.percents[-1] == 100.0
    within = {round(p, 1) for p in rec.percents if 0 < p < 90}
    assert len(within) > len(ids), "progress must move within patches, not only when one finishes"


def test_cancel_stops_running_workers_and_leaves_no_partial_file(setup):
    import time

    from lc_plugin.core.errors import Cancelled
    from lc_plugin.runs import runstate

    tmp, params, reference, server = setup
    ids = reference.done[:4]
    run = tmp / "cancelled"
    server.faults.slow("/cogs/", 0.2, times=10_000)  # every COG read is slow: downloads run for a while
    try:
        rec = Recorder(cancel_when=lambda r: sum(": download" in line for line in r.lines) >= 2)
        started = time.time()
        with pytest.raises(Cancelled):
            run_batch(replace(params, patch_ids=ids), str(run), executor="processes", workers=2, monitor=rec.monitor())
        assert time.time() - started < 30
    finally:
        server.faults.clear()
    assert runstate.cancel_requested(str(run))
    leftovers = [p for p in run.rglob("*") if p.is_file() and (".tmp" in p.name or ".partial" in p.name or p.name == runs.DONE_MARKER)]
    assert not leftovers, leftovers
    # the next run clears the cancel request and completes with the uninterrupted result
    result = run_batch(replace(params, patch_ids=ids), str(run), executor="processes", workers=2)
    assert result.done == ids and not runstate.cancel_requested(str(run))
    for pid, expected in _maps(reference.run_folder, ids).items():
        np.testing.assert_array_equal(_array(str(run / pid / "landcover.tif")), expected)


def test_prepare_train_on_the_grid_then_classify_reuses_the_patches(setup):
    from lc_plugin.ml.classify import classify_file
    from lc_plugin.ml.train import train_classifier

    tmp, params, reference, _ = setup
    ids = reference.done[:6]
    run = tmp / "two-phase"
    prepared = run_batch(replace(params, model=None, patch_ids=ids), str(run), executor="processes", workers=2)
    assert prepared.done == ids and prepared.mosaic is None
    assert not any((run / pid / "landcover.tif").exists() for pid in ids)
    stacks, refs = runs.training_pairs(str(run))
    assert stacks == [str(run / pid / "interpolated.tif") for pid in sorted(ids)]
    model = str(tmp / "grid_model.onnx")
    summary = train_classifier(stacks, refs, model, n_estimators=10, samples_per_class=200, drop_empty_classes=True)
    assert summary.n_train > 0
    result = run_batch(replace(params, model=model, patch_ids=ids), str(run))
    assert result.done == ids and result.mosaic is not None
    for record in result.records:  # only the classification ran again
        assert record.get("reused_preparation") and list(record["steps"]) == ["classify"]
    check = str(tmp / "check.tif")
    classify_file(model, stacks[0], check)
    np.testing.assert_array_equal(_array(check), _array(stacks[0].replace("interpolated.tif", "landcover.tif")))
    with pytest.raises(LandCoverError) as err:
        runs.training_pairs(str(tmp / "no-such-run"))
    assert err.value.argument == "run_folder"


def test_remote_dask_scheduler_runs_the_grid(setup):
    """A scheduler and a worker in their own processes (as on a cluster), reached by address."""
    import socket
    import subprocess
    import sys
    import time

    tmp, params, reference, _ = setup
    ids = reference.done[:3]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
        env=env, cwd=str(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        result = run_batch(replace(params, patch_ids=ids), str(tmp / "remote"), executor="dask", scheduler=address)
    finally:
        for proc in (worker, scheduler):
            proc.terminate()
            proc.wait(timeout=30)
    assert result.done == ids and not result.failed
    assert all(r["worker"].split(":")[1] != str(os.getpid()) for r in result.records)
    for pid, expected in _maps(reference.run_folder, ids).items():
        np.testing.assert_array_equal(_array(str(tmp / "remote" / pid / "landcover.tif")), expected)
