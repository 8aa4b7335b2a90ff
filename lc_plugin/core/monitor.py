"""Progress and cancellation without a QGIS dependency: the engine's one way to hear "stop".

Engine functions take a ``Monitor``; the Processing layer builds one from its feedback
(``Monitor(feedback.setProgress, feedback.isCanceled)``), a grid run's worker from its run folder's
cancel file (``runstate``), a notebook passes nothing. Code that stops work of its own accord (a failed
read among several threads) calls ``monitor.cancel()``: the monitor and every ``sub`` monitor of it then
report cancelled, from any thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed

from .errors import Cancelled
from .redaction import redact_text


class Monitor:
    """Reports progress as a fraction in [0, 1] of this monitor's span and checks for cancel.

    ``progress`` receives percent (0–100) of the whole run, matching QGIS feedback.
    ``sub(start, end)`` gives a child monitor that maps its own 0–1 onto a slice of the parent.
    """

    def __init__(
        self,
        progress: Callable[[float], object] | None = None,
        is_cancelled: Callable[[], bool] | None = None,
        log: Callable[[str], object] | None = None,
        _span: tuple[float, float] = (0.0, 1.0),
        _stop: threading.Event | None = None,
    ) -> None:
        self._progress = progress
        self._is_cancelled = is_cancelled
        self._log = log
        self._span = _span
        self._stop = _stop if _stop is not None else threading.Event()

    def update(self, fraction: float) -> None:
        """Report progress and raise ``Cancelled`` if the caller asked to stop."""
        self.check()
        if self._progress is not None:
            lo, hi = self._span
            fraction = min(max(fraction, 0.0), 1.0)
            self._progress(100.0 * (lo + (hi - lo) * fraction))

    @property
    def cancelled(self) -> bool:
        """Whether the caller, or code sharing this monitor, asked to stop (safe from any thread)."""
        if not self._stop.is_set() and self._is_cancelled is not None and self._is_cancelled():
            self._stop.set()
        return self._stop.is_set()

    def cancel(self) -> None:
        """Ask every user of this monitor (and of its parent and ``sub`` monitors) to stop."""
        self._stop.set()

    def check(self) -> None:
        """Raise ``Cancelled`` if the caller asked to stop."""
        if self.cancelled:
            raise Cancelled("cancelled by the user")

    def info(self, message: str) -> None:
        """Pass a human-readable line to the caller's log (never to stdout), with any secret in it masked."""
        if self._log is not None:
            self._log(redact_text(message))

    def sub(self, start: float, end: float) -> Monitor:
        """A monitor whose 0–1 covers ``start``–``end`` of this one."""
        lo, hi = self._span
        return Monitor(
            self._progress,
            self._is_cancelled,
            self._log,
            (lo + (hi - lo) * start, lo + (hi - lo) * end),
            self._stop,
        )


def ensure_monitor(monitor: Monitor | None) -> Monitor:
    """Engine entry points accept ``None`` and use a silent monitor."""
    return monitor if monitor is not None else Monitor()


def run_threaded(task: Callable, items: Iterable, threads: int, monitor: Monitor, name: str) -> None:
    """Run ``task(item)`` for every item on ``threads`` threads, reporting progress (and so noticing a
    cancel) from the calling thread as tasks finish; on cancel or error, queued tasks are dropped and the
    exception is raised once the running ones end."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name) as pool:
        futures = [pool.submit(task, item) for item in items]
        try:
            for i, future in enumerate(as_completed(futures)):
                future.result()
                monitor.update((i + 1) / len(futures))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
