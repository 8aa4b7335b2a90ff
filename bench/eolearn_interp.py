"""eo-learn 1.5's LinearInterpolationTask on arrays from .npy files (runs in bench/.venv-eolearn).

Usage: python eolearn_interp.py WORK_DIR REPEATS [SAVE_RESULT]
Reads WORK_DIR/interp_thwb.npy (T, H, W, B) float32, interp_valid.npy (T, H, W) bool,
interp_days.npy (T,) and interp_targets.npy (N,) day ordinals; prints one JSON line with the
execute() times. The task is the one from eo-learn's land-cover example (mask feature, resample
range as explicit dates, parallel numba). A tiny warm-up patch compiles numba first.
"""

import datetime as dt
import json
import sys
import time

import numpy as np
from eolearn.core import EOPatch, FeatureType
from eolearn.features.extra.interpolation import LinearInterpolationTask
from sentinelhub import CRS, BBox


def make_patch(data, valid, days):
    patch = EOPatch(bbox=BBox((0, 0, 10 * data.shape[2], 10 * data.shape[1]), CRS.UTM_33N))
    patch.timestamps = [dt.datetime.fromordinal(int(d)) for d in days]
    patch[FeatureType.DATA, "BANDS"] = data
    patch[FeatureType.MASK, "VALID"] = valid[..., np.newaxis]
    return patch


def main():
    work, repeats = sys.argv[1], int(sys.argv[2])
    save = len(sys.argv) > 3
    data = np.load(f"{work}/interp_thwb.npy")
    valid = np.load(f"{work}/interp_valid.npy")
    days = np.load(f"{work}/interp_days.npy")
    targets = np.load(f"{work}/interp_targets.npy")
    resample = [dt.datetime.fromordinal(int(d)) for d in targets]
    task = LinearInterpolationTask((FeatureType.DATA, "BANDS"), mask_feature=(FeatureType.MASK, "VALID"), resample_range=resample, parallel=True)
    task.execute(make_patch(data[:, :8, :8], valid[:, :8, :8], days))  # numba compilation
    times = []
    for _ in range(repeats):
        patch = make_patch(data, valid, days)
        t0 = time.perf_counter()
        out = task.execute(patch)
        times.append(time.perf_counter() - t0)
        result = out[FeatureType.DATA, "BANDS"]
        del out, patch
    if save:
        np.save(f"{work}/interp_eolearn_out.npy", result)
    print(json.dumps({"seconds": min(times), "times": times, "shape": list(result.shape)}))


if __name__ == "__main__":
    main()
