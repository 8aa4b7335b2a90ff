"""Class-balanced pixel sampling: real reference data is heavily imbalanced (forest ≫ water),
so training takes at most N pixels of each class instead of all pixels."""

from __future__ import annotations

import numpy as np

from .classes import NODATA_CLASS


def stratified_sample(labels: np.ndarray, usable: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted flat indices of at most ``per_class`` usable pixels of every class (all of a smaller class).

    ``labels`` and ``usable`` have the same shape; pixels with label 0 (no data) are never drawn.
    """
    if labels.shape != usable.shape:
        raise ValueError(f"labels {labels.shape} and usable {usable.shape} differ in shape")
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0, got {per_class}")
    flat_labels = labels.ravel()
    candidates = np.flatnonzero(usable.ravel() & (flat_labels != NODATA_CLASS))
    if candidates.size == 0 or per_class == 0:
        return np.empty(0, dtype=np.int64)
    cand_labels = flat_labels[candidates]
    order = np.argsort(cand_labels, kind="stable")
    sorted_labels = cand_labels[order]
    _, starts, counts = np.unique(sorted_labels, return_index=True, return_counts=True)
    chosen = []
    for start, count in zip(starts, counts):
        members = candidates[order[start : start + count]]
        if count <= per_class:
            chosen.append(members)
        else:
            chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)
