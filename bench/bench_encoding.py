"""GeoTIFF encodings of the chain's files: write and read seconds, size, and whether values survive.

    .venv/bin/python bench/bench_encoding.py [--quick]

Files measured, each built from the real L1C scene of ../shared/data/s2cloudless-scene tiled
(as bench/run.py does): a time stack (512 × 512 px, 23 dates × 13 bands float32 reflectance, the
shape of an interpolated stack; NaN in 10 % of it, as clouds leave) and a cloud-mask stack
(512 × 512 px × 70 dates uint8, 0/1 in 16-px blobs, 255 outside the footprint). Every variant is
written through rasterio (GDAL 3.6, the library QGIS 3.22 on Debian uses) band by band as the
plugin's StackWriter does, read back window by window (tile-aligned), and compared with the
input. Best of 3 runs (the machine is shared). Writes the "Intermediate encodings" section
(run.py --only encoding).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TITLE = "## Intermediate encodings (GeoTIFF, GDAL 3.6)"

# name → creation options (tiled, band-interleaved as StackWriter writes) and the stored type.
FLOAT_VARIANTS = {
    "deflate, predictor 3 (float), 256 px tiles (before)": ({"compress": "deflate", "predictor": 3}, "float32", 256),
    "deflate, no predictor": ({"compress": "deflate"}, "float32", 256),
    "deflate level 1, predictor 3": ({"compress": "deflate", "predictor": 3, "zlevel": 1}, "float32", 256),
    "ZSTD level 1, predictor 3": ({"compress": "zstd", "predictor": 3, "zstd_level": 1}, "float32", 256),
    "ZSTD level 9, predictor 3": ({"compress": "zstd", "predictor": 3, "zstd_level": 9}, "float32", 256),
    "ZSTD level 1, predictor 3, 512 px tiles": ({"compress": "zstd", "predictor": 3, "zstd_level": 1}, "float32", 512),
    "LERC (max error 0 = lossless) + ZSTD": ({"compress": "lerc_zstd", "max_z_error": 0}, "float32", 256),
    "none": ({"compress": "none"}, "float32", 256),
    "scaled int16 (× 10000), ZSTD level 1, predictor 2": ({"compress": "zstd", "predictor": 2, "zstd_level": 1}, "int16", 256),
}
MASK_VARIANTS = {
    "deflate (before)": ({"compress": "deflate"}, "uint8", 256),
    "deflate, predictor 2": ({"compress": "deflate", "predictor": 2}, "uint8", 256),
    "ZSTD level 1": ({"compress": "zstd", "zstd_level": 1}, "uint8", 256),
    "none": ({"compress": "none"}, "uint8", 256),
}
INT16_NODATA = -32768


def float_stack(size: int, n_dates: int) -> np.ndarray:
    """(dates × 13, size, size) float32: the real scene tiled and shifted per date, 10 % NaN in blobs."""
    sys.path.insert(0, str(ROOT / "bench"))
    from run import S2_BANDS, blob_mask, scene_bands, tiled_date

    base = scene_bands(S2_BANDS)
    rng = np.random.default_rng(0)
    dates = []
    for t in range(n_dates):
        date = tiled_date(base, t, n_dates, size, size, S2_BANDS)
        date[:, blob_mask(rng, size, size, 0.1)] = np.nan
        dates.append(date)
    return np.concatenate(dates)


def mask_stack(size: int, n_dates: int) -> np.ndarray:
    sys.path.insert(0, str(ROOT / "bench"))
    from run import blob_mask

    rng = np.random.default_rng(1)
    masks = np.stack([blob_mask(rng, size, size, 0.4).astype(np.uint8) for _ in range(n_dates)])
    masks[:, :, : size // 8] = 255
    return masks


def encode(values: np.ndarray, dtype: str) -> tuple[np.ndarray, float | None]:
    """The stored array and nodata: scaled int16 keeps 4 decimals of reflectance (NaN → -32768)."""
    if dtype != "int16":
        return values, (float("nan") if values.dtype.kind == "f" else 255)
    scaled = np.where(np.isfinite(values), np.round(values * 10000), INT16_NODATA)
    return np.clip(scaled, -32767, 32767).astype(np.int16), INT16_NODATA


def decode(stored: np.ndarray, dtype: str) -> np.ndarray:
    if dtype != "int16":
        return stored
    out = stored.astype(np.float32) / 10000
    out[stored == INT16_NODATA] = np.nan
    return out


def measure(values: np.ndarray, options: dict, dtype: str, tile: int, folder: str, repeats: int) -> dict:
    import rasterio
    from rasterio.transform import from_origin

    from lc_plugin.io.rasters import file_windows

    count, height, width = values.shape
    stored, nodata = encode(values, dtype)
    path = os.path.join(folder, "variant.tif")
    profile = dict(
        driver="GTiff", width=width, height=height, count=count, dtype=dtype, crs="EPSG:32633", transform=from_origin(0, 0, 10, 10),
        nodata=nodata, tiled=True, blockxsize=tile, blockysize=tile, interleave="band", bigtiff="if_safer", **options,
    )
    writes, reads = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with rasterio.open(path, "w", **profile) as dst:
            for i in range(count):
                dst.write(stored[i], i + 1)
        writes.append(time.perf_counter() - t0)
        back = np.empty_like(stored)
        t0 = time.perf_counter()
        with rasterio.open(path) as src:
            for window in file_windows(height, width, count * stored.itemsize):
                back[:, window.toslices()[0], window.toslices()[1]] = src.read(window=window)
        reads.append(time.perf_counter() - t0)
    got = decode(back, dtype)
    both = np.isfinite(got) & np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
    exact = bool(np.array_equal(got, values, equal_nan=values.dtype.kind == "f"))
    error = float(np.abs(got[both].astype(np.float64) - values[both]).max()) if both.any() else 0.0
    return {"write": min(writes), "read": min(reads), "mb": os.path.getsize(path) / 1e6, "exact": exact, "error": error}


def table(title: str, values: np.ndarray, variants: dict, folder: str, repeats: int) -> list[str]:
    raw = values.nbytes / 1e6
    lines = [title, "", "| encoding | write s | read s | MB | × raw size | values |", "|---|---:|---:|---:|---:|---|"]
    for name, (options, dtype, tile) in variants.items():
        r = measure(values, options, dtype, tile, folder, repeats)
        kept = "identical" if r["exact"] else f"max error {r['error']:.1e}"
        lines.append(f"| {name} | {r['write']:.2f} | {r['read']:.2f} | {r['mb']:.0f} | {r['mb'] / raw:.2f} | {kept} |")
    return lines + [""]


def run(quick: bool = False) -> str:
    size, n_dates, n_masks, repeats = (128, 4, 10, 1) if quick else (512, 23, 70, 3)
    stack = float_stack(size, n_dates)
    masks = mask_stack(size, n_masks)
    with tempfile.TemporaryDirectory() as folder:
        lines = [
            TITLE,
            "",
            f"bench/bench_encoding.py, best of {repeats}: written band by band and read back in tile-aligned windows "
            "through rasterio on GDAL 3.6 (what QGIS 3.22 on Debian reads with). Lossless variants must give back the "
            "same values: the one-pass grid run and the separate steps must produce the same class map.",
            "",
        ]
        lines += table(
            f"Time stack: {size}×{size} px, {n_dates} dates × 13 bands float32 ({stack.nbytes / 1e6:.0f} MB raw), the real scene tiled, "
            "10 % NaN in blobs:",
            stack, FLOAT_VARIANTS, folder, repeats,
        )
        lines += table(
            f"Cloud-mask stack: {size}×{size} px × {n_masks} dates uint8 ({masks.nbytes / 1e6:.0f} MB raw):", masks, MASK_VARIANTS, folder, repeats
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    sys.stdout.write(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
