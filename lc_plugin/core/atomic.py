"""Atomic output files: write to a temporary name beside the target, rename on success.

A cancelled or failed run leaves no half-written file, and an output path that names one of
the run's inputs is refused before anything is written. A killed run (SIGKILL, power cut) cannot
clean up: the next write of the same output removes what it left (``remove_leftovers``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator

from .errors import InputError


def check_not_input(output: str, inputs: Iterable[str], argument: str | None = None) -> None:
    """Refuse an output path that is one of the inputs (it would be destroyed mid-read); ``argument``
    names the caller's output argument."""
    out = os.path.realpath(output)
    for path in inputs:
        if path and os.path.exists(path) and os.path.realpath(path) == out:
            raise InputError(f"The output {output} is also an input of this step; choose another file name.", argument)


def _temporary_name(path: str, token: str, kind: str = "partial") -> str:
    """``.<name>.<token>.<kind><ext>`` beside ``path``: hidden, and keeping the extension so GDAL/OGR
    pick the right driver."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    base, ext = os.path.splitext(os.path.basename(os.path.normpath(path)))
    return os.path.join(folder, f".{base}.{token}.{kind}{ext}")


def remove_leftovers(path: str) -> list[str]:
    """Remove the temporary files and folders a killed run left for the output ``path``
    (``.<name>.<8 hex>.partial<ext>`` and their GDAL/SQLite companions, ``.old`` folders);
    return what was removed."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    base, ext = os.path.splitext(os.path.basename(os.path.normpath(path)))
    removed = []
    for kind in ("partial", "old"):
        pattern = f".{glob.escape(base)}.{'[0-9a-f]' * 8}.{kind}{glob.escape(ext)}*"
        for leftover in glob.glob(os.path.join(glob.escape(folder), pattern)):
            if os.path.isdir(leftover) and not os.path.islink(leftover):
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.remove(leftover)
            removed.append(leftover)
    return removed


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """Yield a temporary path in the target's folder; rename it to ``path`` only on success."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    _make_folder(folder, path)
    remove_leftovers(path)
    tmp = _temporary_name(path, uuid.uuid4().hex[:8])
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp + ".aux.xml", tmp + "-journal", tmp + "-wal", tmp + "-shm"):
            with contextlib.suppress(OSError):  # a read-only folder must not hide the error that stopped the write
                os.remove(leftover)


@contextlib.contextmanager
def atomic_directory(path: str) -> Iterator[str]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (a folder output such
    as a zarr store), on failure it is removed, so readers never see a half-built folder."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    _make_folder(folder, path)
    remove_leftovers(path)
    token = uuid.uuid4().hex[:8]
    tmp, old = _temporary_name(path, token), _temporary_name(path, token, "old")
    os.makedirs(tmp)
    try:
        yield tmp
        if os.path.lexists(path):
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _make_folder(folder: str, output: str) -> None:
    """Create ``folder``; a folder that cannot be written is a clear error, not an OSError."""
    if os.path.isfile(folder):
        raise InputError(f"Cannot write {output}: {folder} is a file, not a folder; choose an output in a folder.")
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".{uuid.uuid4().hex[:8]}.probe")
        with open(probe, "w", encoding="utf-8"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise InputError(
            f"Cannot write {output}: the folder {folder} cannot be written ({exc.strerror or exc}); choose a folder you can write to."
        ) from None
