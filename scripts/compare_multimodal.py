#!/usr/bin/env python3
"""S2-only vs S2 + a coarse 300 m second modality, the same network on the same tile folds of the real eo-learn patch.

    .venv/bin/python scripts/compare_multimodal.py [--epochs 60] [--architecture tfcn] [--folds 0 1 2 3]

There is no real Sentinel-3 OLCI data offline. The second modality is therefore SYNTHETIC, derived from real
data: the patch's real 2017 NDVI series, interpolated on the 16-day grid (24 dates; scripts/real_patch_report.py),
averaged over 30 × 30-pixel cells (≈ 300 m, the OLCI full-resolution pixel) and written as its own 300 m stack
(band "NDVI_300m") on the patch's corner. It carries no information the 10 m series lacks, only its 300 m context,
so the comparison shows what the two-input path does, not what OLCI would add.

Tiles of 30 px (≈ 300 m: one coarse pixel each) cut the 101 × 100-px patch into 16 tiles with 4 folds
(lc_plugin.reference.dataset.export_tiles, the coarse stack kept at 300 m as the store's second sensor). For each test fold
both networks (same architecture, width, depth, seed, epochs) train on two folds and validate on the next; each
classifies the whole patch through lc_plugin.ml.classify (the two-input one with the 300 m stack as its second input);
the same accuracy report scores both on the same test pixels (the test tiles' pixels that no training or validation
tile covers). Prints per-fold and mean ± std figures as JSON; outputs in build/compare-multimodal/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from compare_segmentation import KEYS, fold_mask  # noqa: E402
from real_patch_report import interpolated_and_reference  # noqa: E402

from lc_plugin.io.rasters import Grid, TimeStack, read_class_raster, read_stack, write_class_raster, write_stack  # noqa: E402
from lc_plugin.ml import classify  # noqa: E402
from lc_plugin.ml.segmentation.pipeline import open_tiles, train_on_tiles  # noqa: E402
from lc_plugin.ml.segmentation.training import TrainConfig, split_folds  # noqa: E402
from lc_plugin.reference.dataset import export_tiles, open_tile_store  # noqa: E402
from lc_plugin.validation import report  # noqa: E402

CELL = 30  # fine pixels per coarse pixel along each axis
SENSOR = "S3SYN"


def coarse_stack(interpolated: str, out: str) -> str:
    """The stack's NDVI averaged over CELL × CELL pixels (NaN-aware, partial cells at the edges) on a grid CELL× coarser."""
    stack = read_stack(interpolated)
    t, b, h, w = stack.data.shape
    rows, cols = -(-h // CELL), -(-w // CELL)
    padded = np.full((t, b, rows * CELL, cols * CELL), np.nan, np.float32)
    padded[:, :, :h, :w] = stack.data
    with np.errstate(invalid="ignore"):
        coarse = np.nanmean(padded.reshape(t, b, rows, CELL, cols, CELL), axis=(3, 5)).astype(np.float32)
    tr = stack.grid.transform
    grid = Grid(stack.grid.crs, tr * tr.scale(CELL, CELL), cols, rows)
    write_stack(out, TimeStack(coarse, stack.dates, [f"{band}_300m" for band in stack.bands], grid, {"SYNTHETIC": "NDVI averaged to 300 m"}))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "eo-learn-testpatch"))
    parser.add_argument("--out", default=str(ROOT / "build" / "compare-multimodal"))
    parser.add_argument("--architecture", default="tfcn")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=15)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--folds", type=int, nargs="*", default=[0, 1, 2, 3])
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    interpolated, ref = interpolated_and_reference(data, out, erosion=1)
    coarse = coarse_stack(interpolated, str(out / "ndvi_300m.tif"))
    labels, table, grid = read_class_raster(ref)
    store_path = str(out / "tiles.zarr")
    export_tiles([interpolated], [ref], store_path, tile_size=CELL, n_folds=4, seed=0, extra_stacks={SENSOR: [coarse]})
    offsets = open_tile_store(store_path).offsets
    variants = {"s2": (open_tiles(store_path), None), "s2+s3syn": (open_tiles(store_path, SENSOR), coarse)}

    runs = []
    for fold in args.folds:
        config = TrainConfig(
            architecture=args.architecture, width=args.width, depth=2, epochs=args.epochs, patience=args.patience,
            batch_size=4, learning_rate=1e-3, test_fold=fold, seed=args.seed,
        )
        tiles = variants["s2"][0]
        train_idx, val_idx, test_idx = split_folds(tiles.folds, config, tiles.n_folds)
        fit_area = fold_mask(offsets, np.concatenate([train_idx, val_idx]), labels.shape, CELL)
        test_only = fold_mask(offsets, test_idx, labels.shape, CELL) & ~fit_area
        test_ref = str(out / f"ref_test_{fold}.tif")
        write_class_raster(test_ref, np.where(test_only, labels, 0), grid, table)
        run = {"fold": fold, "tiles": {"train": len(train_idx), "validation": len(val_idx), "test": len(test_idx)}, "scores": {}, "network": {}}
        for name, (variant_tiles, second) in variants.items():
            model = str(out / f"{name}_{fold}.onnx")
            result, _, _ = train_on_tiles(variant_tiles, config, model)
            class_map = str(out / f"{name}_{fold}.tif")
            classify.classify_file(model, interpolated, class_map, second_path=second)
            doc = report.accuracy_report_file(class_map, test_ref, str(out / f"report_{name}_{fold}.json"), str(out / f"report_{name}_{fold}.html")).document
            run["scores"][name] = {k: doc[k] for k in KEYS}
            run["network"][name] = {"epochs": len(result.history), "best_epoch": result.best_epoch, "train_s": round(result.seconds, 1)}
        runs.append(run)
        json.dump(run, sys.stderr)
        sys.stderr.write("\n")

    summary = {}
    for name in variants:
        summary[name] = {
            k: [round(float(np.mean([r["scores"][name][k] for r in runs])), 4), round(float(np.std([r["scores"][name][k] for r in runs])), 4)]
            for k in KEYS if k != "n"
        }
        summary[name]["n"] = int(sum(r["scores"][name]["n"] for r in runs))
    json.dump({"outputs": str(out), "settings": {**vars(args), "data": str(data), "tile": CELL, "depth": 2},
               "n_tiles": int(len(offsets)), "mean_std_over_folds": summary, "folds": runs}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
