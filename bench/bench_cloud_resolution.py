"""Cloud masks at a processing resolution against the full-resolution (10 m) masks, on real L1C scenes.

    .venv/bin/python bench/bench_cloud_resolution.py [--quick]

Scenes: ../shared/data/s2cloudless-scene (one 856×512 px L1C scene, 47 % cloud) and the five
13-band scenes of ../shared/data/eo-learn-testpatch (REFERENCE_SCENES.npy, 101×100 px). For each
processing resolution the model runs on block means, its probabilities are interpolated back
bilinearly and s2cloudless's post-processing (threshold 0.4, average_over 4, dilation 2) runs at
10 m, as lc_plugin.timeseries.clouds does; agreement = share of pixels whose mask equals the 10 m mask.
Model time = s2cloudless_probabilities (block means + model + upsampling), median of 3, 2 cores.
run.py appends the section this writes (``--only cloudres``); the default resolution of
lc_plugin.timeseries.clouds is the coarsest one with ≥ 97 % agreement on every scene, with margin.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
RESOLUTIONS = [10, 20, 30, 40, 60, 80, 120, 160]
TARGET = 97.0
TITLE = "## Cloud masks at a processing resolution (agreement with the 10 m masks, real scenes)"


def scenes() -> dict[str, np.ndarray]:
    """(T, H, W, 10) TOA reflectance of each real scene set, in the model's band order."""
    from lc_plugin.timeseries.cloud_model import S2CLOUDLESS_BANDS

    idx = [S2_BANDS.index(b) for b in S2CLOUDLESS_BANDS]
    scene = np.load(DATA / "s2cloudless-scene" / "input_arrays.npz")["s2_im"][..., idx]
    patch = np.load(DATA / "eo-learn-testpatch" / "REFERENCE_SCENES.npy", allow_pickle=False)[..., idx]
    return {"s2cloudless-scene (1 × 856×512 px)": scene, "eo-learn-testpatch (5 × 101×100 px)": patch}


def measure(bands: np.ndarray, resolutions: list[int], repeats: int) -> list[tuple[int, float, float, float]]:
    """(resolution, pooled agreement %, worst date's agreement %, median model seconds) per resolution."""
    from lc_plugin.timeseries.clouds import s2cloudless_masks, s2cloudless_probabilities

    full = None
    rows = []
    for res in resolutions:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            probs = s2cloudless_probabilities(bands, factor=res // 10)
            times.append(time.perf_counter() - t0)
        masks = s2cloudless_masks(probs, 0.4, 4, 2)
        full = masks if full is None else full
        per_date = [100 * float((m == f).mean()) for m, f in zip(masks, full)]
        rows.append((res, 100 * float((masks == full).mean()), min(per_date), statistics.median(times)))
    return rows


def run(quick: bool = False) -> str:
    from lc_plugin.timeseries.cloud_resolution import DEFAULT_PROCESSING_RESOLUTION
    from lc_plugin.timeseries.clouds import s2cloudless_probabilities

    s2cloudless_probabilities(np.zeros((1, 8, 8, 10), dtype=np.float32))  # load the model before any clock
    resolutions = [10, 40, 160] if quick else RESOLUTIONS
    results = {name: measure(bands, resolutions, 1 if quick else 3) for name, bands in scenes().items()}
    lines = [
        TITLE,
        "",
        "bench/bench_cloud_resolution.py: s2cloudless's model on block means at each resolution, probabilities "
        "interpolated back bilinearly, threshold 0.4 / average_over 4 / dilation 2 applied at 10 m (so only the "
        "probability source differs from the full-resolution masks). Agreement = pixels whose mask equals the 10 m "
        "mask; *worst date* = the least agreeing date of the set. Model time includes the block means and the "
        "upsampling; speed-up vs 10 m.",
        "",
        "| resolution | " + " | ".join(f"{name}: agreement % (worst date) | speed-up" for name in results) + " |",
        "|---|" + "---|---|" * len(results),
    ]
    for i, res in enumerate(resolutions):
        cells = []
        for rows in results.values():
            _, pooled, worst, seconds = rows[i]
            cells.append(f"{pooled:.2f} ({worst:.2f}) | {rows[0][3] / seconds:.1f}×")
        lines.append(f"| {res} m | " + " | ".join(cells) + " |")
    default = int(DEFAULT_PROCESSING_RESOLUTION)
    at_default = [rows[resolutions.index(default)][2] for rows in results.values()] if default in resolutions else []
    worst = min(at_default) if at_default else float("nan")
    worst_by_res = {res: min(rows[i][2] for rows in results.values()) for i, res in enumerate(resolutions)}
    coarsest = max((r for r, w in worst_by_res.items() if w >= TARGET), default=10)
    lines += [
        "",
        f"**Cloud mask agreement with 10 m: {worst:.1f} %** (at the default processing resolution, {default} m: the "
        f"worst date of every real scene; target ≥ {TARGET:.0f} %: {'met' if worst >= TARGET else 'NOT met'}). The "
        "coarser the resolution the more the masks lose along cloud edges (thin or small clouds fall under the "
        f"block means). The coarsest resolution measured here that still reaches {TARGET:.0f} % is {coarsest} m "
        f"({worst_by_res[coarsest]:.2f} %); the default is {default} m, for a margin on scenes with more broken clouds "
        "than these. The eo-learn patch's five dates are each almost all cloud or all clear, so every resolution "
        "agrees there; the s2cloudless scene, with broken clouds, is the one that decides.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    text = run(args.quick)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
