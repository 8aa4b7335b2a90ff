"""Rebuild ``eo-learn-testpatch/testpatch_2017.npz`` from the full eo-learn test patch.

Run once by hand (``python demo/data/extract_testpatch.py SRC_DIR``) where SRC_DIR is the
unpacked eo-learn example patch (it holds ``TestEOPatch/`` and ``REFERENCE_SCENES.npy``).
Only the 2017 dates and the arrays the demo scene generator needs are kept, so the embedded
copy stays small. See ``demo/data/README.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEST = os.path.join(HERE, "eo-learn-testpatch")
YEAR = "2017"
# REFERENCE_SCENES.npy holds these frames of the time series, in this order.
REFERENCE_FRAMES = [2, 1, 4, 3, 0]


def extract(src: str, dest: str = DEST) -> str:
    """Write the compact npz plus the licence, bbox and reference polygons into ``dest``."""
    patch = os.path.join(src, "TestEOPatch")
    with open(os.path.join(patch, "timestamps.json"), encoding="utf-8") as f:
        timestamps = json.load(f)
    keep = [i for i, t in enumerate(timestamps) if t.startswith(YEAR)]

    ndvi = np.load(os.path.join(patch, "data", "NDVI.npy"), allow_pickle=False)[..., 0]
    clp = np.load(os.path.join(patch, "data", "CLP.npy"), allow_pickle=False)[..., 0]
    clm = np.load(os.path.join(patch, "mask", "CLM.npy"), allow_pickle=False)[..., 0]
    scenes = np.load(os.path.join(src, "REFERENCE_SCENES.npy"), allow_pickle=False)

    # Base scene: the stored 13-band frame whose date has the least cloud (CLM); ties are
    # broken by the lowest mean cloud probability (CLP).
    scores = [(float(clm[f].mean()), float(clp[f].mean()), k) for k, f in enumerate(REFERENCE_FRAMES)]
    _, _, best = min(scores)
    base_frame = REFERENCE_FRAMES[best]

    os.makedirs(dest, exist_ok=True)
    np.savez_compressed(
        os.path.join(dest, "testpatch_2017.npz"),
        timestamps=np.array([timestamps[i] for i in keep], dtype="U19"),
        ndvi=ndvi[keep].astype(np.float32),
        clm=clm[keep].astype(np.uint8),
        # CLP is float32 0-1 in the source; 1/255 steps are plenty for the demo.
        clp_u8=np.round(np.clip(clp[keep], 0.0, 1.0) * 255).astype(np.uint8),
        base_scene=scenes[best].astype(np.float32),
        base_timestamp=np.array(timestamps[base_frame], dtype="U19"),
        base_ndvi=ndvi[base_frame].astype(np.float32),
    )
    shutil.copyfile(os.path.join(src, "LICENSE"), os.path.join(dest, "LICENSE"))
    for rel in (os.path.join("TestEOPatch", "bbox.geojson"), os.path.join("TestEOPatch", "vector_timeless", "LULC.gpkg")):
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copyfile(os.path.join(src, rel), os.path.join(dest, rel))
    return dest


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: extract_testpatch.py SRC_DIR")
    extract(sys.argv[1])


if __name__ == "__main__":
    main()
