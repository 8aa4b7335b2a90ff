"""Patches per minute of the grid runner (lc_plugin.runs.batch) for 1 and 2 workers, process pool and Dask.

The demo scene (demo/scene.py) served on 127.0.0.1, a grid of small patches, a model trained once;
each configuration runs the whole chain (download → classify) into a fresh run folder. The wall
time includes starting the pool or the LocalCluster, as a user would see it.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# Paper estimate (README of this section): per-patch figures measured in RESULTS.md's other sections
# on this 2-core machine, and assumptions that are written next to the numbers they produce.
WHOLE_PATCH_FALLBACK_S = 490.0  # "Whole patch" section of 2026-11-23, used when RESULTS.md has none
DOWNLOAD_MB = 305.0 * (70 / 30) * (13 / 7)  # "Download" section: 305 MB for 30 dates × 7 bands, scaled to 70 × 13
STORE_MB_S = 50.0  # assumed per-worker read rate from a cloud object store in the same region
VCPU_HOUR_USD = 0.05  # assumed on-demand price of one vCPU-hour (general-purpose VM, no discount)
WORKER_VCPUS = 2  # each worker is a machine like this one
CLUSTER_EFFICIENCY = 0.9  # assumed: workers are separate machines, so only stragglers and scheduling are lost


def whole_patch_seconds() -> float:
    """Per-patch seconds from RESULTS.md's "Whole patch" table (its **total** row)."""
    import re

    results = Path(__file__).resolve().parent / "RESULTS.md"
    text = results.read_text(encoding="utf-8") if results.exists() else ""
    found = re.search(r"\| \*\*total\*\* \| \*\*([\d.]+)\*\* \|", text)
    return float(found.group(1)) if found else WHOLE_PATCH_FALLBACK_S


def estimate(patches: int, workers: list[int], per_patch: float) -> list[str]:
    """Rows of wall time and cost for ``patches`` patches on N workers (independent patches, so
    wall = patches × per-patch time ÷ (N × CLUSTER_EFFICIENCY))."""
    rows = []
    for n in workers:
        wall_h = patches * per_patch / (n * CLUSTER_EFFICIENCY) / 3600
        cost = patches * per_patch / CLUSTER_EFFICIENCY / 3600 * WORKER_VCPUS * VCPU_HOUR_USD
        rows.append(f"| {patches:,} | {n} | {wall_h:,.1f} h | ${cost:,.0f} |")
    return rows


def scaling_figure(rows: list[tuple], path: Path) -> str | None:
    """Patches per minute against workers for each executor (PNG next to RESULTS.md)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=(5, 3.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    base = rows[0][4]
    for executor in ("processes", "dask"):
        pts = [(w, ppm) for e, w, _, _, ppm in rows if e == executor]
        ax.plot([w for w, _ in pts], [ppm for _, ppm in pts], "o-", label=executor)
    top = max(w for _, w, _, _, _ in rows)
    ax.plot([1, top], [base, base * top], ":", color="grey", label="linear from sequential")
    ax.axvline(os.cpu_count() or 1, color="#cc8888", lw=0.8)
    ax.set_xlabel("workers")
    ax.set_ylabel("patches per minute")
    ax.set_xticks(range(1, top + 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path.name


def run(quick: bool = False) -> str:
    """Markdown section: patches per minute for each executor and worker count, and the estimate."""
    from demo.grid_run import grid_run_parameters
    from demo.scene import build_scene
    from demo.stac_server import StacServer
    from lc_plugin.runs.batch import run_batch

    patch_px = 40 if quick else 25
    configs = [("sequential", 1)] + [(e, w) for e in ("processes", "dask") for w in ((1, 2) if quick else (1, 2, 3, 4))]
    rows = []
    load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="lc-bench-batch-") as tmp:
        scene = build_scene(os.path.join(tmp, "scene"))
        start, end = scene.start, scene.end
        with StacServer(scene.root) as server:
            params, _ = grid_run_parameters(scene, server.url, tmp, patch_px, start, end)
            # patches on the grid's edge fall outside the demo scene (0 % valid: they fail in the filter step);
            # an untimed first run finds the patches with data, and every configuration runs those
            probe = run_batch(params, os.path.join(tmp, "probe"))
            params = replace(params, patch_ids=probe.done)
            n = len(probe.done)
            for executor, workers in configs:
                t = time.perf_counter()
                result = run_batch(params, os.path.join(tmp, f"{executor}_{workers}"), executor=executor, workers=workers)
                wall = time.perf_counter() - t
                assert not result.failed, result.failed
                rows.append((executor, workers, n, wall, 60.0 * n / wall))
    base = rows[0][4]
    best2 = max(ppm for e, w, _, _, ppm in rows if w == 2 and e != "sequential")
    efficiency = min(1.0, best2 / (2 * base))
    figure = scaling_figure(rows, Path(__file__).resolve().parent / "grid_scaling.png")
    compute = whole_patch_seconds()
    lines = [
        "## Grid runs (lc_plugin.runs.batch)",
        "",
        f"{n} demo patches of {patch_px} × {patch_px} px, {start} – {end} (whole chain: download from a local STAC server → "
        f"SCL masks → filter → interpolate 30 d → reference → classify), then mosaic and report. Wall time includes starting "
        f"the pool / LocalCluster. Machine: {platform.machine()}, {os.cpu_count()} CPUs; load average at the start {load}.",
        "",
        "| executor | workers | patches | wall (s) | patches / min | vs sequential |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {e} | {w} | {p} | {s:.1f} | {ppm:.1f} | {ppm / base:.2f}× |" for e, w, p, s, ppm in rows]
    if figure:
        lines += ["", f"![patches per minute against workers]({figure})"]
    lines += [
        "",
        f"Scaling curve: beyond {os.cpu_count()} workers the curve can only flatten on this {os.cpu_count()}-core machine "
        "(red line); the gap between the dotted linear line and the measured points at 2 workers is the per-worker "
        f"overhead plus the cores' contention (parallel efficiency at 2 workers: {efficiency:.2f}). Tiny patches make the "
        "fixed per-patch costs (process start-up, STAC search, GeoTIFF open/close, Dask task round trips) look large; "
        "real 1000² px patches spend minutes computing, so their efficiency is closer to 1.",
        "",
        "### Paper estimate: Slovenia and a 100× larger area on a cluster",
        "",
        f"Assumptions: per patch (1000 × 1000 px, 70 dates × 13 bands) {compute:.0f} s of compute on one "
        f"{WORKER_VCPUS}-vCPU worker (the *Whole patch* section) plus reading {DOWNLOAD_MB:,.0f} MB at {STORE_MB_S:.0f} MB/s "
        f"from an object store in the same region (the *Download* section's 305 MB for 30 dates × 7 bands, scaled); "
        f"patches are independent and each worker is its own machine, so wall time = patches × per-patch time ÷ (workers × "
        f"{CLUSTER_EFFICIENCY}, assumed: stragglers and scheduling; the local figures above share 2 cores and say nothing "
        f"about this); ${VCPU_HOUR_USD:.2f} per vCPU-hour on demand; scheduler, mosaic (minutes, memory independent "
        "of the patch count) and storage not priced. Intermediate stacks are ~3 GB per patch: keep only the class maps "
        "(~1 MB) at country scale.",
        "",
        "| patches | workers | wall time | compute cost |",
        "|---:|---:|---:|---:|",
    ]
    per_patch = compute + DOWNLOAD_MB / STORE_MB_S
    lines += estimate(300, [1, 10, 50], per_patch) + estimate(30_000, [100, 500, 2000], per_patch)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
