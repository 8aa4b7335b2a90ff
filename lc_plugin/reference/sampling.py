"""Class-balanced pixel sampling: real reference data is heavily imbalanced (forest ≫ water),
so training takes at most N pixels of each class instead of all pixels.

Over many patches the sample is drawn patch by patch (``allocate_quotas`` then
``sample_with_quotas``), so no step ever holds more than one patch's labels."""

from __future__ import annotations

import numpy as np

from ..core.classes import NODATA_CLASS


def allocate_quotas(counts: np.ndarray, per_class: int) -> np.ndarray:
    """Split each class's ``per_class`` pixels over patches in proportion to their usable pixels.

    ``counts`` is (patches, classes) usable pixels. Every class gets ``min(per_class, total)``
    pixels; patch shares are rounded by largest remainder (ties to the earlier patch), never above
    what the patch has. With one patch this is ``min(per_class, count)``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    totals = counts.sum(axis=0)
    wanted = np.minimum(totals, per_class)
    with np.errstate(invalid="ignore", divide="ignore"):
        exact = np.where(totals > 0, counts * (wanted / np.maximum(totals, 1)), 0.0)
    quotas = np.minimum(np.floor(exact).astype(np.int64), counts)
    short = wanted - quotas.sum(axis=0)
    remainder = np.where(quotas < counts, exact - quotas, -1.0)
    for c in np.flatnonzero(short > 0):
        order = np.argsort(-remainder[:, c], kind="stable")
        quotas[order[: short[c]], c] += 1
    return quotas


def sample_with_quotas(labels: np.ndarray, usable: np.ndarray, quotas: np.ndarray, class_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted flat indices of ``quotas[i]`` usable pixels of class ``class_ids[i]`` in one patch.

    A class whose quota equals its usable count is taken whole; otherwise drawn without replacement.
    """
    flat_labels = labels.ravel()
    candidates = np.flatnonzero(usable.ravel() & (flat_labels != NODATA_CLASS))
    cand_labels = flat_labels[candidates]
    chosen = []
    for class_id, quota in zip(class_ids, quotas):
        if quota <= 0:
            continue
        members = candidates[cand_labels == class_id]
        chosen.append(members if quota >= members.size else rng.choice(members, size=int(quota), replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.empty(0, dtype=np.int64)
