"""Exact, fast evaluation of a binary LightGBM model's trees with numba (the s2cloudless model).

Why not LightGBM's own predict: it walks one tree at a time for one pixel, and each step is an
unpredictable branch on a node fetched from a large model; s2cloudless's 170 trees × 770
leaves make that ~3,000 dependent, mispredicted steps per pixel. Here:

- each feature is replaced once per pixel by its bin, the number of the model's split
  thresholds on that feature that lie below it (uint8; at most 255 thresholds per feature).
  ``x <= t_k`` exactly when ``bin(x) <= k`` (``t_k`` the k-th smallest threshold), and bins
  are found by comparing ``double(x)`` with the double thresholds, as LightGBM compares, so
  every split goes the same way as LightGBM's;
- the trees are walked tree-major over blocks of pixels (one tree's nodes stay in L1 cache),
  eight pixels in lockstep with branch-free steps (child = left + (bin > bound)), so the CPU
  overlaps eight independent walks instead of waiting on one;
- leaves point to themselves, so a pixel that reached its leaf idles until its seven lanes
  are done; the scores are summed tree by tree in LightGBM's order, so they are bit-identical.

numba is optional: ``available()`` says whether this path can run; without it callers use
onnxruntime or LightGBM.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..core.deps import require

# A leaf's bound: a uint8 bin is never above it, so the walk stays put.
_LEAF = 255
# Pixels per block: their bins (10 B each) and scores stay in L1/L2 while all trees walk them.
_BLOCK = 2048
# Pixels walked together; more lanes beyond 8 gained nothing measurable.
_LANES = 8
# Pixels per thread-pool task (whole blocks).
_TASK = 8 * _BLOCK
_MAX_EDGES = 255


@dataclass(frozen=True)
class BinnedForest:
    """A binary LightGBM model as flat node tables over per-feature threshold bins.

    Node ``i``: go to ``child[i]`` when ``bin[feature[i]] <= bound[i]`` and to ``child[i] + 1``
    otherwise; leaves have ``bound == 255`` and ``child`` pointing to themselves, and carry
    ``value``. ``edges[f]``: feature ``f``'s sorted distinct thresholds, padded with +inf.
    """

    edges: np.ndarray  # (n_features, 255) float64
    feature: np.ndarray  # (nodes,) uint8
    bound: np.ndarray  # (nodes,) uint8
    child: np.ndarray  # (nodes,) uint32
    value: np.ndarray  # (nodes,) float64
    roots: np.ndarray  # (trees,) int64
    sigmoid: float  # the binary objective's sigmoid factor


def _fields(block: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in block.splitlines() if "=" in line)


def forest_from_lightgbm(model_text: str) -> BinnedForest:
    """Node tables of a LightGBM model file's text (``Booster.model_to_string()``).

    Raises ValueError for what this kernel does not evaluate exactly: other objectives than
    binary, categorical or zero-as-missing splits, linear trees, > 255 thresholds on a feature.
    """
    head, _, body = model_text.partition("\nend of trees")[0].partition("\nTree=")
    info = _fields(head)
    objective = info.get("objective", "").split()
    if not objective or objective[0] != "binary" or info.get("num_class", "1") != "1":
        raise ValueError(f"only binary LightGBM models are supported, not '{info.get('objective')}'")
    sigmoid = float(next((o.split(":")[1] for o in objective[1:] if o.startswith("sigmoid:")), 1.0))
    n_features = int(info["max_feature_idx"]) + 1
    trees = [_fields(block) for block in ("Tree=" + body).split("\nTree=")]
    trees = [t for t in trees if "num_leaves" in t]
    if any(t.get("is_linear", "0") != "0" for t in trees):
        raise ValueError("linear trees are not supported")

    def ints(tree: dict, key: str) -> np.ndarray:
        return np.array(tree.get(key, "").split(), dtype=np.int64)

    splits = [np.array(t.get("threshold", "").split(), dtype=np.float64) for t in trees]
    feats = [ints(t, "split_feature") for t in trees]
    for t in trees:
        kinds = ints(t, "decision_type")
        if np.any(kinds & 1) or np.any((kinds >> 2) & 3 == 1):
            raise ValueError("categorical or zero-as-missing splits are not supported")
    all_feats, all_splits = np.concatenate(feats + [np.zeros(0, np.int64)]), np.concatenate(splits + [np.zeros(0)])
    edges = np.full((n_features, _MAX_EDGES), np.inf)
    bounds = np.zeros(all_splits.size, dtype=np.int64)
    for f in range(n_features):
        on_f = all_feats == f
        distinct = np.unique(all_splits[on_f])
        if distinct.size > _MAX_EDGES:
            raise ValueError(f"feature {f} has {distinct.size} thresholds; at most {_MAX_EDGES} fit in a uint8 bin")
        edges[f, : distinct.size] = distinct
        bounds[on_f] = np.searchsorted(distinct, all_splits[on_f])

    # Tree with m splits → 2m + 1 slots: the root in slot 0, split j's children in 2j+1, 2j+2.
    sizes = [2 * s.size + 1 for s in splits]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    feature = np.zeros(starts[-1], dtype=np.uint8)
    bound = np.full(starts[-1], _LEAF, dtype=np.uint8)
    child = np.arange(starts[-1], dtype=np.uint32)
    value = np.zeros(starts[-1])
    first = 0
    for i, t in enumerate(trees):
        base, m = starts[i], splits[i].size
        leaves = np.array(t["leaf_value"].split(), dtype=np.float64)
        if m == 0:  # a single leaf
            value[base] = leaves[0]
            continue
        kids = np.stack([ints(t, "left_child"), ints(t, "right_child")], axis=1)  # (m, 2)
        kid_slot = base + 1 + 2 * np.arange(m)[:, None] + np.arange(2)
        split_slot = np.empty(m, dtype=np.int64)
        split_slot[0] = base
        inner = kids >= 0
        split_slot[kids[inner]] = kid_slot[inner]
        value[kid_slot[~inner]] = leaves[~kids[~inner]]
        feature[split_slot] = feats[i]
        bound[split_slot] = bounds[first : first + m]
        child[split_slot] = base + 1 + 2 * np.arange(m)
        first += m
    return BinnedForest(edges, feature, bound, child, value, starts[:-1].copy(), sigmoid)


def available() -> bool:
    """Whether numba is installed, so this path can run."""
    try:
        require("numba")
    except Exception:  # not installed, or a broken install (llvmlite raises its own errors)
        return False
    return True


def _walk_blocks(x, first, last, edges, feature, bound, child, value, roots, sigmoid, out):
    """Probabilities of pixels ``first:last`` of ``x`` into ``out``, block by block (compiled by numba)."""
    n_features = x.shape[1]
    for start in range(first, last, _BLOCK):
        m = min(last, start + _BLOCK) - start
        padded = -(-m // _LANES) * _LANES
        bins = np.zeros((padded, n_features), dtype=np.uint8)
        for i in range(m):
            for f in range(n_features):
                v = np.float64(x[start + i, f])
                pos = 0
                for half in (128, 64, 32, 16, 8, 4, 2, 1):  # branch-free binary search: 4× faster than with ifs
                    pos += half * (edges[f, pos + half - 1] < v)
                bins[i, f] = pos
        score = np.zeros(padded)
        for root in roots:
            for p in range(0, padded, _LANES):
                b0, b1, b2, b3, b4, b5, b6, b7 = bins[p], bins[p + 1], bins[p + 2], bins[p + 3], bins[p + 4], bins[p + 5], bins[p + 6], bins[p + 7]
                s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = root
                while True:
                    for _ in range(4):  # leaves stay put, so a few extra steps are harmless
                        s0 = child[s0] + (b0[feature[s0]] > bound[s0])
                        s1 = child[s1] + (b1[feature[s1]] > bound[s1])
                        s2 = child[s2] + (b2[feature[s2]] > bound[s2])
                        s3 = child[s3] + (b3[feature[s3]] > bound[s3])
                        s4 = child[s4] + (b4[feature[s4]] > bound[s4])
                        s5 = child[s5] + (b5[feature[s5]] > bound[s5])
                        s6 = child[s6] + (b6[feature[s6]] > bound[s6])
                        s7 = child[s7] + (b7[feature[s7]] > bound[s7])
                    if min(bound[s0], bound[s1], bound[s2], bound[s3], bound[s4], bound[s5], bound[s6], bound[s7]) == _LEAF:
                        break
                score[p] += value[s0]
                score[p + 1] += value[s1]
                score[p + 2] += value[s2]
                score[p + 3] += value[s3]
                score[p + 4] += value[s4]
                score[p + 5] += value[s5]
                score[p + 6] += value[s6]
                score[p + 7] += value[s7]
        for i in range(m):
            out[start + i] = 1.0 / (1.0 + math.exp(-sigmoid * score[i]))


@functools.lru_cache(maxsize=1)
def _kernel() -> Callable[..., None]:
    """``_walk_blocks`` compiled; numba keeps the machine code in its disk cache between runs."""
    numba = require("numba")
    return numba.njit(nogil=True, cache=True, boundscheck=False)(_walk_blocks)


def predict_proba(forest: BinnedForest, pixels: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Probability of the positive class for (n, n_features) float32 pixels (all finite), float32.

    Equal to LightGBM's ``Booster.predict`` on the same float32 values up to the final rounding
    to float32 (the raw scores are bit-identical). Runs on ``threads`` threads (all cores by default).
    """
    if pixels.ndim != 2 or pixels.shape[1] != forest.edges.shape[0]:
        raise ValueError(f"expected (n, {forest.edges.shape[0]}) pixels, got shape {pixels.shape}")
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    kernel = _kernel()
    n = pixels.shape[0]
    out = np.empty(n, dtype=np.float32)
    args = (forest.edges, forest.feature, forest.bound, forest.child, forest.value, forest.roots, forest.sigmoid, out)
    starts = range(0, n, _TASK)
    threads = max(1, min(threads or os.cpu_count() or 1, len(starts)))
    if threads == 1:
        kernel(pixels, 0, n, *args)
        return out
    # Many small tasks, not one per thread: a thread slowed by other processes then takes fewer.
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lc-trees") as pool:
        for done in [pool.submit(kernel, pixels, a, min(n, a + _TASK), *args) for a in starts]:
            done.result()
    return out
