"""A local cache of downloaded scene windows, keyed by source + item + window + bands.

Why: a country-scale download that is killed, cancelled or rerun must not fetch again what
it already has. Every scene read on a patch grid is kept as one ``.npy`` file (written to a
temporary name and renamed, so a killed run never leaves a truncated entry that would be
trusted); the key hashes everything the pixels depend on, so a changed grid or band list
misses instead of returning wrong data.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import uuid

import numpy as np

from .rasters import Grid


def window_key(source: str, item_id: str, grid: Grid, bands: list[str]) -> str:
    """A stable hex key for the pixels of ``item_id`` on ``grid`` (``source`` = the source's signature)."""
    t = grid.transform
    text = json.dumps(
        [source, item_id, grid.crs.to_wkt(), [t.a, t.b, t.c, t.d, t.e, t.f], grid.width, grid.height, list(bands)],
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class SceneCache:
    """``get``/``put`` (B, H, W) float32 arrays under a folder; ``group`` prefixes the file names
    (the patch id) so one patch's entries can be dropped once its stack is written."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        os.makedirs(folder, exist_ok=True)

    def _path(self, group: str, key: str) -> str:
        return os.path.join(self.folder, f"{group}__{key}.npy")

    def get(self, group: str, key: str, shape: tuple[int, int, int]) -> np.ndarray | None:
        path = self._path(group, key)
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            if os.path.exists(path):  # unreadable: drop it and download again
                with contextlib.suppress(OSError):
                    os.remove(path)
            return None
        if data.shape != shape or data.dtype != np.float32:
            return None
        return data

    def put(self, group: str, key: str, data: np.ndarray) -> None:
        path = self._path(group, key)
        tmp = f"{path}.{uuid.uuid4().hex[:8]}.partial"
        try:
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(data, dtype=np.float32), allow_pickle=False)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)

    def drop_group(self, group: str) -> None:
        for path in glob.glob(os.path.join(glob.escape(self.folder), f"{glob.escape(group)}__*")):
            with contextlib.suppress(OSError):
                os.remove(path)
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)  # only when empty
