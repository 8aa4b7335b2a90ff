#!/usr/bin/env python3
"""LightGBM vs a segmentation network (TFCN by default) on the real eo-learn test patch, on the same tile folds.

    .venv/bin/python scripts/compare_segmentation.py [--epochs 100] [--class-weights] [--architecture tfcn] [--folds 0 1 2 3 4]

The real 2017 NDVI series (interpolated on a 16-day grid, 24 dates) and the LULC reference (1 px
erosion) of scripts/real_patch_report.py are cut into 20×20-px tiles with 5 folds
(lc_plugin.reference.dataset.export_tiles). For each test fold: the network trains on three folds and
validates (early stopping) on the next one; LightGBM trains on the pixels of those four folds.
Both classify the whole patch through lc_plugin.ml.classify (the network tiled and blended) and are
scored by the same accuracy report on the same test pixels: those of the test fold's tiles that no
other tile covers (the last row of tiles is shifted inward and overlaps its neighbour). Prints
per-fold and mean ± std figures as JSON; reports land in build/compare-segmentation/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from real_patch_report import interpolated_and_reference  # noqa: E402

from lc_plugin.io.rasters import read_class_raster, write_class_raster  # noqa: E402
from lc_plugin.ml import classify, train  # noqa: E402
from lc_plugin.ml.segmentation.pipeline import open_tiles, train_on_tiles  # noqa: E402
from lc_plugin.ml.segmentation.training import TrainConfig, split_folds  # noqa: E402
from lc_plugin.reference.dataset import export_tiles  # noqa: E402
from lc_plugin.validation import report  # noqa: E402

KEYS = ("n", "overall_accuracy", "kappa", "weighted_f1", "macro_f1", "miou")


def fold_mask(offsets: np.ndarray, idx: np.ndarray, shape: tuple[int, int], tile: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for r, c in offsets[idx]:
        mask[r:r + tile, c:c + tile] = True
    return mask


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "eo-learn-testpatch"))
    parser.add_argument("--out", default=str(ROOT / "build" / "compare-segmentation"))
    parser.add_argument("--architecture", default="tfcn")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--patience", type=int, default=15)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--tile", type=int, default=20)
    parser.add_argument("--folds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--class-weights", action="store_true", help="inverse-frequency class weights in the network's loss")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    interpolated, ref = interpolated_and_reference(data, out, erosion=1)
    labels, table, grid = read_class_raster(ref)
    store_path = str(out / "tiles.zarr")
    export_tiles([interpolated], [ref], store_path, tile_size=args.tile, n_folds=5, seed=0)
    tiles = open_tiles(store_path)
    from lc_plugin.reference.dataset import open_tile_store

    offsets = open_tile_store(store_path).offsets

    runs = []
    for fold in args.folds:
        config = TrainConfig(
            architecture=args.architecture, width=args.width, depth=args.depth, epochs=args.epochs, patience=args.patience,
            batch_size=8, learning_rate=1e-3, test_fold=fold, seed=args.seed, class_weights=args.class_weights,
        )
        train_idx, val_idx, test_idx = split_folds(tiles.folds, config, tiles.n_folds)
        fit_area = fold_mask(offsets, np.concatenate([train_idx, val_idx]), labels.shape, args.tile)
        test_only = fold_mask(offsets, test_idx, labels.shape, args.tile) & ~fit_area
        train_ref, test_ref = str(out / f"ref_train_{fold}.tif"), str(out / f"ref_test_{fold}.tif")
        write_class_raster(train_ref, np.where(fit_area, labels, 0), grid, table)
        write_class_raster(test_ref, np.where(test_only, labels, 0), grid, table)

        started = time.perf_counter()
        lgb_model = str(out / f"lightgbm_{fold}.onnx")
        train.train_classifier([interpolated], [train_ref], lgb_model, test_fraction=0.0, seed=args.seed, drop_empty_classes=True, cv_folds=0)
        lgb_map = str(out / f"lightgbm_{fold}.tif")
        classify.classify_file(lgb_model, interpolated, lgb_map)
        lgb_s = time.perf_counter() - started

        cnn_model = str(out / f"{args.architecture}_{fold}.onnx")
        result, _, _ = train_on_tiles(tiles, config, cnn_model)
        started = time.perf_counter()
        cnn_map = str(out / f"{args.architecture}_{fold}.tif")
        classify.classify_file(cnn_model, interpolated, cnn_map)
        classify_s = time.perf_counter() - started

        scores = {}
        for name, model, class_map in (("lightgbm", lgb_model, lgb_map), (args.architecture, cnn_model, cnn_map)):
            doc = report.accuracy_report_file(
                class_map, test_ref, str(out / f"report_{name}_{fold}.json"), str(out / f"report_{name}_{fold}.html"), model_path=model
            ).document
            scores[name] = {k: doc[k] for k in KEYS}
        runs.append({
            "fold": fold,
            "tiles": {"train": len(train_idx), "validation": len(val_idx), "test": len(test_idx)},
            "scores": scores,
            "network": {"epochs": len(result.history), "best_epoch": result.best_epoch, "train_s": round(result.seconds, 1),
                        "classify_s": round(classify_s, 2)},
            "lightgbm_train_and_classify_s": round(lgb_s, 1),
        })
        json.dump(runs[-1], sys.stderr)
        sys.stderr.write("\n")

    summary = {}
    for name in ("lightgbm", args.architecture):
        summary[name] = {
            k: [round(float(np.mean([r["scores"][name][k] for r in runs])), 4), round(float(np.std([r["scores"][name][k] for r in runs])), 4)]
            for k in KEYS if k != "n"
        }
        summary[name]["n"] = int(sum(r["scores"][name]["n"] for r in runs))
    headline = {
        "outputs": os.path.abspath(out),
        "settings": {**vars(args), "data": str(data)},
        "n_tiles": int(len(tiles.folds)),
        "mean_std_over_folds": summary,
        "folds": runs,
    }
    json.dump(headline, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
