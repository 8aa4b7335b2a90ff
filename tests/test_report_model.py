"""The full report from a trained model: ROC/AUC, feature importance, class counts, cross-validation."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lc_plugin.ml.train import train_classifier
from lc_plugin.validation.report import accuracy_report_file, predictions_report_file

pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")
from test_train import BANDS, DATES, FAST, make_dataset  # noqa: E402

IMG_RE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"')


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report-model")
    stacks, refs, _ = make_dataset(folder, n_patches=2)
    summary = train_classifier(stacks, refs, str(folder / "model.onnx"), predictions_out=str(folder / "test.csv"), cv_folds=3, **FAST)
    return folder, stacks, refs, summary


def _strict(path) -> dict:
    def no_constants(name):
        raise AssertionError(f"{name} in JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=no_constants)


def test_train_writes_importance_and_cv(model):
    folder, _, _, summary = model
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(folder / "model.onnx")).metadata_props}
    importance = json.loads(meta["lc_feature_importance"])
    n_features = len(json.loads(meta["lc_feature_names"]))
    assert len(importance["gain"]) == len(importance["split"]) == n_features
    assert sum(importance["split"]) > 0
    cv = json.loads(meta["lc_cv"])
    assert cv == summary.cv
    assert cv["k"] == 3 and len(cv["folds"]) == 3 and cv["group"].startswith("block")
    assert 0 <= cv["overall_accuracy_std"] <= 0.5 and cv["overall_accuracy_mean"] > 0.8


def test_predictions_report_with_model(model, tmp_path):
    folder, _, _, _ = model
    doc = predictions_report_file(str(folder / "test.csv"), str(tmp_path / "r.json"), str(tmp_path / "r.html"), model_path=str(folder / "model.onnx")).document
    saved = _strict(tmp_path / "r.json")
    assert saved["overall_accuracy"] == doc["overall_accuracy"]
    # AUC per class against scikit-learn on the CSV's probabilities.
    data = np.genfromtxt(folder / "test.csv", delimiter=",", names=True)
    for c in saved["roc"]["per_class"]:
        assert c["auc"] == pytest.approx(roc_auc_score(data["y_true"] == c["id"], data[f"p_{c['id']}"]))
    # Training counts from the model; importance as (dates × features per date).
    assert sum(c["count"] for c in saved["training_counts"]) > 0
    fi = saved["feature_importance"]
    assert fi["dates"] == [d.isoformat() for d in DATES]
    assert fi["features"] == [b for b in BANDS if b != "SCL"] + ["NDVI", "NDWI", "NDBI"]
    assert len(fi["gain"]) == len(fi["dates"]) * len(fi["features"])

    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    alts = [alt for _, alt in IMG_RE.findall(page)]
    assert alts == [
        "Confusion matrix (pixel counts)",
        "Confusion matrix normalised by reference (recall)",
        "Confusion matrix normalised by prediction (precision)",
        "ROC curves one-vs-rest",
        "Training samples per class",
        "Feature importance (gain)",
        "Feature importance (split)",
        "Cross-validation folds",
    ]
    assert all(base64.b64decode(d).startswith(b"\x89PNG") for d, _ in IMG_RE.findall(page))
    # Every headline and per-class number of the JSON is on the page.
    for key in ("overall_accuracy", "kappa", "weighted_f1", "macro_f1"):
        assert f"{saved[key]:.4f}" in page
    for c in saved["per_class"]:
        for key in ("precision", "recall", "f1"):
            assert f"{c[key]:.4f}" in page
    for c in saved["roc"]["per_class"]:
        assert f"<td>{c['auc']:.4f}</td>" in page
    for c in saved["training_counts"]:
        assert f"<td>{c['count']:,}</td>" in page
    cv = saved["cross_validation"]
    assert f"{cv['overall_accuracy_mean']:.4f} ± {cv['overall_accuracy_std']:.4f}" in page
    assert f"{cv['weighted_f1_mean']:.4f} ± {cv['weighted_f1_std']:.4f}" in page


def test_map_report_says_roc_is_unavailable(model, tmp_path):
    folder, _, refs, _ = model
    doc = accuracy_report_file(refs[0], refs[0], str(tmp_path / "m.json"), str(tmp_path / "m.html"), model_path=str(folder / "model.onnx")).document
    assert doc["roc"] is None and "unavailable" in doc["roc_note"]
    assert "unavailable for a map-vs-reference report" in (tmp_path / "m.html").read_text(encoding="utf-8")
    assert _strict(tmp_path / "m.json")["feature_importance"]["gain"]


def test_cv_needs_enough_groups(tmp_path):
    from lc_plugin.core.errors import LandCoverError
    from lc_plugin.ml.boosting import cross_validate

    x = np.zeros((10, 2), np.float32)
    y = np.array([1, 2] * 5)
    with pytest.raises(LandCoverError) as info:
        cross_validate(x, y, np.zeros(10), 3, {}, 0)
    assert info.value.argument == "cv_folds"


def test_map_report_with_probability_raster(model, tmp_path):
    import rasterio

    from lc_plugin.ml.classify import classify_file

    folder, stacks, refs, _ = model
    classify_file(str(folder / "model.onnx"), stacks[1], str(tmp_path / "map.tif"), probabilities_out=str(tmp_path / "p.tif"))
    doc = accuracy_report_file(
        str(tmp_path / "map.tif"), refs[1], str(tmp_path / "m.json"), str(tmp_path / "m.html"), probabilities_path=str(tmp_path / "p.tif")
    ).document
    with rasterio.open(refs[1]) as src:
        ref = src.read(1).ravel()
    with rasterio.open(tmp_path / "map.tif") as src:
        pred = src.read(1).ravel()
    with rasterio.open(tmp_path / "p.tif") as src:
        proba = src.read().reshape(src.count, -1).T
    keep = (ref != 0) & (pred != 0)
    for i, c in enumerate(doc["roc"]["per_class"]):
        assert c["auc"] == pytest.approx(roc_auc_score(ref[keep] == c["id"], proba[keep, i]), abs=1e-6)
    assert "ROC curves one-vs-rest" in (tmp_path / "m.html").read_text(encoding="utf-8")
    _strict(tmp_path / "m.json")


def test_single_class_predictions_report(tmp_path):
    """One class only: kappa and ROC undefined, reported as 0/null with notes; never NaN."""
    csv_in = tmp_path / "one.csv"
    csv_in.write_text("source,row,col,y_true,y_pred,p_1\n" + "".join(f"0,{i},0,1,1,1.0\n" for i in range(5)))
    doc = predictions_report_file(str(csv_in), str(tmp_path / "o.json"), str(tmp_path / "o.html")).document
    saved = _strict(tmp_path / "o.json")
    assert saved["overall_accuracy"] == 1.0 and saved["kappa"] == 0.0
    assert saved["roc"]["macro_auc"] is None and any("no ROC curve" in n for n in doc["notes"])
    assert "ROC curves one-vs-rest" not in (tmp_path / "o.html").read_text(encoding="utf-8")
