"""Where a grid run's patches run: worker processes on this machine, or Dask (local or remote cluster).

Every executor submits ``process_patch`` with plain data, hands each finished record to ``collect``
and polls the run's ``ProgressBoard``, which forwards the workers' progress and raises ``Cancelled``
when the user cancels; the run then writes the run folder's cancel file (``runstate``), which the
running patches' monitors read, so they stop within a progress check.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.context import BaseContext
from typing import Any

from ..core.errors import InputError
from ..core.redaction import redact_text
from . import runstate
from .patch import process_patch

EXECUTORS = ["sequential", "processes", "dask"]
Collect = Callable[[dict], None]


def failed_record(pid: str, exc: BaseException) -> dict:
    """The record of a patch whose worker failed outside ``process_patch`` (e.g. a worker that died)."""
    error = redact_text(f"{type(exc).__name__}: {exc}")
    trace = redact_text("".join(traceback.format_exception(exc)))
    return {"patch": pid, "status": "failed", "outputs": {}, "steps": {}, "error": error, "traceback": trace}


def run_processes(data: dict, todo: list[str], run_folder: str, workers: int, collect: Collect, board: runstate.ProgressBoard) -> None:
    """Run the patches ``todo`` on ``workers`` fresh Python processes."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=spawn_context())
    pending: dict[Future, str] = {}
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
                        collect(failed_record(lost, exc))
                    queue.clear()
            finished, _ = wait(list(pending), timeout=0.2, return_when=FIRST_COMPLETED)
            board.poll()  # forwards the workers' progress; raises Cancelled when the user cancels
            for fut in finished:
                _collect_future(fut, pending.pop(fut), collect)
    except BaseException:
        runstate.request_cancel(run_folder)  # running patches stop within a progress check; queued ones are dropped
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _collect_future(future: Any, pid: str, collect: Collect) -> None:
    """Hand a finished patch's record to ``collect``; a worker that failed outside the patch gives a failed record."""
    try:
        collect(future.result())
    except Exception as exc:  # noqa: BLE001 - e.g. a worker that died
        collect(failed_record(pid, exc))


def spawn_context() -> BaseContext:
    """Fresh interpreters, not forks: a fork of a process with threads (GDAL, HTTP, QGIS) can deadlock.

    Inside QGIS ``sys.executable`` is the QGIS binary, so the children are started with the Python
    interpreter QGIS embeds (see ``python_executable``).
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    python = python_executable()
    if python:
        ctx.set_executable(python)
    return ctx


def python_executable() -> str | None:
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
    raise InputError(
        f"No Python {version} interpreter found under {sys.exec_prefix} to start the worker processes; "
        "choose the sequential executor or Dask with a scheduler address.",
        "executor",
    )


def run_dask(
    data: dict, todo: list[str], run_folder: str, workers: int, scheduler: str | None, collect: Collect, board: runstate.ProgressBoard
) -> None:
    """Run the patches ``todo`` on a Dask cluster: the one at ``scheduler``, else a LocalCluster of ``workers`` processes."""
    from ..core.deps import require

    distributed = require("distributed")
    cluster = None
    if scheduler:
        client = distributed.Client(scheduler, timeout="20s")
    else:
        python = python_executable()
        if python:  # Dask's nanny spawns its workers with multiprocessing's (global) executable
            import multiprocessing

            multiprocessing.set_executable(python)
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = distributed.Client(cluster)
    try:
        for pid in todo:
            board.start(pid)
        futures = {client.submit(process_patch, data, pid, run_folder, key=f"lc-patch-{pid}-{time.time_ns()}", pure=False): pid for pid in todo}
        try:
            _collect_dask(distributed.as_completed(list(futures)), futures, collect, board)
        except BaseException:
            runstate.request_cancel(run_folder)  # a running task cannot be killed by Dask; ours stop themselves
            client.cancel(list(futures))
            raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _collect_dask(results: Any, futures: dict, collect: Collect, board: runstate.ProgressBoard) -> None:
    """Collect Dask's finished patches as they come, polling the board (progress, cancel) meanwhile."""
    while True:
        board.poll()  # forwards the workers' progress; raises Cancelled when the user cancels
        batch = results.next_batch(block=False) if results.has_ready() else []
        if not batch:
            if results.is_empty():
                break
            time.sleep(0.2)
            continue
        for fut in batch:
            _collect_future(fut, futures[fut], collect)
