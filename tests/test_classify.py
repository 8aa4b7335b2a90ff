"""Classification with a trained ONNX model: block-wise output, probabilities, layout checks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio

from lc_plugin.core.errors import Cancelled, LandCoverError
from lc_plugin.core.monitor import Monitor
from lc_plugin.io.rasters import TimeStack, read_class_raster, read_stack, write_stack
from lc_plugin.ml.classify import check_compatible, classify_file, load_model
from lc_plugin.timeseries.features import feature_block

pytest.importorskip("onnxruntime")
pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")
onnx = pytest.importorskip("onnx")

from test_train import BANDS, DATES, FAST, make_dataset  # noqa: E402  (synthetic data builder shared with test_train)

from lc_plugin.ml.boosting import fit_lightgbm, model_to_onnx  # noqa: E402
from lc_plugin.ml.train import train_classifier  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classify")
    stacks, refs, labels = make_dataset(folder)
    model = str(folder / "model.onnx")
    train_classifier(stacks, refs, model, **FAST)
    return {"folder": folder, "stacks": stacks, "labels": labels, "model": model}


def _expected(model_path: str, stack_path: str) -> tuple[np.ndarray, np.ndarray]:
    model = load_model(model_path)
    stack = read_stack(stack_path)
    feats = feature_block(stack.data[:, [stack.bands.index(b) for b in model.bands]], model.bands)
    valid = np.isfinite(feats).all(axis=1)
    labels = np.zeros(feats.shape[0], np.uint8)
    proba = np.full((feats.shape[0], len(model.classes)), np.nan, np.float32)
    lab, p = model.predict(feats[valid])
    labels[valid], proba[valid] = lab, p
    h, w = stack.data.shape[2:]
    return labels.reshape(h, w), proba.T.reshape(-1, h, w)


def test_load_model_reads_metadata(setup):
    model = load_model(setup["model"])
    assert model.classes.ids == [1, 2, 3]
    assert model.dates == DATES and model.bands == ["B03", "B04", "B08", "B11"]
    assert len(model.feature_names) == 21 and model.input_name == "features"


def test_classify_matches_direct_prediction(setup):
    out = setup["folder"] / "map.tif"
    proba_out = setup["folder"] / "proba.tif"
    updates = []
    table = classify_file(
        setup["model"], setup["stacks"][0], str(out), probabilities_out=str(proba_out), block_rows=7,
        monitor=Monitor(progress=updates.append),
    )
    labels, stored, grid = read_class_raster(str(out))
    exp_labels, exp_proba = _expected(setup["model"], setup["stacks"][0])
    np.testing.assert_array_equal(labels, exp_labels)
    assert stored == table and table.ids == [1, 2, 3]
    assert np.count_nonzero(labels == 0) == 4  # the four pixels with a missing observation
    ref = setup["labels"][0]
    assert np.mean(labels[ref != 0] == ref[ref != 0]) > 0.95
    assert len(updates) == 5 and updates[-1] == pytest.approx(100.0)  # 30 rows in blocks of 7
    with rasterio.open(out) as src:
        assert src.tags()["MODEL"] == "model.onnx" and src.dtypes[0] == "uint8" and src.nodata == 0
    with rasterio.open(proba_out) as src:
        proba = src.read()
        assert src.count == 3 and src.dtypes[0] == "float32" and np.isnan(src.nodata)
        assert list(src.descriptions) == ["cultivated land", "forest", "grassland"]
        assert (src.width, src.height) == (grid.width, grid.height)
    np.testing.assert_allclose(proba, exp_proba, atol=1e-6, equal_nan=True)
    valid = labels != 0
    assert np.all(np.isnan(proba[:, ~valid]))
    np.testing.assert_array_equal(np.array(table.ids)[np.argmax(proba[:, valid], axis=0)], labels[valid])


def test_block_size_does_not_change_the_map(setup):
    a, b = setup["folder"] / "a.tif", setup["folder"] / "b.tif"
    classify_file(setup["model"], setup["stacks"][1], str(a), block_rows=1)
    classify_file(setup["model"], setup["stacks"][1], str(b), block_rows=256)
    np.testing.assert_array_equal(read_class_raster(str(a))[0], read_class_raster(str(b))[0])


def test_band_order_and_extra_bands_do_not_matter(setup):
    stack = read_stack(setup["stacks"][0])
    order = ["B11", "SCL", "B08", "B02", "B04", "B03"]
    data = np.stack([stack.band(b) if b != "B02" else np.full_like(stack.band("B03"), 0.3) for b in order], axis=1)
    other = str(setup["folder"] / "reordered.tif")
    write_stack(other, TimeStack(data, stack.dates, order, stack.grid, stack.tags))
    a, b = setup["folder"] / "orig.tif", setup["folder"] / "reord.tif"
    classify_file(setup["model"], setup["stacks"][0], str(a))
    classify_file(setup["model"], other, str(b))
    np.testing.assert_array_equal(read_class_raster(str(a))[0], read_class_raster(str(b))[0])


def _variant(setup, name, dates=None, bands=None):
    stack = read_stack(setup["stacks"][0])
    keep = [stack.bands.index(b) for b in (bands or stack.bands)]
    path = str(setup["folder"] / name)
    write_stack(path, TimeStack(stack.data[:, keep], dates or stack.dates, bands or stack.bands, stack.grid, stack.tags))
    return path


def test_mismatched_dates_are_refused(setup):
    other = _variant(setup, "dates.tif", dates=[DATES[0], dt.date(2017, 6, 3), DATES[2]])
    out = setup["folder"] / "nodate.tif"
    proba = setup["folder"] / "nodate_p.tif"
    with pytest.raises(LandCoverError) as err:
        classify_file(setup["model"], other, str(out), probabilities_out=str(proba))
    assert err.value.argument == "stack_path"
    assert "#2: 2017-06-01 vs 2017-06-03" in str(err.value)
    assert not out.exists() and not proba.exists()


def test_missing_band_is_refused(setup):
    other = _variant(setup, "noband.tif", bands=["B03", "B04", "B08", "SCL"])
    out = setup["folder"] / "noband_map.tif"
    with pytest.raises(LandCoverError) as err:
        classify_file(setup["model"], other, str(out))
    assert err.value.argument == "stack_path" and "B11" in str(err.value)
    assert not out.exists()


def test_check_compatible_reports_date_count(setup):
    model = load_model(setup["model"])
    check_compatible(model, DATES, BANDS)
    with pytest.raises(LandCoverError) as err:
        check_compatible(model, DATES[:2], BANDS)
    assert "3 dates" in str(err.value) and "has 2" in str(err.value)
    assert "2017-04-01 … 2017-08-01" in str(err.value)


def test_load_model_refuses_other_files(setup, tmp_path):
    with pytest.raises(LandCoverError) as err:
        load_model(str(tmp_path / "missing.onnx"))
    assert err.value.argument == "model_path"
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    with pytest.raises(LandCoverError) as err:
        load_model(str(junk))
    assert err.value.argument == "model_path"
    x = np.random.default_rng(0).random((60, 3)).astype(np.float32)
    clf = fit_lightgbm(x, (x[:, 0] > 0.5).astype(np.int64) + 1, n_estimators=3, num_leaves=4)
    plain = tmp_path / "plain.onnx"
    onnx.save(model_to_onnx(clf, 3, {}), str(plain))
    with pytest.raises(LandCoverError) as err:
        load_model(str(plain))
    assert err.value.argument == "model_path" and "not one trained by lc-plugin" in str(err.value)


def test_cancel_leaves_no_output(setup):
    out = setup["folder"] / "cancel.tif"
    proba = setup["folder"] / "cancel_p.tif"
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        classify_file(setup["model"], setup["stacks"][0], str(out), probabilities_out=str(proba), block_rows=5,
                      monitor=Monitor(is_cancelled=cancelled))
    assert not out.exists() and not proba.exists()
    assert not [p for p in setup["folder"].iterdir() if "partial" in p.name]


def test_stack_without_data_is_refused(setup, tmp_path):
    """A NaN-only stack would give an all-no-data map: refused, nothing written."""
    stack = read_stack(setup["stacks"][0])
    empty = str(tmp_path / "nan.tif")
    write_stack(empty, TimeStack(np.full_like(stack.data, np.nan), stack.dates, stack.bands, stack.grid, stack.tags))
    with pytest.raises(LandCoverError, match="nothing to classify") as info:
        classify_file(setup["model"], empty, str(tmp_path / "map.tif"), probabilities_out=str(tmp_path / "p.tif"))
    assert info.value.argument == "stack_path" and sorted(p.name for p in tmp_path.iterdir()) == ["nan.tif"]
