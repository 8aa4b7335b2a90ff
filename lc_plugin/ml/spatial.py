"""Spatial blocks: how held-out pixels are kept away from training pixels, and where a model was trained.

Neighbouring pixels of a land-cover map are nearly copies of each other (same field, same forest
stand), so a test pixel next to a training pixel tests memory, not generalisation: a split by
pixel is optimistic. Splitting by square blocks of ``block_px`` pixels (or by whole patches) keeps
neighbours on one side. ``group_folds`` deals the blocks into folds balanced by class, for the
held-out split and for cross-validation alike.

The model keeps its *training footprint*: per training patch its grid and a bit per block that
holds a training pixel, so a later accuracy report can tell when the pixels it evaluates lie in
the training blocks (an in-sample, optimistic figure) and say so.
"""

from __future__ import annotations

import base64
import json

import numpy as np
from rasterio.transform import Affine

from ..core.errors import DataError
from ..core.monitor import Monitor
from ..io.rasters import Grid

DEFAULT_BLOCK_PX = 20  # 200 m at 10 m: wider than most fields and forest stands in the eo-learn patch
DEFAULT_CV_FOLDS = 5


def block_ids(flat_index: np.ndarray, patch: np.ndarray, widths: np.ndarray, heights: np.ndarray, block_px: int) -> np.ndarray:
    """One int64 id per pixel (patch × block), for pixels given as flat indices within their patch."""
    cols_of_blocks = -(-widths[patch] // block_px)
    rows_of_blocks = -(-heights[patch] // block_px)
    row, col = flat_index // widths[patch], flat_index % widths[patch]
    per_patch = np.max(cols_of_blocks * rows_of_blocks) if patch.size else 1
    return patch.astype(np.int64) * int(per_patch) + (row // block_px) * cols_of_blocks + col // block_px


def group_folds(groups: np.ndarray, y: np.ndarray, folds: int, seed: int) -> tuple[np.ndarray, int]:
    """Fold (0..folds-1) of every sample, whole groups per fold, and the number of groups.

    Groups are ordered by their majority class (random within a class) and dealt round-robin,
    which spreads each class over the folds as evenly as the groups allow.
    """
    ids, inverse = np.unique(groups, return_inverse=True)
    majority = np.array([np.bincount(y[inverse == g]).argmax() for g in range(ids.size)])
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(ids.size), majority))
    fold_of_group = np.empty(ids.size, dtype=np.int64)
    fold_of_group[order] = np.arange(ids.size) % folds
    return fold_of_group[inverse], int(ids.size)


def training_footprint(grids: list[Grid], patch: np.ndarray, flat_index: np.ndarray, block_px: int) -> list[dict]:
    """Per patch with training pixels: its grid and the blocks holding them (bits, base64)."""
    out = []
    for p in np.unique(patch):
        g = grids[int(p)]
        rows, cols = -(-g.height // block_px), -(-g.width // block_px)
        local = flat_index[patch == p]
        used = np.zeros(rows * cols, dtype=bool)
        used[(local // g.width // block_px) * cols + (local % g.width) // block_px] = True
        out.append(
            {
                "patch": int(p),
                "crs": g.crs.to_wkt() if g.crs else None,
                "transform": list(g.transform)[:6],
                "width": g.width,
                "height": g.height,
                "block_px": int(block_px),
                "blocks": base64.b64encode(np.packbits(used).tobytes()).decode("ascii"),
                "pixels": int(local.size),
            }
        )
    return out


def in_training_blocks(footprint: list[dict], grid: Grid, where: np.ndarray) -> int:
    """How many of the pixels ``where`` ((H, W) bool on ``grid``) lie in a block the model was trained on."""
    from rasterio.crs import CRS

    rows, cols = np.nonzero(where)
    if rows.size == 0:
        return 0
    xs, ys = grid.transform * (cols + 0.5, rows + 0.5)
    xs, ys = np.asarray(xs), np.asarray(ys)
    hits = np.zeros(rows.size, dtype=bool)
    for entry in footprint:
        if entry.get("crs") and grid.crs and CRS.from_wkt(entry["crs"]) != grid.crs:
            continue
        inv = ~Affine(*entry["transform"])
        c, r = inv * (xs, ys)
        c, r = np.floor(c).astype(np.int64), np.floor(r).astype(np.int64)
        inside = (c >= 0) & (c < entry["width"]) & (r >= 0) & (r < entry["height"])
        b = entry["block_px"]
        n_cols = -(-entry["width"] // b)
        bits = _block_bits(entry)
        idx = np.where(inside, (r // b) * n_cols + c // b, 0)
        hits |= inside & bits[np.minimum(idx, bits.size - 1)]
    return int(hits.sum())


def _block_bits(entry: dict) -> np.ndarray:
    return np.unpackbits(np.frombuffer(base64.b64decode(entry["blocks"]), dtype=np.uint8)).astype(bool)


def positions_in_training_blocks(footprint: list[dict], positions: np.ndarray) -> int:
    """How many (patch, row, col) positions (the test predictions CSV's source,row,col) lie in a training block."""
    hits = 0
    for entry in footprint:
        mine = positions[positions[:, 0] == entry.get("patch", -1)]
        if mine.size == 0:
            continue
        b = entry["block_px"]
        n_cols = -(-entry["width"] // b)
        hits += int(_block_bits(entry)[(mine[:, 1] // b) * n_cols + mine[:, 2] // b].sum())
    return hits


def dumps_footprint(footprint: list[dict]) -> str:
    return json.dumps(footprint, separators=(",", ":"))


def patch_and_local(flat: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Patch index and flat index within the patch of pixels numbered across patches (``offsets``: first index of each)."""
    patch = np.searchsorted(offsets, flat, side="right") - 1
    return patch, flat - offsets[patch]


def spatial_groups(flat: np.ndarray, offsets: np.ndarray, grids: list[Grid], block_px: int) -> np.ndarray:
    """The block (patch × ``block_px`` square) of every sampled pixel."""
    patch, local = patch_and_local(flat, offsets)
    widths = np.array([g.width for g in grids])
    heights = np.array([g.height for g in grids])
    return block_ids(local, patch, widths, heights, block_px)


def block_split(
    sampled: np.ndarray, labels: np.ndarray, offsets: np.ndarray, grids: list[Grid], block_px: int, test_fraction: float, seed: int, monitor: Monitor
) -> np.ndarray:
    """Which sampled pixels are held out: whole blocks, about ``test_fraction`` of them, balanced by class.

    Blocks holding the only samples of a class stay in training (the model must know every class);
    the test set then lacks that class and the report says so.
    """
    if test_fraction <= 0:
        return np.zeros(sampled.size, dtype=bool)
    groups = spatial_groups(sampled, offsets, grids, block_px)
    folds = max(2, int(round(1.0 / test_fraction)))
    fold, n_groups = group_folds(groups, labels, folds, seed)
    if n_groups < 2:
        raise DataError(
            f"The sampled pixels fall in a single {block_px}×{block_px}-pixel block, so no block can be held out; "
            "use a smaller block size, more patches, or the patch split.",
            argument="block_px",
        )
    in_test = fold == 0
    for class_id in np.unique(labels):
        of_class = labels == class_id
        if not (of_class & ~in_test).any():
            keep = np.isin(groups, groups[of_class])
            in_test &= ~keep
            monitor.info(f"Class {int(class_id)} has samples in held-out blocks only; its {int(np.unique(groups[of_class]).size)} block(s) stay in training.")
    return in_test
