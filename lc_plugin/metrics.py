"""Accuracy metrics of a land-cover map against reference labels (numpy only).

The numbers match scikit-learn's (``accuracy_score``, ``cohen_kappa_score``,
``precision_recall_fscore_support(zero_division=0)``, ``f1_score``) but are computed from one
confusion matrix, so a map of millions of pixels can be accumulated block by block, and every
value is a finite float that JSON can hold. Degenerate cases (a class never predicted, a class
absent from the reference, a single class) give 0 rather than NaN and leave a note that says why.
"""

from __future__ import annotations

import numpy as np

from .errors import LandCoverError


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int]) -> np.ndarray:
    """(K, K) int64 counts, rows = reference, columns = predicted, in the order of ``labels``.

    Pairs where either label is not in ``labels`` (e.g. 0 = no data) are ignored.
    """
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} values but y_pred has {y_pred.size}")
    lab = np.asarray(list(labels), dtype=np.int64)
    k = lab.size
    if k == 0:
        return np.zeros((0, 0), dtype=np.int64)
    if np.unique(lab).size != k:
        raise ValueError(f"labels contain duplicates: {list(labels)}")
    order = np.argsort(lab, kind="stable")
    sorted_lab = lab[order]

    def index(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = values.astype(np.int64, copy=False)
        pos = np.clip(np.searchsorted(sorted_lab, v), 0, k - 1)
        return order[pos], sorted_lab[pos] == v

    ti, t_ok = index(y_true)
    pi, p_ok = index(y_pred)
    ok = t_ok & p_ok
    flat = ti[ok] * k + pi[ok]
    return np.bincount(flat, minlength=k * k).astype(np.int64).reshape(k, k)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (scikit-learn's zero_division=0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def accuracy_metrics(cm: np.ndarray, labels: list[int], names: list[str] | None = None) -> dict:
    """Overall accuracy, Cohen's kappa, F1 scores and per-class precision/recall from a confusion matrix.

    Precision is the user's accuracy, recall the producer's accuracy. Macro F1 averages the
    classes that occur in the reference or in the predictions (scikit-learn's default set);
    weighted F1 weights each class by its reference support. Everything is a plain int/float.
    """
    cm = np.asarray(cm, dtype=np.int64)
    labels = [int(v) for v in labels]
    k = len(labels)
    if cm.shape != (k, k):
        raise ValueError(f"confusion matrix of shape {cm.shape} does not match {k} labels")
    names = [str(v) for v in names] if names is not None else [f"class {v}" for v in labels]
    if len(names) != k:
        raise ValueError(f"{len(names)} names for {k} labels")
    n = int(cm.sum())
    if n == 0:
        raise LandCoverError(
            "No pixel where both the map and the reference have a class, so accuracy cannot be computed. "
            "Check that the reference overlaps the classified area and uses the same class ids.",
            "REFERENCE",
        )

    tp = np.diag(cm)
    support = cm.sum(axis=1)  # reference count per class
    predicted = cm.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    # 2TP / (2TP + FP + FN) equals 2PR / (P + R) and is 0 (not NaN) when TP = 0.
    f1 = _ratio(2 * tp, support + predicted)

    notes: list[str] = []
    present = (support > 0) | (predicted > 0)
    for i in range(k):
        label = f"Class '{names[i]}' (id {labels[i]})"
        if support[i] > 0 and predicted[i] == 0:
            notes.append(f"{label} was never predicted: its precision is reported as 0.")
        elif support[i] == 0 and predicted[i] > 0:
            notes.append(f"{label} has no reference samples: its recall is reported as 0.")
    absent = [f"'{names[i]}' (id {labels[i]})" for i in range(k) if not present[i]]
    if absent:
        notes.append(
            "No reference and no predicted samples for " + ", ".join(absent)
            + ": precision, recall and F1 reported as 0 and left out of macro F1."
        )

    # Exact integer arithmetic for kappa: po = sum(tp)/n, pe = sum(row*col)/n².
    agree = int(tp.sum())
    chance = sum(int(r) * int(c) for r, c in zip(support.tolist(), predicted.tolist()))
    if chance == n * n:
        kappa = 0.0
        notes.append(
            "The reference and the map each contain a single, identical class, so chance agreement is 1: "
            "Cohen's kappa is undefined and reported as 0."
        )
    else:
        kappa = (n * agree - chance) / (n * n - chance)

    macro_f1 = float(f1[present].mean()) if present.any() else 0.0
    weighted_f1 = float((f1 * support).sum() / n)
    recall_matrix = _ratio(cm, support[:, np.newaxis])

    per_class = [
        {
            "id": labels[i],
            "name": names[i],
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
            "predicted": int(predicted[i]),
        }
        for i in range(k)
    ]
    return {
        "n": n,
        "overall_accuracy": agree / n,
        "kappa": float(kappa),
        "macro_f1": macro_f1,
        "weighted_f1": weighted_f1,
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_recall": recall_matrix.tolist(),
        "labels": labels,
        "names": names,
        "notes": notes,
    }
