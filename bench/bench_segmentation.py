"""Segmentation networks on the CPU: onnxruntime inference throughput (Mpx/s) and PyTorch training time per epoch.

    .venv/bin/python bench/bench_segmentation.py [--quick]

Inference: each architecture (default widths: 16 channels, depth 3), exported to ONNX, classifies a
512×512 px raster of 23 dates × 9 bands through the same tiled, blended path as landcover:classify
(64-px tiles overlapping by 16 px); the weights are untrained (the cost does not depend on them).
Training: one epoch over 32 tiles of 64×64 px (same dates and bands, batch 8) after one warm-up epoch.
Writes (or replaces) the "Segmentation networks" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TITLE = "## Segmentation networks (CPU: onnxruntime inference, PyTorch training)"


def _model_file(folder: str, architecture: str, n_dates: int, n_bands: int, tile: int, overlap: int, fit) -> str:
    from lc_plugin.core.classes import make_class_table
    from lc_plugin.ml.segmentation.export import save_model, segmentation_metadata, to_onnx_bytes, with_metadata
    from lc_plugin.ml.segmentation.training import TrainConfig

    classes = make_class_table({i: "" for i in range(1, 9)})
    config = TrainConfig(architecture=architecture)
    dates = [dt.date(2019, 1, 1) + dt.timedelta(days=16 * i) for i in range(n_dates)]
    bands = [f"B{i:02d}" for i in range(n_bands)]
    meta = segmentation_metadata(fit, config, classes, dates, bands, tile, overlap)
    path = os.path.join(folder, f"{architecture}.onnx")
    save_model(with_metadata(to_onnx_bytes(fit.model, n_dates, n_bands, tile), meta), path)
    return path


def run(quick: bool = False) -> str:
    import torch

    from lc_plugin.ml.classify import load_model, predict_array, tile_starts
    from lc_plugin.ml.segmentation import ARCHITECTURES
    from lc_plugin.ml.segmentation.models import build_model
    from lc_plugin.ml.segmentation.training import FitResult, TrainConfig, fit

    n_dates, n_bands, tile, overlap = 23, 9, 64, 16
    size = 128 if quick else 512
    n_train = 8 if quick else 32
    rng = np.random.default_rng(0)
    raster = rng.uniform(0.0, 0.5, (n_dates, n_bands, size, size)).astype(np.float32)
    x = rng.uniform(0.0, 0.5, (n_train, n_dates, n_bands, tile, tile)).astype(np.float32)
    y = rng.integers(1, 9, (n_train, tile, tile)).astype(np.uint8)
    from lc_plugin.core.classes import make_class_table

    classes = make_class_table({i: "" for i in range(1, 9)})
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for architecture in ARCHITECTURES:
            torch.manual_seed(0)
            net = build_model(architecture, n_dates, n_bands, len(classes)).eval()
            params = sum(p.numel() for p in net.parameters())
            stub = FitResult(net, [], 0, [0.0] * n_bands, [1.0] * n_bands, classes.ids, {}, 0.0, "cpu")
            model = load_model(_model_file(folder, architecture, n_dates, n_bands, tile, overlap, stub))
            predict_array(model, raster[:, :, :tile, :tile])  # warm-up
            start = time.perf_counter()
            predict_array(model, raster)
            seconds = time.perf_counter() - start
            config = TrainConfig(architecture=architecture, epochs=2, patience=5, batch_size=8, device="cpu")
            result = fit(x, y, np.arange(n_train), np.empty(0, np.int64), classes, config)
            epoch_s = result.history[-1]["seconds"]
            rows.append((architecture, params, seconds, size * size / seconds / 1e6, epoch_s, n_train * tile * tile / epoch_s / 1e6))
    load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    lines = [
        TITLE,
        "",
        f"{size}×{size} px raster × {n_dates} dates × {n_bands} bands classified through `lc_plugin.ml.classify.predict_array` "
        f"(the tiled, blended path of landcover:classify: {tile}-px tiles, {overlap}-px overlap, {len(tile_starts(size, tile, overlap)) ** 2} "
        f"tiles); networks of width 16, depth 3, 8 classes; onnxruntime {__import__('onnxruntime').__version__} "
        f"CPUExecutionProvider, torch {torch.__version__} ({torch.get_num_threads()} threads). Training: one epoch (the second) "
        f"over {n_train} tiles of {tile}×{tile} px, batch 8, Adam, no validation fold.",
        "",
        "| architecture | parameters | inference s | inference Mpx/s | training s/epoch | training Mpx/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {a} | {p:,} | {s:.2f} | {mpx:.3f} | {e:.2f} | {tmpx:.3f} |" for a, p, s, mpx, e, tmpx in rows]
    lines += [
        "",
        f"_(measured with `python bench/bench_segmentation.py{' --quick' if quick else ''}` at "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, load average {load} on 2 shared cores)_",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128-px raster, 8 training tiles; prints instead of writing RESULTS.md")
    args = parser.parse_args()
    section = run(args.quick)
    if args.quick:
        sys.stdout.write(section)
        return
    results = ROOT / "bench" / "RESULTS.md"
    text = results.read_text() if results.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(TITLE) + r".*?(?=^## |\Z)", flags=re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    results.write_text(text)


if __name__ == "__main__":
    main()
