"""Training on a small synthetic two-patch data set: ONNX export, metadata, splits and errors."""

from __future__ import annotations

import csv
import datetime as dt
import json

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.classes import SLOVENIA_LEGEND, make_class_table
from lc_plugin.core.errors import Cancelled, LandCoverError
from lc_plugin.core.monitor import Monitor
from lc_plugin.io.rasters import Grid, TimeStack, read_stack, write_class_raster, write_stack
from lc_plugin.ml.boosting import fit_lightgbm, model_to_onnx
from lc_plugin.ml.train import train_classifier
from lc_plugin.timeseries.features import feature_block, feature_layout

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")

BANDS = ["B03", "B04", "B08", "B11", "SCL"]
DATES = [dt.date(2017, 4, 1), dt.date(2017, 6, 1), dt.date(2017, 8, 1)]
H, W = 30, 40
CLASS_IDS = (1, 2, 3)


def class_means(n_dates: int, n_bands: int) -> dict[int, np.ndarray]:
    """Well separated (T, B) reflectance signatures per class."""
    rng = np.random.default_rng(123)
    return {c: rng.uniform(0.05, 0.5, size=(n_dates, n_bands)).astype(np.float32) for c in range(1, 10)}


def make_patch(folder, index: int, *, dates=DATES, bands=BANDS, class_ids=CLASS_IDS, table_ids=None, nan_class=None, seed=0):
    """Write stack_<index>.tif and ref_<index>.tif; returns their paths and the labels."""
    rng = np.random.default_rng(seed + index)
    grid = Grid(CRS.from_epsg(32633), from_origin(500000 + 10000 * index, 5100000, 10, 10), W, H)
    cols = np.arange(W)[np.newaxis, :].repeat(H, axis=0)
    labels = np.asarray(class_ids, np.uint8)[(cols * len(class_ids)) // W]
    noise = rng.random((H, W)) < 0.15
    labels[noise] = rng.choice(np.asarray(class_ids, np.uint8), size=int(noise.sum()))
    labels[0] = 0  # first row unlabelled
    means = class_means(len(dates), len(bands))
    data = np.empty((len(dates), len(bands), H, W), np.float32)
    for c in class_ids:
        data[..., labels == c] = means[c][..., np.newaxis]
    data[..., labels == 0] = means[9][..., np.newaxis]
    data += rng.normal(0, 0.01, size=data.shape).astype(np.float32)
    if "SCL" in bands:
        data[:, bands.index("SCL")] = 4
    data[1, 0, 5, :4] = np.nan  # a few missing observations
    if nan_class is not None:
        data[0, 0][labels == nan_class] = np.nan
    stack_path = str(folder / f"stack_{index}.tif")
    ref_path = str(folder / f"ref_{index}.tif")
    write_stack(stack_path, TimeStack(data, list(dates), list(bands), grid, {"LC_CLOUD_MASKED": "synthetic, cloud-free"}))
    table = make_class_table({c: SLOVENIA_LEGEND[c][0] for c in (table_ids or class_ids)})
    write_class_raster(ref_path, labels, grid, table)
    return stack_path, ref_path, labels


def make_dataset(folder, n_patches: int = 2, **kwargs):
    pairs = [make_patch(folder, i, **kwargs) for i in range(n_patches)]
    return [p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs]


FAST = {"samples_per_class": 150, "n_estimators": 25, "num_leaves": 8}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    stacks, refs, labels = make_dataset(folder)
    model = str(folder / "model.onnx")
    preds = str(folder / "preds.csv")
    summary = train_classifier(stacks, refs, model, predictions_out=preds, **FAST)
    return {"stacks": stacks, "refs": refs, "labels": labels, "model": model, "preds": preds, "summary": summary}


def _session(model_or_path):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    data = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def test_train_writes_onnx_with_metadata(trained):
    summary = trained["summary"]
    assert summary.classes.ids == [1, 2, 3]
    assert summary.n_features == len(feature_layout(DATES, BANDS)) == 3 * 7
    assert summary.n_train > 0 and summary.n_test > 0
    assert summary.test_overall_accuracy > 0.95
    model = onnx.load(trained["model"])
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["lc_model_type"] == "lightgbm-pixel"
    assert [c["name"] for c in json.loads(meta["lc_classes"])] == ["cultivated land", "forest", "grassland"]
    assert json.loads(meta["lc_feature_names"]) == feature_layout(DATES, BANDS)
    assert json.loads(meta["lc_dates"]) == [d.isoformat() for d in DATES]
    assert json.loads(meta["lc_bands"]) == ["B03", "B04", "B08", "B11"]  # SCL is not a feature
    params = json.loads(meta["lc_params"])
    # The default split holds out whole 20×20-pixel blocks (issue 15; it was by pixel).
    assert params["samples_per_class"] == 150 and params["split"] == "block" and params["block_px"] == 20 and params["seed"] == 42
    metrics = json.loads(meta["lc_test_metrics"])
    assert metrics["n_train"] == summary.n_train and metrics["n_test"] == summary.n_test
    assert metrics["overall_accuracy"] == summary.test_overall_accuracy
    # 150 per class sampled, about a quarter of the blocks held out.
    for c in ("1", "2", "3"):
        assert metrics["train_class_counts"][c] + metrics["test_class_counts"][c] == 150 and metrics["test_class_counts"][c] > 0
    assert 0.1 < metrics["n_test"] / 450 < 0.45
    sess = _session(trained["model"])
    assert [i.name for i in sess.get_inputs()] == ["features"]
    assert sess.get_inputs()[0].shape[1] == summary.n_features
    assert [o.name for o in sess.get_outputs()] == ["label", "probabilities"]


def test_predictions_csv_matches_onnx_model(trained):
    with open(trained["preds"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["source", "row", "col", "y_true", "y_pred", "p_1", "p_2", "p_3"]
    assert len(rows) == trained["summary"].n_test
    stacks = [read_stack(p) for p in trained["stacks"]]
    feats = np.stack([feature_block(stacks[int(r["source"])].data[:, :, int(r["row"]), int(r["col"])][:, :, None, None], BANDS)[0]
                      for r in rows])
    assert np.isfinite(feats).all()
    label, proba = _session(trained["model"]).run(None, {"features": feats})
    np.testing.assert_array_equal(label, [int(r["y_pred"]) for r in rows])
    np.testing.assert_allclose(proba, [[float(r[f"p_{c}"]) for c in (1, 2, 3)] for r in rows], atol=1e-5)
    truth = [trained["labels"][int(r["source"])][int(r["row"]), int(r["col"])] for r in rows]
    np.testing.assert_array_equal(truth, [int(r["y_true"]) for r in rows])
    acc = np.mean([r["y_true"] == r["y_pred"] for r in rows])
    assert acc == pytest.approx(trained["summary"].test_overall_accuracy)
    assert {int(r["source"]) for r in rows} == {0, 1}


@pytest.mark.parametrize("class_ids", [(1, 2, 3), (2, 8)])
def test_onnx_matches_native_lightgbm(tmp_path, class_ids):
    stack_paths, _, labels = make_dataset(tmp_path, class_ids=class_ids)
    x_all, y_all = [], []
    for path, lab in zip(stack_paths, labels):
        stack = read_stack(path)
        x_all.append(feature_block(stack.data, stack.bands))
        y_all.append(lab.ravel())
    x, y = np.concatenate(x_all), np.concatenate(y_all)
    fit = (y != 0) & np.isfinite(x).all(axis=1)
    rng = np.random.default_rng(1)
    pick = rng.choice(np.flatnonzero(fit), size=500, replace=False)
    clf = fit_lightgbm(x[pick], y[pick].astype(np.int64), n_estimators=40, num_leaves=15, seed=3)
    onx = model_to_onnx(clf, x.shape[1], {"lc_model_type": "lightgbm-pixel"})
    label, proba = _session(onx).run(None, {"features": x})
    # Every pixel, also unlabelled ones and ones with NaN features (LightGBM routes NaN the same way).
    np.testing.assert_array_equal(label, clf.predict(x))
    np.testing.assert_allclose(proba, clf.predict_proba(x), atol=1e-5)
    assert label.dtype == np.int64 and proba.shape == (x.shape[0], len(class_ids))


def test_training_is_deterministic(trained, tmp_path):
    again = str(tmp_path / "again.onnx")
    preds = str(tmp_path / "again.csv")
    train_classifier(trained["stacks"], trained["refs"], again, predictions_out=preds, **FAST)
    with open(preds) as a, open(trained["preds"]) as b:
        assert a.read() == b.read()
    assert onnx.load(again).graph == onnx.load(trained["model"]).graph


def test_missing_class_error_and_drop_option(tmp_path):
    stacks, refs, _ = make_dataset(tmp_path, table_ids=(1, 2, 3, 6))
    model = tmp_path / "m.onnx"
    with pytest.raises(LandCoverError) as err:
        train_classifier(stacks, refs, str(model), **FAST)
    assert err.value.argument == "reference_paths"
    assert "6 'wetlands'" in str(err.value) and "drop classes without samples" in str(err.value)
    assert not model.exists()
    messages = []
    summary = train_classifier(stacks, refs, str(model), drop_empty_classes=True, monitor=Monitor(log=messages.append), **FAST)
    assert summary.classes.ids == [1, 2, 3]
    assert [(c.id, c.name) for c in summary.dropped_classes] == [(6, "wetlands")]
    assert any("wetlands" in m for m in messages)
    meta = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert [c["id"] for c in json.loads(meta["lc_classes"])] == [1, 2, 3]


def test_class_without_valid_data_counts_as_empty(tmp_path):
    stacks, refs, _ = make_dataset(tmp_path, nan_class=3)
    with pytest.raises(LandCoverError) as err:
        train_classifier(stacks, refs, str(tmp_path / "m.onnx"), **FAST)
    assert err.value.argument == "reference_paths" and "3 'grassland'" in str(err.value)


def test_patch_split_holds_out_whole_patches(tmp_path):
    stacks, refs, _ = make_dataset(tmp_path, n_patches=3)
    preds = str(tmp_path / "p.csv")
    model = str(tmp_path / "m.onnx")
    summary = train_classifier(stacks, refs, model, split="patch", test_fraction=0.3, predictions_out=preds, **FAST)
    params = json.loads({p.key: p.value for p in onnx.load(model).metadata_props}["lc_params"])
    assert len(params["test_patches"]) == 1  # ceil(0.3 * 3)
    with open(preds, newline="") as fh:
        sources = {int(r["source"]) for r in csv.DictReader(fh)}
    assert sources == set(params["test_patches"])
    assert summary.n_test > 0 and summary.test_overall_accuracy > 0.9


def test_pixels_are_drawn_from_every_patch(tmp_path):
    """Per-patch quotas: with 4 patches each class's sample comes from all of them, and each class
    still gets exactly samples_per_class pixels (train + test)."""
    stacks, refs, _ = make_dataset(tmp_path, n_patches=4)
    preds = str(tmp_path / "p.csv")
    summary = train_classifier(stacks, refs, str(tmp_path / "m.onnx"), test_fraction=0.5, predictions_out=preds, **FAST)
    with open(preds, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {int(r["source"]) for r in rows} == {0, 1, 2, 3}
    assert summary.n_train + summary.n_test == FAST["samples_per_class"] * len(summary.classes)


def test_patch_split_needs_two_patches(tmp_path):
    stacks, refs, _ = make_dataset(tmp_path, n_patches=1)
    with pytest.raises(LandCoverError) as err:
        train_classifier(stacks, refs, str(tmp_path / "m.onnx"), split="patch", **FAST)
    assert err.value.argument == "split"


def test_stacks_must_share_dates_and_bands(tmp_path):
    s0, r0, _ = make_patch(tmp_path, 0)
    s1, r1, _ = make_patch(tmp_path, 1, dates=[DATES[0], DATES[1], dt.date(2017, 9, 1)])
    with pytest.raises(LandCoverError) as err:
        train_classifier([s0, s1], [r0, r1], str(tmp_path / "m.onnx"), **FAST)
    assert err.value.argument == "stack_paths"
    assert "stack 2" in str(err.value) and "2017-08-01 vs 2017-09-01" in str(err.value)


def test_reference_must_be_on_the_stack_grid(tmp_path):
    stacks, refs, _ = make_dataset(tmp_path)
    with pytest.raises(LandCoverError) as err:
        train_classifier(stacks, [refs[0], refs[0]], str(tmp_path / "m.onnx"), **FAST)
    assert err.value.argument == "reference_paths" and "Pair 2" in str(err.value)
    with pytest.raises(LandCoverError) as err:
        train_classifier(stacks, refs[:1], str(tmp_path / "m.onnx"), **FAST)
    assert err.value.argument == "reference_paths"


def test_needs_two_classes(tmp_path):
    stacks, refs, _ = make_dataset(tmp_path, class_ids=(2,))
    with pytest.raises(LandCoverError) as err:
        train_classifier(stacks, refs, str(tmp_path / "m.onnx"), **FAST)
    assert err.value.argument == "reference_paths" and "at least 2 classes" in str(err.value)


def test_bad_parameters(tmp_path):
    stacks, refs, _ = make_dataset(tmp_path, n_patches=1)
    with pytest.raises(LandCoverError) as err:
        train_classifier(stacks, refs, str(tmp_path / "m.onnx"), test_fraction=1.0)
    assert err.value.argument == "test_fraction"
    with pytest.raises(LandCoverError) as err:
        train_classifier(stacks, refs, stacks[0])
    assert err.value.argument == "model_out"


def test_cancel_during_fit_writes_nothing(tmp_path):
    stacks, refs, _ = make_dataset(tmp_path)
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 10  # after the scans, inside LightGBM's boosting loop

    model, preds = tmp_path / "m.onnx", tmp_path / "p.csv"
    with pytest.raises(Cancelled):
        train_classifier(stacks, refs, str(model), predictions_out=str(preds), monitor=Monitor(is_cancelled=cancelled), **FAST)
    assert not model.exists() and not preds.exists()


def test_real_patch_ndvi_smoke(testpatch, tmp_path):
    """Cheap end-to-end run on real data: NDVI of the 29 fully cloud-free dates + the real LULC reference."""
    from rasterio.transform import from_bounds

    from lc_plugin.io.rasters import read_class_raster
    from lc_plugin.ml.classify import classify_file
    from lc_plugin.reference.rasterize import rasterize_reference_file

    tp = testpatch / "TestEOPatch"
    ndvi = np.load(tp / "data" / "NDVI.npy", allow_pickle=False)
    valid = np.load(tp / "mask" / "IS_VALID.npy", allow_pickle=False)
    keep = np.flatnonzero(valid.reshape(valid.shape[0], -1).all(axis=1))
    stamps = json.loads((tp / "timestamps.json").read_text())
    dates = [dt.date.fromisoformat(stamps[i][:10]) for i in keep]
    grid = Grid(CRS.from_epsg(32633), from_bounds(465181.0522318204, 5079244.8912012065, 466180.53145382757, 5080254.63349641,
                                                  100, 101), 100, 101)
    stack = str(tmp_path / "ndvi.tif")
    write_stack(stack, TimeStack(np.moveaxis(ndvi[keep], -1, 1).astype(np.float32), dates, ["NDVI"], grid, {"LC_CLOUD_MASKED": "dates clear in IS_VALID only"}))
    ref = str(tmp_path / "ref.tif")
    rasterize_reference_file(str(tp / "vector_timeless" / "LULC.gpkg"), "LULC_ID", stack, ref)
    model = str(tmp_path / "m.onnx")
    summary = train_classifier([stack], [ref], model, samples_per_class=1000, n_estimators=100, cv_folds=0)
    assert summary.classes.ids == [1, 2, 3, 4, 8]
    assert summary.n_features == len(dates) and summary.test_overall_accuracy > 0.75  # measured 0.852
    out = str(tmp_path / "map.tif")
    classify_file(model, stack, out)
    labels, truth = read_class_raster(out)[0], read_class_raster(ref)[0]
    assert np.mean(labels[truth > 0] == truth[truth > 0]) > 0.85  # measured 0.934 (training pixels included)


def test_onnx_splits_exactly_like_lightgbm_at_thresholds():
    """Features lying exactly on float32(threshold), where float32 rounding moved the threshold up,
    take LightGBM's branch in the exported model too (the export rounds thresholds down)."""
    rng = np.random.default_rng(1)
    x = rng.random((3000, 3)).astype(np.float32)
    y = (x[:, 0] > 0.3).astype(np.int64) + (x[:, 0] > 0.7) + 1
    clf = fit_lightgbm(x, y, n_estimators=30, num_leaves=8)
    splits = []
    todo = [info["tree_structure"] for info in clf.booster_.dump_model()["tree_info"]]
    while todo:
        node = todo.pop()
        if "split_index" in node:
            splits.append((node["split_feature"], node["threshold"]))
            todo += [node["left_child"], node["right_child"]]
    rounded_up = [(f, t) for f, t in splits if float(np.float32(t)) > t]
    assert len(rounded_up) > 50
    probes = [x]
    for f, t in rounded_up:
        rows = x[rng.integers(len(x), size=5)].copy()
        rows[:, f] = np.float32(t)
        probes.append(rows)
    probe = np.concatenate(probes)
    label, proba = _session(model_to_onnx(clf, 3, {})).run(None, {"features": probe})
    native = clf.booster_.predict(probe)
    np.testing.assert_array_equal(label, np.array([1, 2, 3])[native.argmax(axis=1)])
    # Without the rounding these rows differ by up to ~0.2 in probability.
    np.testing.assert_allclose(proba, native, rtol=0, atol=1e-6)
