#!/usr/bin/env python3
"""Train → classify → report on the real eo-learn test patch (Slovenia, real NDVI, real LULC reference).

    .venv/bin/python scripts/real_patch_report.py [--data ../shared/data/eo-learn-testpatch] [--out build/real-patch]

Builds an NDVI time stack (the only spectral series the patch has for all 68 dates) and a cloud
mask stack from IS_VALID, interpolates 2017 on a 16-day grid, rasterizes LULC.gpkg, trains
LightGBM with Train's defaults (25 % of the 20×20-pixel blocks held out, 5-fold cross-validation
by blocks) and, for comparison, the old default split by pixel, classifies the patch, writes the
held-out reports (with ROC, feature importance, class counts, CV; each leads with its honest
estimate) and an Olofsson et al. (2014) area estimate from a stratified sample of the map labelled
with the (uneroded) LULC reference. Prints the headline numbers as JSON. The map is trained on
pixels of the same patch, so its whole-map and area-sample accuracies are optimistic (the map
report says so); the held-out blocks and the block cross-validation are the honest numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

import numpy as np
from osgeo import ogr
from rasterio.crs import CRS
from rasterio.transform import from_bounds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lc_plugin.io.rasters import Grid, TimeStack, read_class_raster, write_stack  # noqa: E402
from lc_plugin.ml import classify, train  # noqa: E402
from lc_plugin.reference import rasterize as reference  # noqa: E402
from lc_plugin.timeseries import interpolate  # noqa: E402
from lc_plugin.validation import area, report  # noqa: E402


def build_inputs(data: Path, out: Path) -> tuple[str, str, Grid]:
    eop = data / "TestEOPatch"
    ndvi = np.load(eop / "data" / "NDVI.npy", allow_pickle=False)[..., 0].astype(np.float32)  # (T, H, W)
    valid = np.load(eop / "mask" / "IS_VALID.npy", allow_pickle=False)[..., 0].astype(bool)
    dates = [dt.date.fromisoformat(t[:10]) for t in json.loads((eop / "timestamps.json").read_text())]
    bbox = json.loads((eop / "bbox.geojson").read_text())["coordinates"][0]
    xs, ys = [p[0] for p in bbox], [p[1] for p in bbox]
    t, h, w = ndvi.shape
    grid = Grid(CRS.from_epsg(32633), from_bounds(min(xs), min(ys), max(xs), max(ys), w, h), w, h)
    stack = str(out / "ndvi_stack.tif")
    clm = str(out / "clm.tif")
    write_stack(stack, TimeStack(ndvi[:, np.newaxis], dates, ["NDVI"], grid))
    write_stack(clm, TimeStack(np.where(valid, 0, 1).astype(np.uint8)[:, np.newaxis], dates, ["CLM"], grid), kind="clouds", nodata=255)
    return stack, clm, grid


def label_sample(sample_path: str, reference_path: str, field: str = "reference") -> None:
    """The 'analyst': label each point with the LULC reference class under it (0 where the reference has none)."""
    labels, _, grid = read_class_raster(reference_path)
    inv = ~grid.transform
    ds = ogr.Open(sample_path, 1)
    layer = ds.GetLayer(0)
    for feature in layer:
        geom = feature.GetGeometryRef()
        col, row = inv * (geom.GetX(), geom.GetY())
        feature.SetField(field, int(labels[int(row), int(col)]))
        layer.SetFeature(feature)
    ds = None


def interpolated_and_reference(data: Path, out: Path, erosion: int) -> tuple[str, str]:
    """The patch's 2017 stack interpolated to 16 days and the LULC polygons rasterized on it (eroded)."""
    stack, clm, _ = build_inputs(data, out)
    interpolated = str(out / "interpolated.tif")
    interpolate.interpolate_file(stack, interpolated, mask_path=clm, step_days=16, start=dt.date(2017, 1, 1), end=dt.date(2017, 12, 31))
    ref = str(out / "reference.tif")
    reference.rasterize_reference_file(str(data / "TestEOPatch" / "vector_timeless" / "LULC.gpkg"), "LULC_ID", interpolated, ref, erosion_px=erosion)
    return interpolated, ref


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "eo-learn-testpatch"))
    parser.add_argument("--out", default=str(ROOT / "build" / "real-patch"))
    parser.add_argument("--erosion", type=int, default=1)
    parser.add_argument("--cv-folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    interpolated, ref = interpolated_and_reference(data, out, args.erosion)
    model = str(out / "model.onnx")
    predictions = str(out / "test_predictions.csv")
    summary = train.train_classifier(
        [interpolated], [ref], model, seed=args.seed, drop_empty_classes=True, predictions_out=predictions, cv_folds=args.cv_folds
    )
    pixel_model, pixel_predictions = str(out / "model_pixel_split.onnx"), str(out / "test_predictions_pixel_split.csv")
    train.train_classifier(
        [interpolated], [ref], pixel_model, split="pixel", seed=args.seed, drop_empty_classes=True, predictions_out=pixel_predictions, cv_folds=0
    )
    pixel_held_out = report.predictions_report_file(
        pixel_predictions, str(out / "report_pixel_split.json"), str(out / "report_pixel_split.html"), model_path=pixel_model
    ).document
    class_map = str(out / "landcover.tif")
    probabilities = str(out / "probabilities.tif")
    classify.classify_file(model, interpolated, class_map, probabilities_out=probabilities)
    held_out = report.predictions_report_file(predictions, str(out / "report.json"), str(out / "report.html"), model_path=model).document
    whole = report.accuracy_report_file(
        class_map, ref, str(out / "map_report.json"), str(out / "map_report.html"), model_path=model, probabilities_path=probabilities
    ).document
    sample = str(out / "sample.gpkg")
    design = area.sample_design_file(class_map, sample, target_se=0.01, expected_accuracy=0.85, min_per_class=50, seed=args.seed).design
    # The analyst's labels: the LULC polygons without erosion (every pixel but the 155 outside them).
    truth = str(out / "reference_full.tif")
    reference.rasterize_reference_file(str(data / "TestEOPatch" / "vector_timeless" / "LULC.gpkg"), "LULC_ID", interpolated, truth, erosion_px=0)
    label_sample(sample, truth)
    estimate = area.area_estimate_file(class_map, sample, str(out / "area.json"), str(out / "area.html")).document

    truth_labels, _, _ = read_class_raster(truth)
    map_labels, _, _ = read_class_raster(class_map)
    both = (truth_labels != 0) & (map_labels != 0)
    total_ha = estimate["total_area_ha"]
    headline = {
        "outputs": os.path.abspath(out),
        "classes": [{"id": c.id, "name": c.name, "color": c.color} for c in summary.classes],
        "n_train": summary.n_train,
        "held_out": {k: held_out[k] for k in ("n", "overall_accuracy", "kappa", "macro_f1", "weighted_f1")},
        "held_out_ci95": [held_out["intervals"]["overall_accuracy"][k] for k in ("low", "high")],
        "held_out_lead": held_out["assessment"]["lead"]["label"],
        "held_out_pixel_split": {k: pixel_held_out[k] for k in ("n", "overall_accuracy", "kappa", "weighted_f1")},
        "pixel_split_overlap_with_training": pixel_held_out["overlap_with_training"],
        "whole_map_overlap_with_training": whole["overlap_with_training"],
        "whole_map_lead": whole["assessment"]["lead"]["label"],
        "held_out_macro_auc": held_out["roc"]["macro_auc"] if held_out["roc"] else None,
        "cv": {k: summary.cv[k] for k in ("k", "group", "overall_accuracy_mean", "overall_accuracy_std", "weighted_f1_mean", "weighted_f1_std")}
        if summary.cv
        else None,
        "whole_map_vs_reference": {k: whole[k] for k in ("n", "overall_accuracy", "kappa", "weighted_f1")},
        "area_sample_size": design["sample_size"],
        "area_overall_accuracy": [estimate["overall_accuracy"], estimate["overall_accuracy_ci95"]],
        "area_estimates_ha": {
            c["name"]: {
                "mapped": round(c["mapped_area_ha"], 2),
                "estimated": round(c["area_ha"], 2),
                "ci95": round(c["area_ci95_ha"], 2),
                "reference_share_times_mapped_area": round(float((truth_labels[both] == c["id"]).mean()) * total_ha, 2),
            }
            for c in estimate["per_class"]
        },
    }
    json.dump(headline, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
