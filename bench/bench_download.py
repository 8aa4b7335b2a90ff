"""Download benchmark: one 1000×1000 px patch × 30 dates from the local STAC/COG server.

``run(quick=False) -> str`` returns a markdown section (bench/run.py puts it in RESULTS.md;
``python bench/bench_download.py [--quick]`` prints it). The scene is generated under
bench/work/download/: per date one tile of uint16 COGs (B02, B03, B04, B08 at 10 m; B11, B12,
SCL at 20 m; 256 px blocks, deflate) a little larger than the patch and offset from it, so
every read is a windowed, reprojected read as against Earth Search. The server runs in its own
process (demo.stac_server over real HTTP on 127.0.0.1), so it does not share the GIL with the
download threads. Each configuration starts with GDAL's in-memory cache cleared and no scene
cache; MB/s counts body bytes the server sent (network) and float32 stack bytes produced.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work" / "download"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BANDS = ["B02", "B03", "B04", "B08", "B11", "B12", "SCL"]
RES = {"B11": 20, "B12": 20, "SCL": 20}
X0, Y0 = 500000.0, 5100000.0  # tile origin; the patch starts 1 km in
COLLECTION = "bench-s2"
LATENCY = 0.03  # seconds the server waits before each file answer in the latency rows


def build_scene(root: Path, n_dates: int, patch_px: int) -> Path:
    """Items and COGs for ``n_dates`` dates; reused when already there."""
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    from demo.scene import write_cog

    marker = root / f"done_{n_dates}_{patch_px}"
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "items").mkdir(parents=True)
    (root / "collection.json").write_text(json.dumps({"type": "Collection", "id": COLLECTION, "stac_version": "1.0.0"}))
    size_m = (patch_px + 200) * 10  # 1 km margin each side... the patch is inside the tile
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : size_m // 10, 0 : size_m // 10]
    field = (np.sin(xx / 37.0) + np.cos(yy / 23.0)) * 800 + 3000
    for t in range(n_dates):
        day = date(2023, 1, 1) + timedelta(days=5 * t)
        item_id = f"BENCH_{day:%Y%m%d}"
        assets = {}
        for bi, band in enumerate(BANDS):
            res = RES.get(band, 10)
            step = res // 10
            if band == "SCL":
                arr = rng.integers(2, 11, size=(size_m // res, size_m // res), dtype=np.uint8)
            else:
                base = field[::step, ::step] + 150 * bi + 20 * t
                arr = (base + rng.normal(0, 40, base.shape)).clip(1, 65535).astype(np.uint16)
            rel = f"cogs/{item_id}/{band}.tif"
            os.makedirs(root / "cogs" / item_id, exist_ok=True)
            write_cog(str(root / rel), arr, (X0, res, 0, Y0, 0, -res), CRS.from_epsg(32633).to_wkt(), blocksize=256, overviews="NONE")
            assets[band] = {"href": rel, "raster:bands": [{"nodata": 0} if band == "SCL" else {"scale": 0.0001, "nodata": 0}]}
        b84 = transform_bounds("EPSG:32633", "EPSG:4326", X0, Y0 - size_m, X0 + size_m, Y0)
        item = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": item_id,
            "collection": COLLECTION,
            "bbox": list(b84),
            "geometry": None,
            "properties": {"datetime": f"{day}T10:00:00Z", "eo:cloud_cover": 5.0},
            "assets": assets,
        }
        (root / "items" / f"{item_id}.json").write_text(json.dumps(item))
    marker.write_text("ok")
    return root


def _start_server(root: Path, latency: float = 0.0) -> tuple[subprocess.Popen, str]:
    code = (
        f"import sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
        "from demo.stac_server import StacServer\n"
        f"s = StacServer({str(root)!r}, page_size=100, latency={latency!r}).start(); print(s.url, flush=True)\n"
        "while True: time.sleep(3600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    return proc, url


def _stats(url: str) -> dict:
    import requests

    return requests.get(url + "/_stats", timeout=10).json()


def run(quick: bool = False) -> str:
    """Serial vs concurrent download of one patch, without and with added latency; markdown."""
    from osgeo import gdal
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    from lc_plugin.io.rasters import Grid
    from lc_plugin.runs.grid import Patch
    from lc_plugin.sources.download import download_patch

    n_dates, patch_px = (6, 400) if quick else (30, 1000)
    threads_list = [1, 4] if quick else [1, 2, 4, 8]
    repeats = 1 if quick else 2
    root = build_scene(WORK / f"scene_{n_dates}_{patch_px}", n_dates, patch_px)
    grid = Grid(CRS.from_epsg(32633), Affine(10.0, 0.0, X0 + 1000, 0.0, -10.0, Y0 - 1000), patch_px, patch_px)
    patch = Patch("bench", grid)
    stack_mb = n_dates * len(BANDS) * patch_px * patch_px * 4 / 1e6
    configs = [(t, 0.0) for t in threads_list] + [(t, LATENCY) for t in (1, threads_list[-1])]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for latency in sorted({lat for _, lat in configs}):
            proc, url = _start_server(root, latency)
            try:
                for threads in [t for t, lat in configs if lat == latency]:
                    times, reqs, sent = [], [], []
                    for r in range(repeats):
                        gdal.VSICurlClearCache()
                        before = _stats(url)
                        t0 = time.perf_counter()
                        download_patch(
                            patch,
                            os.path.join(tmp, f"p{threads}_{r}.tif"),
                            start=date(2023, 1, 1),
                            end=date(2023, 12, 31),
                            stac_url=url,
                            collection=COLLECTION,
                            bands=BANDS,
                            threads=threads,
                            cache_dir=None,
                        )
                        times.append(time.perf_counter() - t0)
                        after = _stats(url)
                        reqs.append(after["requests"] - before["requests"] - 1)
                        sent.append(after["bytes_sent"] - before["bytes_sent"])
                    rows.append((threads, latency, statistics.median(times), statistics.median(sent) / 1e6, statistics.median(reqs)))
            finally:
                proc.terminate()
                proc.wait(10)
    serial = {lat: next(r[2] for r in rows if r[1] == lat and r[0] == 1) for lat in {r[1] for r in rows}}
    lines = [
        "## Download (local STAC API + COGs over HTTP)",
        "",
        f"One {patch_px}×{patch_px} px patch (10 m, EPSG:32633) × {n_dates} dates × {len(BANDS)} bands "
        f"({', '.join(BANDS)}; 20 m bands and SCL warped to 10 m), STAC search + GDAL /vsicurl/ windowed reads "
        "from demo.stac_server in its own process on 127.0.0.1; no scene cache, GDAL's cache cleared per run; "
        f"median of {repeats} run(s); {os.cpu_count()} CPU cores.",
        "",
        "| threads | added latency per request | seconds | network MB | network MB/s | stack MB/s | HTTP requests per patch | speed-up vs 1 thread |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for threads, latency, seconds, net_mb, nreq in rows:
        lines.append(
            f"| {threads} | {latency * 1000:.0f} ms | {seconds:.2f} | {net_mb:.1f} | {net_mb / seconds:.1f} | "
            f"{stack_mb / seconds:.1f} | {nreq:.0f} | {serial[latency] / seconds:.2f}× |"
        )
    lines += [
        "",
        "Network MB/s is what the server sent (COG headers + the tiles under the patch, STAC pages); stack MB/s is "
        "the float32 stack produced. With no added latency the run is CPU-bound on this machine (warping, the "
        "server, the stack's deflate compression); the rows with added latency (the server waits before each file "
        "answer, like a remote object store's round trip) show what parallel requests buy.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(run(quick="--quick" in sys.argv))
