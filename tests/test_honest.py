"""Honest results by default (issue 15): clouds refused, a split that does not leak, intervals, overlap warnings."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin
from scipy import ndimage

from lc_plugin.core.classes import make_class_table
from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import Grid, TimeStack, read_class_raster, write_class_raster, write_stack
from lc_plugin.ml.classify import classify_file
from lc_plugin.ml.train import train_classifier
from lc_plugin.validation.estimates import simple_random_intervals, stratified_intervals, wilson_interval
from lc_plugin.validation.report import accuracy_report_file, predictions_report_file
from tests.test_area import PAPER_IDS, PAPER_MAPPED, PAPER_N, PAPER_NAMES, PAPER_PIXEL_HA

pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")
pytest.importorskip("onnxruntime")

BANDS = ["B04", "B08", "B11"]
DATES = [dt.date(2017, 5, 1), dt.date(2017, 7, 1), dt.date(2017, 9, 1)]
CLEAR = {"LC_CLOUD_MASKED": "synthetic, cloud-free"}
FAST = {"samples_per_class": 300, "n_estimators": 30, "num_leaves": 15}


def _smooth(rng, shape, sigma):
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    return field / field.std()


def autocorrelated_patch(folder, index: int = 0, size: int = 100, seed: int = 7):
    """Classes in patches of ~10–20 px; every band = a weak class signal + strong spatially smooth noise.

    Neighbouring pixels share their noise, so a model can learn the neighbourhood of a training
    pixel; pixels of a block it never saw only have the weak class signal. A pixel split rewards the
    first, a block split measures the second.
    """
    rng = np.random.default_rng(seed + index)
    grid = Grid(CRS.from_epsg(32633), from_origin(500000 + 5000 * index, 5100000, 10, 10), size, size)
    a, b = _smooth(rng, (size, size), 6), _smooth(rng, (size, size), 6)
    labels = (1 + (a > 0) + (b > 0.3)).astype(np.uint8)  # classes 1, 2, 3
    means = rng.uniform(0.1, 0.4, size=(4, len(DATES), len(BANDS)))
    data = np.empty((len(DATES), len(BANDS), size, size), np.float32)
    for t in range(len(DATES)):
        for k in range(len(BANDS)):
            signal = 0.2 * means[labels, t, k]
            data[t, k] = 0.25 + signal + 0.05 * _smooth(rng, (size, size), 3) + rng.normal(0, 0.002, (size, size))
    stack, ref = str(folder / f"stack_{index}.tif"), str(folder / f"ref_{index}.tif")
    write_stack(stack, TimeStack(data, DATES, BANDS, grid, CLEAR))
    write_class_raster(ref, labels, grid, make_class_table({1: "forest", 2: "grassland", 3: "water"}))
    return stack, ref


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("honest")
    stack, ref = autocorrelated_patch(folder)
    out = {}
    for split in ("pixel", "block"):
        model, csv = str(folder / f"{split}.onnx"), str(folder / f"{split}.csv")
        summary = train_classifier([stack], [ref], model, split=split, predictions_out=csv, cv_folds=3, **FAST)
        doc = predictions_report_file(csv, str(folder / f"{split}.json"), str(folder / f"{split}.html"), model_path=model).document
        out[split] = {"summary": summary, "doc": doc, "model": model, "html": (folder / f"{split}.html").read_text(encoding="utf-8")}
    out.update(folder=folder, stack=stack, ref=ref)
    return out


def test_pixel_split_is_measurably_optimistic_and_the_report_leads_with_the_honest_estimate(splits):
    pixel, block = splits["pixel"], splits["block"]
    oa_pixel, oa_block = pixel["summary"].test_overall_accuracy, block["summary"].test_overall_accuracy
    cv = block["summary"].cv
    # Measured: pixel split 0.751, block split 0.608, 3-fold block CV 0.577 ± 0.037 (seeded, deterministic).
    assert oa_pixel - oa_block > 0.1
    assert oa_pixel - cv["overall_accuracy_mean"] > 0.1 and abs(oa_block - cv["overall_accuracy_mean"]) < 0.1
    # Block split: no test pixel in a training block; the held-out figure leads.
    b = block["doc"]["assessment"]
    assert block["doc"]["overlap_with_training"] == {"pixels": 0, "of": block["doc"]["n"]}
    assert b["lead"]["label"] == "Held-out overall accuracy" and b["lead"]["why"].startswith("The honest estimate")
    assert not b["warnings"] and "Spatial cross-validation" in b["others"][0]
    assert any("20 × 20-pixel blocks held out" in m for m in b["methods"])
    # Pixel split: test pixels sit in training blocks; the report warns and leads with the spatial CV.
    p = pixel["doc"]["assessment"]
    overlap = pixel["doc"]["overlap_with_training"]
    assert overlap["pixels"] > 0.9 * overlap["of"]
    assert p["lead"]["label"].startswith("Spatial cross-validation (3 folds by block of 20×20 px)")
    assert p["lead"]["value"]["value"] == pytest.approx(pixel["summary"].cv["overall_accuracy_mean"])
    assert "optimistic" in p["warnings"][0] and "optimistic" in p["others"][0]
    assert "individual pixels held out at random" in " ".join(p["methods"])
    for key in ("pixel", "block"):
        page = splits[key]["html"]
        assert page.index('class="lead"') < page.index("Headline figures") < page.index("Error matrix")
        assert "/tmp" not in page and str(splits["folder"]) not in json.dumps(splits[key]["doc"])


def test_map_report_warns_when_it_overlaps_the_training_sample(splits, tmp_path):
    block = splits["block"]
    same = str(tmp_path / "same.tif")
    classify_file(block["model"], splits["stack"], same)
    doc = accuracy_report_file(same, splits["ref"], str(tmp_path / "same.json"), str(tmp_path / "same.html"), model_path=block["model"]).document
    assert doc["overlap_with_training"]["pixels"] > 0
    assert "blocks the model was trained on" in doc["assessment"]["warnings"][0]
    assert doc["assessment"]["lead"]["label"].startswith("Spatial cross-validation")  # not the in-sample 0.9+
    # Another patch, never trained on: no overlap, no warning, the map's own figure leads.
    other_stack, other_ref = autocorrelated_patch(tmp_path, index=3)
    other = str(tmp_path / "other.tif")
    classify_file(block["model"], other_stack, other)
    doc = accuracy_report_file(other, other_ref, str(tmp_path / "o.json"), str(tmp_path / "o.html"), model_path=block["model"]).document
    assert doc["overlap_with_training"] == {"pixels": 0, "of": doc["n"]} and not doc["assessment"]["warnings"]
    assert doc["assessment"]["lead"]["label"] == "Overall accuracy of this map"


def _cloudy_single_date(folder):
    """One date, the right half under a bright cloud (reflectance 0.6 in every band), never cloud-masked."""
    grid = Grid(CRS.from_epsg(32633), from_origin(500000, 5100000, 10, 10), 40, 30)
    labels = np.where(np.arange(40)[None, :] % 20 < 10, 1, 2).repeat(30, axis=0).astype(np.uint8)
    data = np.where(labels == 1, 0.05, 0.3)[None, None].repeat(len(BANDS), axis=1).astype(np.float32)
    data[..., 20:] = 0.6
    stack, ref, mask = str(folder / "cloudy.tif"), str(folder / "ref.tif"), str(folder / "clm.tif")
    write_stack(stack, TimeStack(data, DATES[:1], BANDS, grid))
    write_class_raster(ref, labels, grid, make_class_table({1: "water", 2: "grassland"}))
    clm = np.zeros((1, 1, 30, 40), np.uint8)
    clm[..., 20:] = 1
    write_stack(mask, TimeStack(clm, DATES[:1], ["CLM"], grid, {"METHOD": "scl"}), kind="cloudmask", nodata=255)
    return stack, ref, mask


def test_single_date_cloudy_stack_is_refused_accepted_when_asked_and_reported(tmp_path):
    stack, ref, mask = _cloudy_single_date(tmp_path)
    model = str(tmp_path / "m.onnx")
    with pytest.raises(LandCoverError) as err:
        train_classifier([stack], [ref], model, cv_folds=0, **FAST)
    assert err.value.argument == "stack_paths" and "never cloud-masked" in str(err.value) and "Cloud masks" in str(err.value)
    assert not (tmp_path / "m.onnx").exists()
    # Accepted when asked: the model and its report say so.
    csv = str(tmp_path / "t.csv")
    train_classifier([stack], [ref], model, cv_folds=0, allow_unmasked=True, split="pixel", predictions_out=csv, **FAST)
    doc = predictions_report_file(csv, str(tmp_path / "r.json"), str(tmp_path / "r.html"), model_path=model).document
    assert "ALLOW_UNMASKED" in doc["assessment"]["warnings"][0]
    assert "never cloud-masked (accepted with ALLOW_UNMASKED)" in " ".join(doc["assessment"]["methods"])
    with pytest.raises(LandCoverError) as err:
        classify_file(model, stack, str(tmp_path / "map.tif"))
    assert err.value.argument == "stack_path" and not (tmp_path / "map.tif").exists()
    # With its cloud mask: cloudy pixels are neither sampled nor classified.
    masked_csv = str(tmp_path / "masked.csv")
    train_classifier([stack], [ref], model, cv_folds=0, mask_paths=[mask], split="pixel", predictions_out=masked_csv, **FAST)
    cols = np.loadtxt(masked_csv, delimiter=",", skiprows=1)[:, 2]
    assert cols.max() < 20
    classify_file(model, stack, str(tmp_path / "map.tif"), mask_path=mask)
    labels = read_class_raster(str(tmp_path / "map.tif"))[0]
    assert (labels[:, 20:] == 0).all() and (labels[:, :20] > 0).all()


def test_wilson_interval_by_hand():
    p, low, high = wilson_interval(8, 10, z=1.96)
    # p = 0.8; centre = (0.8 + 1.96²/20) / (1 + 1.96²/10) = 0.71674; half = 1.96 √(0.016 + 1.96²/400) / 1.38416 = 0.22658
    assert p == 0.8 and low == pytest.approx(0.49016, abs=1e-5) and high == pytest.approx(0.94332, abs=1e-5)
    assert wilson_interval(0, 0) == (None, None, None)
    assert wilson_interval(5, 5, z=1.96)[2] == 1.0  # stays inside [0, 1]
    cm = np.array([[8, 2], [0, 0]])  # class 2 never mapped, never referenced
    iv = simple_random_intervals(cm, [1, 2])
    assert iv["overall_accuracy"]["value"] == 0.8 and iv["overall_accuracy"]["low"] == pytest.approx(0.4901, abs=2e-4)
    assert iv["per_class"][1]["producers_accuracy"] == {"value": None, "low": None, "high": None}  # n/a, not 0
    assert iv["per_class"][1]["users_accuracy"]["value"] == 0.0  # mapped twice, never right: 0 is defined


def test_stratified_intervals_reproduce_olofsson_et_al():
    # Rows = reference, columns = map (the report's orientation): the paper's table transposed.
    iv = stratified_intervals(PAPER_N.T, PAPER_IDS, PAPER_MAPPED, PAPER_PIXEL_HA, PAPER_NAMES)
    assert iv["design"] == "stratified by map class"
    users = [c["users_accuracy"] for c in iv["per_class"]]
    assert [u["value"] for u in users] == pytest.approx([0.88, 0.73, 0.93, 0.96], abs=5e-3)
    assert [u["high"] - u["value"] for u in users] == pytest.approx([0.07, 0.10, 0.04, 0.02], abs=6e-3)
    producers = [c["producers_accuracy"]["value"] for c in iv["per_class"]]
    assert producers == pytest.approx([0.75, 0.85, 0.93, 0.96], abs=5e-3)
    oa = iv["overall_accuracy"]
    assert oa["value"] == pytest.approx(0.95, abs=5e-3) and oa["high"] - oa["value"] == pytest.approx(0.02, abs=5e-3)
    assert iv["per_class"][0]["area_ha"] == pytest.approx(21_158, abs=1)
