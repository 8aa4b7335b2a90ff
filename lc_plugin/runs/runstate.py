"""Progress and cancel between a grid run and its workers, through small files in the run folder.

Workers are other processes or other machines (Dask) that share the run folder but no memory, so
each running patch writes ``<run>/<patch>/progress.json`` (percent of the patch + its log lines)
and every worker's monitor stops when ``<run>/CANCEL`` appears. Plain files work the same for a
process pool, a LocalCluster and a remote scheduler, and need nothing from the executor.

The cancel file is the run's way to pass the user's cancel to other processes, and reaches engine
code only as a ``Monitor`` (``worker_monitor``): the run side writes it when its own monitor raises
``Cancelled`` (``ProgressBoard.poll``), the worker side's monitor reads it.
"""

from __future__ import annotations

import json
import os
import threading
import time

from ..core.atomic import atomic_output
from ..core.monitor import Monitor

CANCEL_FILE = "CANCEL"
PROGRESS_FILE = "progress.json"


def request_cancel(run_folder: str) -> None:
    """Ask every worker of this run to stop at its next progress check (the file's presence is the request)."""
    with open(os.path.join(run_folder, CANCEL_FILE), "w", encoding="utf-8") as f:
        f.write("cancelled by the user\n")


def clear_cancel(run_folder: str) -> None:
    """Forget an earlier run's cancel request (a rerun resumes)."""
    try:
        os.remove(os.path.join(run_folder, CANCEL_FILE))
    except FileNotFoundError:
        pass


def cancel_requested(run_folder: str) -> bool:
    """Whether the run's cancel file exists."""
    return os.path.exists(os.path.join(run_folder, CANCEL_FILE))


def read_progress(patch_folder: str) -> dict | None:
    """``{"percent": float, "messages": [str, ...]}`` written by the patch's worker, or None."""
    try:
        with open(os.path.join(patch_folder, PROGRESS_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def clear_progress(patch_folder: str) -> None:
    """Forget a patch's progress from an earlier attempt."""
    try:
        os.remove(os.path.join(patch_folder, PROGRESS_FILE))
    except (FileNotFoundError, NotADirectoryError):
        pass


def worker_monitor(run_folder: str, patch_id: str) -> Monitor:
    """The monitor of a patch running in another process: progress and log to the patch's progress
    file, cancelled once the run's cancel file appears."""
    return WorkerProgress(run_folder, patch_id).monitor()


class WorkerProgress:
    """The worker side: a ``Monitor`` whose progress and log go to the patch's progress file.

    Percent updates are written at most every ``interval`` seconds (log lines at once, they are
    few); the cancel file is looked for at most every ``interval`` seconds too.
    """

    def __init__(self, run_folder: str, patch_id: str, interval: float = 0.25) -> None:
        self.run_folder = run_folder
        self.folder = os.path.join(run_folder, patch_id)
        self.interval = interval
        self.percent = 0.0
        self.messages: list[str] = []
        self._written = 0.0
        self._checked = 0.0
        self._cancelled = False
        self._lock = threading.Lock()  # a patch's download threads log too

    def monitor(self) -> Monitor:
        """A monitor whose progress and log lines go to the progress file and that reads the cancel file."""
        return Monitor(self._progress, self._is_cancelled, self._log)

    def _progress(self, percent: float) -> None:
        self.percent = percent
        if time.monotonic() - self._written >= self.interval:
            self._write()

    def _log(self, message: str) -> None:
        self.messages.append(message)
        self._write()

    def _is_cancelled(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - self._checked >= self.interval:
            self._checked = now
            self._cancelled = cancel_requested(self.run_folder)
        return self._cancelled

    def _write(self) -> None:
        with self._lock:
            self._written = time.monotonic()
            with atomic_output(os.path.join(self.folder, PROGRESS_FILE)) as tmp, open(tmp, "w", encoding="utf-8") as f:
                json.dump({"percent": round(self.percent, 2), "messages": self.messages}, f)


class ProgressBoard:
    """The run side: polls the progress files of running patches, forwards new log lines and
    reports overall progress = (finished patches + fractions of running ones) / patches to run."""

    def __init__(self, run_folder: str, total: int, monitor: Monitor) -> None:
        self.run_folder = run_folder
        self.total = max(total, 1)
        self.monitor = monitor
        self.finished = 0
        self._seen: dict[str, int] = {}
        self._percent: dict[str, float] = {}

    def start(self, patch_id: str) -> None:
        """Follow a patch that is about to run."""
        clear_progress(os.path.join(self.run_folder, patch_id))
        self._seen[patch_id] = 0
        self._percent[patch_id] = 0.0

    def poll(self) -> None:
        """Forward new log lines and progress of the running patches; raises ``Cancelled`` when the user cancels."""
        for pid in list(self._seen):
            state = read_progress(os.path.join(self.run_folder, pid))
            if not state:
                continue
            for line in state.get("messages", [])[self._seen[pid] :]:
                self.monitor.info(line)
            self._seen[pid] = len(state.get("messages", []))
            self._percent[pid] = float(state.get("percent", 0.0))
        self._report()

    def finish(self, patch_id: str) -> None:
        """Count a finished patch (done or failed) and stop following it."""
        self.poll()
        self._seen.pop(patch_id, None)
        self._percent.pop(patch_id, None)
        self.finished += 1
        self._report()

    def _report(self) -> None:
        running = sum(self._percent.values()) / 100.0
        self.monitor.update(min((self.finished + running) / self.total, 1.0))
