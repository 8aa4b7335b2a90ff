"""Accuracy metrics checked against scikit-learn and a hand-computed example."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    f1_score,
    jaccard_score,
    precision_recall_fscore_support,
)
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from lc_plugin.core.errors import LandCoverError
from lc_plugin.validation.metrics import accuracy_metrics, confusion_matrix


def _check_against_sklearn(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int]) -> dict:
    cm = confusion_matrix(y_true, y_pred, labels)
    keep = np.isin(y_true, labels) & np.isin(y_pred, labels)
    t, p = y_true[keep], y_pred[keep]
    np.testing.assert_array_equal(cm, sk_confusion_matrix(t, p, labels=labels))
    m = accuracy_metrics(cm, labels)
    assert m["n"] == t.size
    assert m["overall_accuracy"] == pytest.approx(accuracy_score(t, p))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(t, p), abs=1e-12)
    prec, rec, f1, sup = precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    assert [c["precision"] for c in m["per_class"]] == pytest.approx(prec.tolist())
    assert [c["recall"] for c in m["per_class"]] == pytest.approx(rec.tolist())
    assert [c["f1"] for c in m["per_class"]] == pytest.approx(f1.tolist())
    assert [c["support"] for c in m["per_class"]] == sup.tolist()
    assert [c["predicted"] for c in m["per_class"]] == [int((p == v).sum()) for v in labels]
    assert m["macro_f1"] == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
    assert m["weighted_f1"] == pytest.approx(f1_score(t, p, labels=labels, average="weighted", zero_division=0))
    json.dumps(m, allow_nan=False)
    return m


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_random_labels_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = [1, 2, 3, 5, 8]
    y_true = rng.choice([0, *labels], size=2000)
    # A mostly-right map: 70 % correct, the rest random, some no data and an unknown id.
    y_pred = np.where(rng.random(2000) < 0.7, y_true, rng.choice([0, 9, *labels], size=2000))
    m = _check_against_sklearn(y_true, y_pred, labels)
    assert m["notes"] == []
    assert m["labels"] == labels and m["names"] == [f"class {v}" for v in labels]
    recall = np.array(m["confusion_matrix_recall"])
    np.testing.assert_allclose(recall.sum(axis=1), 1.0)


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_never_predicted_and_absent_from_reference(seed):
    rng = np.random.default_rng(seed)
    labels = [1, 2, 3, 4]
    y_true = rng.choice([1, 2, 3], size=500)  # 4 never in the reference
    y_pred = rng.choice([1, 2, 4], size=500)  # 3 never predicted
    m = _check_against_sklearn(y_true, y_pred, labels)
    by_id = {c["id"]: c for c in m["per_class"]}
    assert by_id[3]["precision"] == 0.0 and by_id[3]["predicted"] == 0
    assert by_id[4]["recall"] == 0.0 and by_id[4]["support"] == 0
    assert any("(id 3) was never predicted" in n for n in m["notes"])
    assert any("(id 4) has no reference samples" in n for n in m["notes"])
    assert m["confusion_matrix_recall"][3] == [0.0, 0.0, 0.0, 0.0]


def test_class_in_neither_is_left_out_of_macro_f1():
    y_true = np.array([1, 1, 2, 2])
    y_pred = np.array([1, 2, 2, 2])
    m = accuracy_metrics(confusion_matrix(y_true, y_pred, [1, 2, 7]), [1, 2, 7], ["a", "b", "c"])
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m["per_class"][2] == {"id": 7, "name": "c", "precision": 0.0, "recall": 0.0, "f1": 0.0, "iou": 0.0, "support": 0, "predicted": 0}
    assert any("'c' (id 7)" in n and "macro F1" in n for n in m["notes"])


def test_hand_computed_two_classes():
    # reference \ predicted:  water  forest
    #   water                  40      10
    #   forest                  5      45
    cm = np.array([[40, 10], [5, 45]])
    m = accuracy_metrics(cm, [5, 2], ["water", "forest"])
    assert m["n"] == 100
    assert m["overall_accuracy"] == pytest.approx(0.85)
    # pe = (50*45 + 50*55) / 100² = 0.5 → kappa = (0.85 - 0.5) / 0.5 = 0.7
    assert m["kappa"] == pytest.approx(0.7)
    water, forest = m["per_class"]
    assert (water["id"], water["name"]) == (5, "water")
    assert water["precision"] == pytest.approx(40 / 45)
    assert water["recall"] == pytest.approx(0.8)
    assert water["f1"] == pytest.approx(2 * 40 / (2 * 40 + 10 + 5))
    assert forest["precision"] == pytest.approx(45 / 55)
    assert forest["recall"] == pytest.approx(0.9)
    assert forest["f1"] == pytest.approx(90 / 105)
    assert (water["support"], water["predicted"], forest["support"], forest["predicted"]) == (50, 45, 50, 55)
    assert m["macro_f1"] == pytest.approx((80 / 95 + 90 / 105) / 2)
    assert m["weighted_f1"] == pytest.approx(0.5 * 80 / 95 + 0.5 * 90 / 105)
    # IoU = TP / (TP + FP + FN): water 40 / (40 + 5 + 10), forest 45 / (45 + 10 + 5)
    assert water["iou"] == pytest.approx(40 / 55)
    assert forest["iou"] == pytest.approx(45 / 60)
    assert m["miou"] == pytest.approx((40 / 55 + 45 / 60) / 2)
    assert m["confusion_matrix"] == [[40, 10], [5, 45]]
    assert m["confusion_matrix_recall"] == [[0.8, 0.2], [0.1, 0.9]]


def test_confusion_matrix_follows_label_order_and_ignores_unknown():
    y_true = np.array([[3, 1], [1, 0]])
    y_pred = np.array([[1, 1], [3, 1]])
    cm = confusion_matrix(y_true, y_pred, [3, 1])
    assert cm.dtype == np.int64
    assert cm.tolist() == [[0, 1], [1, 1]]


def test_empty_input_is_a_clear_error():
    cm = confusion_matrix(np.array([0, 0, 4]), np.array([1, 0, 0]), [1, 2])
    assert cm.sum() == 0
    with pytest.raises(LandCoverError, match="No pixel where both the map and the reference") as info:
        accuracy_metrics(cm, [1, 2])
    assert info.value.argument is None


def test_single_class_kappa_is_zero_with_note():
    cm = confusion_matrix(np.full(10, 2), np.full(10, 2), [1, 2])
    m = accuracy_metrics(cm, [1, 2])
    assert m["overall_accuracy"] == 1.0
    assert m["kappa"] == 0.0
    assert any("kappa" in n for n in m["notes"])
    assert all(math.isfinite(v) for c in m["per_class"] for v in (c["precision"], c["recall"], c["f1"]))
    json.dumps(m, allow_nan=False)


def test_normalised_matrices_match_sklearn():
    from sklearn.metrics import confusion_matrix as skcm

    rng = np.random.default_rng(11)
    t = rng.choice([1, 2, 3], size=400)
    p = np.where(rng.random(400) < 0.7, t, rng.choice([1, 2, 3], size=400))
    m = accuracy_metrics(confusion_matrix(t, p, [1, 2, 3]), [1, 2, 3])
    np.testing.assert_allclose(m["confusion_matrix_recall"], skcm(t, p, labels=[1, 2, 3], normalize="true"))
    np.testing.assert_allclose(m["confusion_matrix_precision"], skcm(t, p, labels=[1, 2, 3], normalize="pred"))
    # A never-predicted class: its column is 0, not NaN.
    m = accuracy_metrics(confusion_matrix(t, np.where(p == 3, 1, p), [1, 2, 3]), [1, 2, 3])
    assert [row[2] for row in m["confusion_matrix_precision"]] == [0.0, 0.0, 0.0]
    json.dumps(m, allow_nan=False)


def test_roc_matches_sklearn():
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc_curve

    from lc_plugin.validation.metrics import auc, roc_curve, roc_one_vs_rest

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, size=500)
    s = np.round(rng.random(500) * 0.6 + 0.4 * y, 2)  # ties on purpose
    fpr, tpr, thr = roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])
    assert auc(fpr, tpr) == pytest.approx(roc_auc_score(y, s))

    labels = [1, 2, 5]
    t = rng.choice(labels, size=600)
    logits = rng.normal(size=(600, 3)) + 1.5 * (t[:, None] == np.array(labels))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    roc = roc_one_vs_rest(t, proba, labels, ["a", "b", "c"])
    for i, c in enumerate(roc["per_class"]):
        assert c["auc"] == pytest.approx(roc_auc_score(t == labels[i], proba[:, i]))
        assert auc(c["fpr"], c["tpr"]) == pytest.approx(c["auc"])  # thinning keeps the area
    assert roc["macro_auc"] == pytest.approx(roc_auc_score(t, proba, multi_class="ovr", average="macro", labels=labels))
    assert roc["weighted_auc"] == pytest.approx(roc_auc_score(t, proba, multi_class="ovr", average="weighted", labels=labels))

    # A class absent from the test samples, and a single class: AUC null with a note, never NaN.
    roc = roc_one_vs_rest(np.array([1, 1, 2, 2]), np.array([[0.9, 0.1, 0], [0.6, 0.4, 0], [0.3, 0.7, 0], [0.5, 0.5, 0]]), [1, 2, 3])
    assert roc["per_class"][2]["auc"] is None and roc["per_class"][0]["auc"] == 1.0
    assert any("no test sample" in n for n in roc["notes"])
    roc = roc_one_vs_rest(np.array([1, 1]), np.array([[1.0], [1.0]]), [1])
    assert roc["macro_auc"] is None and roc["weighted_auc"] is None
    json.dumps(roc, allow_nan=False)


def test_iou_matches_scikit_learn_jaccard():
    rng = np.random.default_rng(3)
    t = rng.integers(1, 5, 500)
    p = np.where(rng.random(500) < 0.6, t, rng.integers(1, 5, 500))
    m = accuracy_metrics(confusion_matrix(t, p, [1, 2, 3, 4]), [1, 2, 3, 4])
    assert [c["iou"] for c in m["per_class"]] == pytest.approx(jaccard_score(t, p, labels=[1, 2, 3, 4], average=None).tolist())
    assert m["miou"] == pytest.approx(jaccard_score(t, p, average="macro"))
