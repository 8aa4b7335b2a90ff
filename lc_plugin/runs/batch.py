"""Run the per-patch chain over a whole grid: resumable, in parallel, locally or on Dask.

Each patch is independent: ``process_patch`` runs download → cloud mask → filter →
interpolate → (rasterize reference) → classify into ``<run_folder>/<patch_id>/`` and writes a
done marker (``done.json``: outputs, duration, parameters hash). ``run_batch`` skips patches
whose marker matches the parameters, runs the others with the chosen executor (a patch that
raises is recorded with its traceback and the others go on), mosaics the class maps and writes
``report.json`` + ``report.html``. Rerunning the same run folder resumes.

With a pixel model the patch runs in one pass after its download (``fused.classify_stack``: no
cloud-mask, filtered or interpolated stack is written, and the class map is the one the separate
steps would write); ``keep_intermediates`` runs the separate steps instead, keeping their files
(the filtered stack as a VRT of the downloaded one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

from ..core.errors import Cancelled, LandCoverError
from ..core.monitor import Monitor
from ..core.redaction import redact_text, redact_url
from ..io.mosaic import MosaicResult
from ..timeseries.clouds import DEFAULT_PROCESSING_RESOLUTION
from . import runstate
from .run_page import run_page

EXECUTORS = ["sequential", "processes", "dask"]
DONE_MARKER = "done.json"
PREPARED_MARKER = "prepared.json"
PARAMETERS_FILE = "parameters.json"
PARAMETERS_PARAMETER = "PARAMETERS_FILE"  # the Processing parameter that names such a file
STEPS = ["download", "cloud mask", "filter", "interpolate", "reference", "classify"]
CLOUD_METHODS = ["auto", "s2cloudless", "scl"]
ONE_PASS_STEP = "cloud mask → filter → interpolate → classify (one pass)"
# Patch selection, threads and which intermediate files are kept do not change a patch's results.
_NOT_IN_DIGEST = ("patch_ids", "download_threads", "keep_intermediates")


@dataclass
class BatchParameters:
    """Everything that decides a patch's outputs (saved as ``parameters.json`` in the run folder)."""

    grid: str
    start: str
    end: str
    model: str | None = None
    stac_url: str = "https://earth-search.aws.element84.com/v1"
    collection: str = "sentinel-2-l2a"
    bands: list[str] = field(default_factory=lambda: ["B02", "B03", "B04", "B08", "B11", "B12", "SCL"])
    max_cloud: float = 80.0
    cloud_method: str = "auto"
    min_valid_fraction: float = 0.8
    step_days: int = 16
    reference: str | None = None
    reference_field: str | None = None
    reference_zero: str = "refuse"  # class id 0 in the field (reference.ClassOptions.zero)
    reference_legend: str = "none"  # a built-in legend chosen for the reference (legends.LEGEND_CHOICES)
    erosion_px: int = 0
    grid_layer: str | None = None
    patch_ids: list[str] | None = None
    download_threads: int = 4
    cloud_resolution: float = DEFAULT_PROCESSING_RESOLUTION
    keep_intermediates: bool = False

    def public(self) -> dict:
        """The parameters as files and reports show them: the STAC URL without its secrets."""
        return {**asdict(self), "stac_url": redact_url(self.stac_url)}

    def to_json(self) -> str:
        return json.dumps(self.public(), indent=2, sort_keys=True)

    def digest(self) -> str:
        """Hash of what decides the outputs (patch selection, threads and kept intermediate files excluded; a
        rotated token in the STAC URL reads the same scenes, so the hash sees the redacted URL)."""
        return _hash({k: v for k, v in self.public().items() if k not in _NOT_IN_DIGEST})

    def prepare_digest(self) -> str:
        """Hash of what decides a patch's stacks and reference (the model excluded)."""
        return _hash({k: v for k, v in self.public().items() if k not in (*_NOT_IN_DIGEST, "model")})

    def save(self, path: str) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> BatchParameters:
        """Parameters from a JSON file (e.g. a previous run's ``parameters.json``)."""
        expected = "expected the parameters.json of an earlier run"
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise LandCoverError(f"Cannot read the parameters file {path} ({exc}); {expected}.", PARAMETERS_PARAMETER) from None
        if not isinstance(data, dict):
            raise LandCoverError(f"The parameters file {path} holds a {type(data).__name__}, not an object; {expected}.", PARAMETERS_PARAMETER)
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise LandCoverError(f"Unknown entries in the parameters file {path}: {', '.join(unknown)}; {expected}.", PARAMETERS_PARAMETER)
        defaults = cls(grid="", start="", end="")
        for name, value in data.items():
            default = getattr(defaults, name)
            kind = (int, float) if isinstance(default, float) else type(default)
            if default is not None and value is not None and not isinstance(value, kind):
                raise LandCoverError(
                    f"The parameters file {path} gives {name} = {value!r}; expected a {type(default).__name__}.", PARAMETERS_PARAMETER
                )
        return cls(**{"grid": "", "start": "", "end": "", **data})

    def check(self) -> None:
        if self.cloud_method not in CLOUD_METHODS:
            raise LandCoverError(f"Unknown cloud-mask method '{self.cloud_method}'; choose one of {', '.join(CLOUD_METHODS)}.", "CLOUD_METHOD")
        if self.model and not os.path.isfile(self.model):
            raise LandCoverError(f"The model {self.model} does not exist; choose an ONNX model made by the Train step.", "MODEL")
        if not os.path.exists(self.grid):
            raise LandCoverError(f"The grid {self.grid} does not exist; make one with Create patch grid.", "GRID")
        if self.reference and not self.reference_field:
            raise LandCoverError("A reference layer needs its class field.", "REFERENCE_FIELD")
        if int(self.step_days) < 1:
            raise LandCoverError(f"The interpolation step must be at least 1 day, got {self.step_days}.", "STEP_DAYS")


def _hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _read_marker(folder: str, name: str = DONE_MARKER) -> dict | None:
    try:
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_marker(folder: str, name: str, record: dict) -> None:
    path = os.path.join(folder, name)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({**record, "finished": dt.datetime.now(dt.timezone.utc).isoformat()}, f, indent=2)
    os.replace(path + ".tmp", path)


def is_done(folder: str, digest: str, marker_name: str = DONE_MARKER) -> bool:
    """True if the patch folder holds a (done or prepared) marker for these parameters and its outputs exist."""
    marker = _read_marker(folder, marker_name)
    if not marker or marker.get("parameters_hash") != digest:
        return False
    return all(os.path.isfile(os.path.join(folder, p)) for p in marker.get("outputs", {}).values())


def training_pairs(run_folder: str) -> tuple[list[str], list[str]]:
    """(interpolated stacks, reference rasters) of every prepared patch of a run with a reference,
    in patch order: the inputs of training over the whole grid."""
    stacks, references = [], []
    for name in sorted(os.listdir(run_folder)) if os.path.isdir(run_folder) else []:
        folder = os.path.join(run_folder, name)
        marker = _read_marker(folder, PREPARED_MARKER)
        outputs = (marker or {}).get("outputs", {})
        if "reference" in outputs and is_done(folder, marker.get("parameters_hash"), PREPARED_MARKER):
            stacks.append(os.path.join(folder, outputs["interpolated"]))
            references.append(os.path.join(folder, outputs["reference"]))
    if not stacks:
        raise LandCoverError(
            f"{run_folder} holds no prepared patch with a reference raster; run the grid with a reference layer first.", "RUN_FOLDER"
        )
    return stacks, references


def process_patch(params: dict, patch_id: str, run_folder: str, monitor: Monitor | None = None) -> dict:
    """Run the chain for one patch; return its record (never raises, except ``Cancelled``).

    Takes plain data (a dict of parameters, the patch id) so it pickles to any worker; the patch
    geometry is read from the grid file, which workers must see at the same path.
    """
    from ..ml import classify

    p = BatchParameters(**params)
    monitor = monitor or runstate.WorkerProgress(run_folder, patch_id).monitor()
    folder = os.path.join(run_folder, patch_id)
    started = time.time()
    steps: dict[str, float] = {}
    record = {"patch": patch_id, "status": "failed", "outputs": {}, "steps": steps, "error": None, "traceback": None}
    record["worker"] = f"{platform.node()}:{os.getpid()}"
    reuse = is_done(folder, p.prepare_digest(), PREPARED_MARKER)
    one_pass = bool(p.model) and not p.keep_intermediates and not reuse and _one_pass_applies(p.model)
    out = {
        k: v
        for k, v in {
            "stack": "stack.tif",
            "mask": None if one_pass else "clm.tif",
            "filtered": None if one_pass else "filtered.vrt",
            "filtered_mask": None if one_pass else "filtered_clm.vrt",
            "interpolated": None if one_pass else "interpolated.tif",
            "reference": "reference.tif" if p.reference else None,
            "landcover": "landcover.tif" if p.model else None,
        }.items()
        if v
    }
    path = {k: os.path.join(folder, v) for k, v in out.items()}
    prepared = {k: v for k, v in out.items() if k != "landcover"}
    n = 1 if reuse else (2 + bool(p.reference)) if one_pass else len(STEPS) - (not p.reference) - (not p.model)
    step_no = 0

    def step(name: str) -> Monitor:
        nonlocal step_no
        steps[name] = time.time()
        sub = monitor.sub(step_no / n, (step_no + 1) / n)
        step_no += 1
        monitor.info(f"Patch {patch_id}: {name}")
        return sub

    def close(name: str) -> None:
        steps[name] = round(time.time() - steps[name], 3)

    try:
        os.makedirs(folder, exist_ok=True)
        marker = os.path.join(folder, DONE_MARKER)
        if os.path.exists(marker):
            os.remove(marker)
        if reuse:
            monitor.info(f"Patch {patch_id}: stacks prepared by an earlier run are reused")
            record["reused_preparation"] = True
        elif one_pass:
            _one_pass_patch(p, patch_id, path, step, close)
        else:
            _prepare_patch(p, patch_id, path, step, close)
            _write_marker(folder, PREPARED_MARKER, {"patch": patch_id, "outputs": prepared, "parameters_hash": p.prepare_digest()})
        if p.model and not one_pass:
            m = step("classify")
            classify.classify_file(p.model, path["interpolated"], path["landcover"], monitor=m)
            close("classify")
        record.update(status="done", outputs=out, duration_s=round(time.time() - started, 3), parameters_hash=p.digest())
        _write_marker(folder, DONE_MARKER, record)
    except Cancelled:
        raise
    except BaseException as exc:  # noqa: BLE001 - a patch's failure is data for the report
        if isinstance(exc, KeyboardInterrupt):
            raise
        error, trace = redact_text(f"{type(exc).__name__}: {exc}"), redact_text(traceback.format_exc())
        record.update(error=error, traceback=trace, duration_s=round(time.time() - started, 3))
        for name, value in list(steps.items()):
            if value > 1e9:  # the step that raised never closed
                steps[name] = round(time.time() - value, 3)
    return record


def _one_pass_applies(model: str) -> bool:
    from .fused import supports

    return supports(model)


def _one_pass_patch(p: BatchParameters, patch_id: str, path: dict[str, str], step: Callable[[str], Monitor], close: Callable[[str], None]) -> None:
    """Download → (reference) → the one-pass chain to the class map (``fused.classify_stack``)."""
    from ..timeseries import interpolate
    from . import fused

    _download(p, patch_id, path, step, close)
    _reference(p, path["stack"], path, step, close)
    m = step(ONE_PASS_STEP)
    settings = fused.FusedSettings(
        cloud_method=p.cloud_method,
        processing_resolution=float(p.cloud_resolution),
        min_valid_fraction=p.min_valid_fraction,
        step_days=int(p.step_days),
        start=dt.date.fromisoformat(str(p.start)),
        end=dt.date.fromisoformat(str(p.end)),
        edge_days=interpolate.GRID_EDGE_DAYS,
    )
    fused.classify_stack(path["stack"], p.model, path["landcover"], settings, monitor=m)
    close(ONE_PASS_STEP)


def _download(p: BatchParameters, patch_id: str, path: dict[str, str], step: Callable[[str], Monitor], close: Callable[[str], None]) -> None:
    from ..sources.download import download_patch
    from .grid import read_patches

    (patch,) = read_patches(p.grid, [patch_id], layer=p.grid_layer)
    m = step("download")
    download_patch(
        patch,
        path["stack"],
        start=p.start,
        end=p.end,
        stac_url=p.stac_url,
        collection=p.collection,
        max_cloud=p.max_cloud,
        bands=list(p.bands),
        threads=p.download_threads,
        resume=True,
        monitor=m,
    )
    close("download")


def _prepare_patch(p: BatchParameters, patch_id: str, path: dict[str, str], step: Callable[[str], Monitor], close: Callable[[str], None]) -> None:
    """Download → cloud mask → filter → interpolate → (reference) for one patch, into ``path``."""
    from ..timeseries import clouds, interpolate, scenes

    _download(p, patch_id, path, step, close)
    m = step("cloud mask")
    clouds.cloud_masks_file(path["stack"], path["mask"], method=p.cloud_method, monitor=m, processing_resolution=float(p.cloud_resolution))
    close("cloud mask")
    m = step("filter")
    scenes.filter_scenes_file(path["stack"], path["mask"], path["filtered"], path["filtered_mask"], min_valid_fraction=p.min_valid_fraction, monitor=m)
    close("filter")
    m = step("interpolate")
    interpolate.interpolate_file(
        path["filtered"],
        path["interpolated"],
        mask_path=path["filtered_mask"],
        step_days=int(p.step_days),
        start=dt.date.fromisoformat(str(p.start)),
        end=dt.date.fromisoformat(str(p.end)),
        edge_days=interpolate.GRID_EDGE_DAYS,
        monitor=m,
    )
    close("interpolate")
    _reference(p, path["interpolated"], path, step, close)


def _reference(p: BatchParameters, grid_path: str, path: dict[str, str], step: Callable[[str], Monitor], close: Callable[[str], None]) -> None:
    """Rasterize the run's reference (if any) on the grid of ``grid_path``, with the run's class options."""
    from ..reference import rasterize as reference

    if not p.reference:
        return
    m = step("reference")
    options = reference.ClassOptions(zero=p.reference_zero, legend=p.reference_legend)
    reference.rasterize_reference_file(
        p.reference, p.reference_field, grid_path, path["reference"], erosion_px=int(p.erosion_px), options=options, monitor=m
    )
    close("reference")


@dataclass
class BatchResult:
    run_folder: str
    records: list[dict]
    mosaic: MosaicResult | None
    report_json: str
    report_html: str

    @property
    def done(self) -> list[str]:
        return [r["patch"] for r in self.records if r["status"] in ("done", "skipped")]

    @property
    def failed(self) -> list[str]:
        return [r["patch"] for r in self.records if r["status"] == "failed"]


def run_batch(
    params: BatchParameters,
    run_folder: str,
    *,
    executor: str = "sequential",
    workers: int = 2,
    scheduler: str | None = None,
    monitor: Monitor | None = None,
) -> BatchResult:
    """Process every patch of the grid not yet done, mosaic the class maps, write the report."""
    from .grid import read_patches

    monitor = monitor or Monitor()
    if executor not in EXECUTORS:
        raise LandCoverError(f"Unknown executor '{executor}'; choose one of {', '.join(EXECUTORS)}.", "EXECUTOR")
    if int(workers) < 1:
        raise LandCoverError(f"The number of workers must be at least 1, got {workers}.", "WORKERS")
    params.check()
    run_folder = os.path.abspath(run_folder)
    os.makedirs(run_folder, exist_ok=True)
    params.save(os.path.join(run_folder, PARAMETERS_FILE))
    ids = [p.id for p in read_patches(params.grid, params.patch_ids, layer=params.grid_layer)]
    if not ids:
        raise LandCoverError(f"The grid {params.grid} has no patches.", "GRID")
    digest = params.digest()
    records: dict[str, dict] = {}
    todo = []
    for pid in ids:
        if is_done(os.path.join(run_folder, pid), digest):
            marker = _read_marker(os.path.join(run_folder, pid)) or {}
            records[pid] = {**marker, "status": "skipped"}
        else:
            todo.append(pid)
    monitor.info(f"{len(ids)} patches: {len(ids) - len(todo)} already done, {len(todo)} to run ({executor})")
    started = time.time()
    runstate.clear_cancel(run_folder)
    board = runstate.ProgressBoard(run_folder, len(todo), monitor.sub(0.0, 0.9))
    data = asdict(params)

    def collect(record: dict) -> None:
        records[record["patch"]] = record
        board.finish(record["patch"])
        state = record["status"] if record["status"] == "done" else f"FAILED ({record['error']})"
        monitor.info(f"Patch {record['patch']}: {state} [{board.finished}/{len(todo)}]")

    if executor == "sequential":
        for i, pid in enumerate(todo):
            collect(process_patch(data, pid, run_folder, board.monitor.sub(i / len(todo), (i + 1) / len(todo))))
    elif executor == "processes" and todo:
        _run_processes(data, todo, run_folder, int(workers), collect, board)
    elif todo:
        _run_dask(data, todo, run_folder, int(workers), scheduler, collect, board)
    wall = time.time() - started
    ordered = [records[pid] for pid in ids]
    classified = [r for r in ordered if r["status"] in ("done", "skipped") and "landcover" in r["outputs"]]
    maps = [os.path.join(run_folder, r["patch"], r["outputs"]["landcover"]) for r in classified]
    mosaic_info = None
    if maps:
        from ..io.mosaic import mosaic_files

        vrt, cog = os.path.join(run_folder, "landcover.vrt"), os.path.join(run_folder, "landcover_cog.tif")
        mosaic_info = mosaic_files(maps, vrt, cog, monitor=monitor.sub(0.9, 0.98))
    rj, rh = write_report(run_folder, params, ordered, mosaic_info, executor=executor, workers=int(workers), wall_s=wall)
    monitor.update(1.0)
    return BatchResult(run_folder, ordered, mosaic_info, rj, rh)


def _failed_record(pid: str, exc: BaseException) -> dict:
    error = redact_text(f"{type(exc).__name__}: {exc}")
    trace = redact_text("".join(traceback.format_exception(exc)))
    return {"patch": pid, "status": "failed", "outputs": {}, "steps": {}, "error": error, "traceback": trace}


def _run_processes(data: dict, todo: list[str], run_folder: str, workers: int, collect: Callable[[dict], None], board: runstate.ProgressBoard) -> None:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_spawn_context())
    pending = {}
    queue = list(todo)
    try:
        while queue or pending:
            while queue and len(pending) < 2 * workers:  # submit lazily, so cancel stops submitting
                pid = queue.pop(0)
                board.start(pid)
                try:
                    pending[pool.submit(process_patch, data, pid, run_folder)] = pid
                except BrokenProcessPool as exc:  # a worker died (killed, out of memory): the rest cannot run now
                    for lost in [pid, *queue]:
                        collect(_failed_record(lost, exc))
                    queue.clear()
            finished, _ = wait(list(pending), timeout=0.2, return_when=FIRST_COMPLETED)
            board.poll()  # forwards the workers' progress; raises Cancelled when the user cancels
            for fut in finished:
                pid = pending.pop(fut)
                try:
                    collect(fut.result())
                except Exception as exc:  # noqa: BLE001 - e.g. a worker that died
                    collect(_failed_record(pid, exc))
    except BaseException:
        runstate.request_cancel(run_folder)  # running patches stop within a progress check; queued ones are dropped
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _spawn_context():
    """Fresh interpreters, not forks: a fork of a process with threads (GDAL, HTTP, QGIS) can deadlock.

    Inside QGIS ``sys.executable`` is the QGIS binary, so the children are started with the Python
    interpreter QGIS embeds (see ``_python_executable``).
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    python = _python_executable()
    if python:
        ctx.set_executable(python)
    return ctx


def _python_executable() -> str | None:
    """The interpreter of this process's own Python when ``sys.executable`` is not it, else None
    (keep the default).

    Inside QGIS ``sys.executable`` is the QGIS binary, or (QGIS 3.22 on Debian, embedded Python
    resolving its program name on PATH) whatever ``python3`` comes first on PATH: with pyenv or
    conda there that is another Python, without QGIS's packages, and every patch would fail
    importing numpy. The embedded Python's prefix holds its interpreter; the version-named binary
    first, so a same-prefix python3 of another version is never taken. The children get this
    process's ``sys.path`` from multiprocessing.
    """
    import sys

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    names = [f"python{version}", "python3", "python"]
    if os.name == "nt":
        names = [f"python{version.replace('.', '')}.exe", "python3.exe", "python.exe"]
    prefixes = dict.fromkeys((sys.prefix, sys.exec_prefix, getattr(sys, "base_exec_prefix", sys.exec_prefix)))
    folders = [folder for prefix in prefixes for folder in (os.path.join(prefix, "bin"), prefix)]
    current = sys.executable or ""
    if os.path.basename(current).lower().startswith("python") and os.path.dirname(os.path.abspath(current)) in folders:
        return None
    for folder in folders:
        for name in names:
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    raise LandCoverError(
        f"No Python {version} interpreter found under {sys.exec_prefix} to start the worker processes; "
        "choose the sequential executor or Dask with a scheduler address.",
        "EXECUTOR",
    )


def _run_dask(
    data: dict, todo: list[str], run_folder: str, workers: int, scheduler: str | None, collect: Callable[[dict], None], board: runstate.ProgressBoard
) -> None:
    from ..core.deps import require

    distributed = require("distributed")
    cluster = None
    if scheduler:
        client = distributed.Client(scheduler, timeout="20s")
    else:
        python = _python_executable()
        if python:  # Dask's nanny spawns its workers with multiprocessing's (global) executable
            import multiprocessing

            multiprocessing.set_executable(python)
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = distributed.Client(cluster)
    try:
        for pid in todo:
            board.start(pid)
        futures = {client.submit(process_patch, data, pid, run_folder, key=f"lc-patch-{pid}-{time.time_ns()}", pure=False): pid for pid in todo}
        results = distributed.as_completed(list(futures))
        try:
            while True:
                board.poll()  # forwards the workers' progress; raises Cancelled when the user cancels
                batch = results.next_batch(block=False) if results.has_ready() else []
                if not batch:
                    if results.is_empty():
                        break
                    time.sleep(0.2)
                    continue
                for fut in batch:
                    pid = futures[fut]
                    try:
                        collect(fut.result())
                    except Exception as exc:  # noqa: BLE001 - e.g. a worker that died
                        collect(_failed_record(pid, exc))
        except BaseException:
            runstate.request_cancel(run_folder)  # a running task cannot be killed by Dask; ours stop themselves
            client.cancel(list(futures))
            raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def package_versions() -> dict[str, str]:
    """Versions of what decides the results, for the report (reproducibility)."""
    from importlib import metadata

    from .. import __version__

    versions = {"lc_plugin": __version__, "python": platform.python_version()}
    for name in ("numpy", "rasterio", "lightgbm", "onnxruntime", "s2cloudless", "dask", "distributed"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        from osgeo import gdal

        versions["gdal"] = gdal.__version__
    except ImportError:
        pass
    return versions


def workflow_figure(path: str, with_reference: bool) -> str | None:
    """Draw the per-patch step graph (PNG) with matplotlib's Agg canvas; None without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    names = ["grid", "download", "cloud mask", "filter", "interpolate"] + (["reference"] if with_reference else []) + ["classify", "mosaic", "report"]
    fig = Figure(figsize=(1.3 * len(names), 1.6))
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(-1, 1)
    ax.axis("off")
    for i, name in enumerate(names):
        per_patch = name not in ("grid", "mosaic", "report")
        ax.text(
            i,
            0,
            name,
            ha="center",
            va="center",
            fontsize=9,
            bbox={"boxstyle": "round", "facecolor": "#cfe8cf" if per_patch else "#dddddd", "edgecolor": "#555555"},
        )
        if i:
            ax.annotate("", xy=(i - 0.42, 0), xytext=(i - 0.58, 0), arrowprops={"arrowstyle": "->"})
    ax.text((len(names) - 1) / 2, -0.75, "green: once per patch (in parallel); grey: once per run", ha="center", fontsize=8)
    fig.savefig(path, dpi=80)
    return path


def write_report(
    run_folder: str, params: BatchParameters, records: list[dict], mosaic_info: MosaicResult | None, *, executor: str, workers: int, wall_s: float
) -> tuple[str, str]:
    """``report.json`` and ``report.html``: per patch status, duration, error; parameters, versions, graph."""
    counts = {s: sum(r["status"] == s for r in records) for s in ("done", "skipped", "failed")}
    report = {
        "run_folder": run_folder,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(),
        "executor": executor,
        "workers": workers,
        "wall_s": round(wall_s, 3),
        "counts": counts,
        "parameters": params.public(),
        "parameters_hash": params.digest(),
        "versions": package_versions(),
        "mosaic": asdict(mosaic_info) if mosaic_info else None,
        "patches": records,
    }
    rj = os.path.join(run_folder, "report.json")
    with open(rj + ".tmp", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, default=str)
    os.replace(rj + ".tmp", rj)
    graph = workflow_figure(os.path.join(run_folder, "workflow.png"), bool(params.reference))
    page = run_page(report, graph)
    rh = os.path.join(run_folder, "report.html")
    with open(rh + ".tmp", "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(rh + ".tmp", rh)
    return rj, rh
