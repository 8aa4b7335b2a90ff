"""Patches per minute of the grid runner (lc_plugin.batch) for 1 and 2 workers, process pool and Dask.

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _setup(tmp: str, patch_px: int):
    from demo.scene import build_scene
    from lc_plugin.batch import BatchParameters
    from lc_plugin.download import download_patch
    from lc_plugin.grid import create_grid, read_patches
    from lc_plugin.interpolate import interpolate_file
    from lc_plugin.reference import rasterize_reference_file
    from lc_plugin.train import train_classifier

    scene = build_scene(os.path.join(tmp, "scene"))
    return scene, (create_grid, read_patches, download_patch, interpolate_file, rasterize_reference_file, train_classifier, BatchParameters)


def run(quick: bool = False) -> str:
    """Markdown section: patches per minute for each executor and worker count."""
    from demo.stac_server import StacServer
    from lc_plugin.batch import run_batch

    patch_px = 40 if quick else 25
    configs = [("sequential", 1), ("processes", 1), ("processes", 2), ("dask", 1), ("dask", 2)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="lc-bench-batch-") as tmp:
        scene, (create_grid, read_patches, download_patch, interpolate_file, rasterize_reference_file, train_classifier, BatchParameters) = _setup(
            tmp, patch_px
        )
        start, end = scene.start, scene.end
        with StacServer(scene.root) as server:
            one = os.path.join(tmp, "one.gpkg")
            create_grid(scene.aoi_path, one, patch_px=100)
            stack, interp, ref, model = (os.path.join(tmp, n) for n in ("s.tif", "i.tif", "r.tif", "m.onnx"))
            download_patch(read_patches(one)[0], stack, start=start, end=end, stac_url=server.url, collection=scene.collection, max_cloud=100)
            interpolate_file(stack, interp, step_days=30, start=start, end=end)
            rasterize_reference_file(scene.reference_path, "LULC_ID", interp, ref)
            train_classifier([interp], [ref], model, n_estimators=20, samples_per_class=500, drop_empty_classes=True)
            grid = os.path.join(tmp, "grid.gpkg")
            n = create_grid(scene.aoi_path, grid, patch_px=patch_px)
            params = BatchParameters(
                grid=grid,
                model=model,
                start=start.isoformat(),
                end=end.isoformat(),
                stac_url=server.url,
                collection=scene.collection,
                max_cloud=100,
                cloud_method="scl",
                step_days=30,
                reference=scene.reference_path,
                reference_field="LULC_ID",
                download_threads=2,
            )
            for executor, workers in configs:
                t = time.perf_counter()
                result = run_batch(params, os.path.join(tmp, f"{executor}_{workers}"), executor=executor, workers=workers)
                wall = time.perf_counter() - t
                assert not result.failed, result.failed
                rows.append((executor, workers, n, wall, 60.0 * n / wall))
    base = rows[0][4]
    lines = [
        "## Grid runs (lc_plugin.batch)",
        "",
        f"{n} demo patches of {patch_px} × {patch_px} px, {start} – {end} (whole chain: download from a local STAC server → "
        f"SCL masks → filter → interpolate 30 d → reference → classify), then mosaic and report. Wall time includes starting "
        f"the pool / LocalCluster. Machine: {platform.machine()}, {os.cpu_count()} CPUs.",
        "",
        "| executor | workers | patches | wall (s) | patches / min | vs sequential |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {e} | {w} | {p} | {s:.1f} | {ppm:.1f} | {ppm / base:.2f}× |" for e, w, p, s, ppm in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
