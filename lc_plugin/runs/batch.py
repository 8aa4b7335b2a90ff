"""Run the per-patch chain over a whole grid: resumable, in parallel, locally or on Dask.

Each patch is independent: ``patch.process_patch`` runs download → cloud mask → filter →
interpolate → (rasterize reference) → classify into ``<run_folder>/<patch_id>/`` and writes a
done marker (``done.json``: outputs, duration, parameters hash). ``run_batch`` skips patches
whose marker matches the parameters, runs the others with the chosen executor (a patch that
raises is recorded with its traceback and the others go on), mosaics the class maps and writes
``report.json`` + ``report.html``. Rerunning the same run folder resumes.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

from ..core.errors import InputError
from ..core.monitor import Monitor, ensure_monitor
from ..io.mosaic import MosaicResult
from . import runstate
from .executors import EXECUTORS, run_dask, run_processes
from .markers import is_done, read_marker
from .parameters import PARAMETERS_FILE, BatchParameters
from .patch import process_patch
from .run_report import write_report


@dataclass(frozen=True)
class BatchResult:
    """What a grid run did: every patch's record (in grid order), the mosaic and the report files."""

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
    monitor = ensure_monitor(monitor)
    if executor not in EXECUTORS:
        raise InputError(f"Unknown executor '{executor}'; choose one of {', '.join(EXECUTORS)}.", "executor")
    if int(workers) < 1:
        raise InputError(f"The number of workers must be at least 1, got {workers}.", "workers")
    params.check()
    run_folder = os.path.abspath(run_folder)
    os.makedirs(run_folder, exist_ok=True)
    params.save(os.path.join(run_folder, PARAMETERS_FILE))
    ids, records = _done_before(params, run_folder)
    todo = [pid for pid in ids if pid not in records]
    monitor.info(f"{len(ids)} patches: {len(ids) - len(todo)} already done, {len(todo)} to run ({executor})")
    started = time.time()
    _run_patches(params, run_folder, todo, records, executor, int(workers), scheduler, monitor)
    wall = time.time() - started
    ordered = [records[pid] for pid in ids]
    mosaic_info = _mosaic(run_folder, ordered, monitor.sub(0.9, 0.98))
    rj, rh = write_report(run_folder, params, ordered, mosaic_info, executor=executor, workers=int(workers), wall_s=wall)
    monitor.update(1.0)
    return BatchResult(run_folder, ordered, mosaic_info, rj, rh)


def _done_before(params: BatchParameters, run_folder: str) -> tuple[list[str], dict[str, dict]]:
    """The run's patch ids, and the records of those an earlier run finished with these parameters."""
    from .grid import read_patches

    ids = [p.id for p in read_patches(params.grid, params.patch_ids, layer=params.grid_layer)]
    if not ids:
        raise InputError(f"The grid {params.grid} has no patches.", "grid")
    digest = params.digest()
    records = {}
    for pid in ids:
        folder = os.path.join(run_folder, pid)
        if is_done(folder, digest):
            records[pid] = {**(read_marker(folder) or {}), "status": "skipped"}
    return ids, records


def _run_patches(
    params: BatchParameters,
    run_folder: str,
    todo: list[str],
    records: dict[str, dict],
    executor: str,
    workers: int,
    scheduler: str | None,
    monitor: Monitor,
) -> None:
    """Run the patches ``todo`` with ``executor``, adding their records to ``records`` as they finish.

    A cancel reaches the workers as the run folder's cancel file (``runstate``), cleared here so a rerun resumes.
    """
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
        run_processes(data, todo, run_folder, workers, collect, board)
    elif todo:
        run_dask(data, todo, run_folder, workers, scheduler, collect, board)


def _mosaic(run_folder: str, records: list[dict], monitor: Monitor) -> MosaicResult | None:
    """Mosaic the class maps of the finished patches (VRT and COG in the run folder); None without any."""
    classified = [r for r in records if r["status"] in ("done", "skipped") and "landcover" in r["outputs"]]
    maps = [os.path.join(run_folder, r["patch"], r["outputs"]["landcover"]) for r in classified]
    if not maps:
        return None
    from ..io.mosaic import mosaic_files

    vrt, cog = os.path.join(run_folder, "landcover.vrt"), os.path.join(run_folder, "landcover_cog.tif")
    return mosaic_files(maps, vrt, cog, monitor=monitor)
