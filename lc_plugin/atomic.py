"""Atomic output files: write to a temporary name beside the target, rename on success.

A cancelled or failed run leaves no half-written file, and an output path that names one of
the run's inputs is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator

from .errors import LandCoverError


def check_not_input(output: str, inputs: Iterable[str], parameter: str | None = None) -> None:
    """Refuse an output path that is one of the inputs (it would be destroyed mid-read)."""
    out = os.path.realpath(output)
    for path in inputs:
        if path and os.path.exists(path) and os.path.realpath(path) == out:
            raise LandCoverError(
                f"The output {output} is also an input of this step; choose another file name.",
                parameter,
            )


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """Yield a temporary path in the target's folder; rename it to ``path`` only on success.

    The temporary name keeps the extension so GDAL/OGR pick the right driver.
    """
    folder = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    tmp = os.path.join(folder, f".{base}.{uuid.uuid4().hex[:8]}.partial{ext}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp + ".aux.xml", tmp + "-journal", tmp + "-wal", tmp + "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)


@contextlib.contextmanager
def atomic_directory(path: str) -> Iterator[str]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (a folder output such
    as a zarr store), on failure it is removed, so readers never see a half-built folder."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(os.path.normpath(path)))
    token = uuid.uuid4().hex[:8]
    tmp = os.path.join(folder, f".{base}.{token}.partial{ext}")
    old = os.path.join(folder, f".{base}.{token}.old{ext}")
    os.makedirs(tmp)
    try:
        yield tmp
        if os.path.lexists(path):
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
