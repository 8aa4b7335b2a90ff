"""Post-processing benchmark: majority filter, GDAL sieve and reclassification of a class map.

``run(quick=False) -> str`` returns a markdown section (bench/run.py puts it in RESULTS.md;
``python bench/bench_postprocess.py [--quick]`` prints it). The map is generated: 8 classes in
blocks of 40 px (a field-and-forest pattern) with 5 % of the pixels replaced by a random
class (the salt-and-pepper a pixel classifier leaves), 3 % no data; 4000 × 4000 px is a
40 × 40 km mosaic at 10 m. Times are medians of 3 in-process runs of the array functions.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lc_plugin.ml.postprocess import majority_filter, reclassify, sieve  # noqa: E402


def noisy_map(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(1, 9, (size // 40 + 1, size // 40 + 1)).astype(np.uint8)
    labels = np.kron(coarse, np.ones((40, 40), dtype=np.uint8))[:size, :size]
    noise = rng.random(labels.shape)
    labels[noise < 0.05] = rng.integers(1, 9, int((noise < 0.05).sum()))
    labels[noise > 0.97] = 0
    return labels


def timed(function, *args) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(3):
        start = time.perf_counter()
        out = function(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def run(quick: bool = False) -> str:
    size = 1000 if quick else 4000
    labels = noisy_map(size)
    rows = []
    for name, function, args in [
        ("majority filter 3 × 3", majority_filter, (labels, 3)),
        ("majority filter 5 × 5", majority_filter, (labels, 5)),
        ("sieve, 10 px, 4-connected (GDAL)", sieve, (labels, 10, 4)),
        ("sieve, 10 px, 8-connected (GDAL)", sieve, (labels, 10, 8)),
        ("reclassify (8 → 3 classes)", reclassify, (labels, {1: 1, 2: 1, 3: 2, 4: 2, 5: 2, 6: 3, 7: 3, 8: 3})),
    ]:
        seconds, out = timed(function, *args)
        changed = float((out != labels).mean())
        rows.append(f"| {name} | {seconds:.2f} | {labels.size / seconds / 1e6:.1f} | {changed:.1%} |")
    return "\n".join(
        [
            "## Post-processing (majority filter, sieve, reclassify)",
            "",
            f"`bench/bench_postprocess.py`: a generated {size} × {size} px class map (8 classes in 40 px blocks, 5 % "
            f"salt-and-pepper, 3 % no data); median of 3 runs; {platform.processor() or platform.machine()}, Python {platform.python_version()}.",
            "",
            "| step | seconds | Mpx/s | pixels changed |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    )


if __name__ == "__main__":
    print(run("--quick" in sys.argv))  # noqa: T201 - a bench script prints its section
