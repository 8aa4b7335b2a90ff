"""Accuracy metrics of a land-cover map against reference labels (numpy only).

The numbers match scikit-learn's (``accuracy_score``, ``cohen_kappa_score``,
``precision_recall_fscore_support(zero_division=0)``, ``f1_score``) but are computed from one
confusion matrix, so a map of millions of pixels can be accumulated block by block, and every
value is a finite float that JSON can hold. Degenerate cases (a class never predicted, a class
absent from the reference, a single class) give 0 rather than NaN and leave a note that says why.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.errors import DataError


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


def ratio(num, den) -> np.ndarray:
    """num / den (arrays, broadcast) with 0 where den == 0: scikit-learn's zero_division=0, and an empty stratum's share."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def accuracy_metrics(cm: np.ndarray, labels: list[int], names: list[str] | None = None) -> dict:
    """Overall accuracy, Cohen's kappa, F1 scores, IoU and per-class precision/recall from a confusion matrix.

    Precision is the user's accuracy, recall the producer's accuracy. Macro F1 averages the
    classes that occur in the reference or in the predictions (scikit-learn's default set);
    weighted F1 weights each class by its reference support. MIoU (mean intersection over union)
    averages the per-class IoU over the same classes as macro F1. Everything is a plain int/float.
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
        raise DataError(  # no argument is at fault: the data are
            "No pixel where both the map and the reference have a class, so accuracy cannot be computed. "
            "Check that the reference overlaps the classified area and uses the same class ids."
        )

    tp = np.diag(cm)
    support = cm.sum(axis=1)  # reference count per class
    predicted = cm.sum(axis=0)
    precision = ratio(tp, predicted)
    recall = ratio(tp, support)
    # 2TP / (2TP + FP + FN) equals 2PR / (P + R) and is 0 (not NaN) when TP = 0.
    f1 = ratio(2 * tp, support + predicted)
    # Intersection over union (Jaccard) TP / (TP + FP + FN), the segmentation literature's score.
    iou = ratio(tp, support + predicted - tp)

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
        notes.append("No reference and no predicted samples for " + ", ".join(absent) + ": precision, recall and F1 reported as 0 and left out of macro F1.")

    # Exact integer arithmetic for kappa: po = sum(tp)/n, pe = sum(row*col)/n².
    agree = int(tp.sum())
    chance = sum(int(r) * int(c) for r, c in zip(support.tolist(), predicted.tolist()))
    if chance == n * n:
        kappa = 0.0
        notes.append(
            "The reference and the map each contain a single, identical class, so chance agreement is 1: " "Cohen's kappa is undefined and reported as 0."
        )
    else:
        kappa = (n * agree - chance) / (n * n - chance)

    macro_f1 = float(f1[present].mean()) if present.any() else 0.0
    miou = float(iou[present].mean()) if present.any() else 0.0
    weighted_f1 = float((f1 * support).sum() / n)
    recall_matrix = ratio(cm, support[:, np.newaxis])
    precision_matrix = ratio(cm, predicted[np.newaxis, :])

    per_class = [
        {
            "id": labels[i],
            "name": names[i],
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "iou": float(iou[i]),
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
        "miou": miou,
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_recall": recall_matrix.tolist(),
        "confusion_matrix_precision": precision_matrix.tolist(),
        "labels": labels,
        "names": names,
        "notes": notes,
    }


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates and thresholds of a binary problem (scikit-learn's ``roc_curve``
    with ``drop_intermediate=False``): one point per distinct score, from (0, 0) to (1, 1).

    The first threshold is +inf (nothing predicted positive). Needs positives and negatives.
    """
    y = np.asarray(y_true).ravel().astype(bool)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but scores has {s.size}")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # last index of each run of equal scores
    tps = np.cumsum(y)[last].astype(np.float64)
    fps = (last + 1) - tps
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    if tps[-1] == 0 or fps[-1] == 0:
        raise ValueError("ROC needs both positive and negative samples")
    return fps / fps[-1], tps / tps[-1], np.r_[np.inf, s[last]]


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Area under a curve by the trapezoidal rule (x increasing)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def _thin_curve(fpr: np.ndarray, tpr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop points on straight segments between their neighbours (the curve and its area are unchanged)."""
    if fpr.size <= 2:
        return fpr, tpr
    keep = np.r_[True, np.logical_or(np.diff(fpr, 2) != 0, np.diff(tpr, 2) != 0), True]
    return fpr[keep], tpr[keep]


def roc_one_vs_rest(y_true: np.ndarray, proba: np.ndarray, labels: list[int], names: list[str] | None = None) -> dict:
    """One-vs-rest ROC curve and AUC per class from (N, K) class probabilities in ``labels`` order.

    A class without positive (or without negative) samples has no ROC: its AUC is None with a
    note. ``macro_auc`` averages the defined AUCs, ``weighted_auc`` weights them by support
    (scikit-learn's ``roc_auc_score(multi_class="ovr")`` when every class is present).
    """
    y_true = np.asarray(y_true).ravel()
    proba = np.asarray(proba, dtype=np.float64)
    labels = [int(v) for v in labels]
    names = [str(v) for v in names] if names is not None else [f"class {v}" for v in labels]
    if proba.ndim != 2 or proba.shape != (y_true.size, len(labels)):
        raise ValueError(f"probabilities of shape {proba.shape} do not match {y_true.size} samples × {len(labels)} classes")
    per_class: list[dict[str, Any]] = []
    notes: list[str] = []
    for i, cid in enumerate(labels):
        pos = y_true == cid
        support = int(pos.sum())
        entry: dict[str, Any] = {"id": cid, "name": names[i], "support": support, "auc": None, "fpr": [], "tpr": []}
        if 0 < support < y_true.size and np.all(np.isfinite(proba[:, i])):
            fpr, tpr, _ = roc_curve(pos, proba[:, i])
            entry["auc"] = auc(fpr, tpr)
            fpr, tpr = _thin_curve(fpr, tpr)
            entry["fpr"], entry["tpr"] = fpr.tolist(), tpr.tolist()
        else:
            why = "no test sample of this class" if support == 0 else "only this class in the test samples"
            notes.append(f"Class '{names[i]}' (id {cid}): no ROC curve ({why}), AUC reported as null.")
        per_class.append(entry)
    defined = [c for c in per_class if c["auc"] is not None]
    macro = float(np.mean([c["auc"] for c in defined])) if defined else None
    weight = sum(c["support"] for c in defined)
    weighted = float(sum(c["auc"] * c["support"] for c in defined) / weight) if weight else None
    return {"per_class": per_class, "macro_auc": macro, "weighted_auc": weighted, "notes": notes}
