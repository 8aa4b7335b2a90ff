"""eo-learn 1.5's own pipeline on a time-stack GeoTIFF: the whole patch as its land-cover example runs it.

Usage (in bench/.venv-eolearn): python eolearn_chain.py STACK MODEL_TXT DATES_JSON FACTOR STEP_DAYS MIN_VALID SPLIT OUT_NPY

Per EOPatch (the stack split into SPLIT × SPLIT patches, as eo-learn processes an area):
ImportFromTiffTask (eo-learn's reader, the patch's window) → IS_DATA (all bands finite) →
s2cloudless at the processing resolution (block means of FACTOR × FACTOR pixels, the same
S2PixelCloudDetector that eo-learn's CloudMaskTask wraps, probabilities interpolated back
bilinearly with cv2, its averaging/threshold/dilation at 10 m: CloudMaskTask 1.5 has no
resolution option, its examples requested 40–160 m data instead) → IS_VALID → SimpleFilterTask
with the land-cover example's ValidDataFractionPredicate → LinearInterpolationTask (parallel
numba) onto every STEP_DAYS days → NormalizedDifferenceIndexTask for NDVI, NDWI, NDBI →
LightGBM's own predict of the features (date-major: 13 bands + 3 indices per date, the
layout of the plugin's model). Prints one JSON line: seconds per step (summed over patches) and
in total; saves the class map.
"""

import datetime as dt
import json
import sys
import time

import cv2
import lightgbm
import numpy as np
import rasterio
from eolearn.core import EOPatch, EOTask, FeatureType, MapFeatureTask, ZipFeatureTask
from eolearn.features import NormalizedDifferenceIndexTask, SimpleFilterTask
from eolearn.features.extra.interpolation import LinearInterpolationTask
from eolearn.io import ImportFromTiffTask
from s2cloudless import S2PixelCloudDetector
from sentinelhub import CRS, BBox

S2 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
CLOUD_INDICES = [0, 1, 3, 4, 7, 8, 9, 10, 11, 12]  # CloudMaskTask's all_bands=True selection
BANDS = (FeatureType.DATA, "BANDS")


class ValidDataFractionPredicate:
    """The predicate of eo-learn's land-cover example: keep a date whose valid fraction exceeds the threshold."""

    def __init__(self, threshold):
        self.threshold = threshold

    def __call__(self, array):
        return np.sum(array.astype(np.uint8)) / np.prod(array.shape) > self.threshold


class CoarseCloudMaskTask(EOTask):
    """CloudMaskTask's detector on FACTOR × FACTOR block means, probabilities upsampled, post-processing at 10 m."""

    def __init__(self, factor):
        self.factor = factor
        self.detector = S2PixelCloudDetector(threshold=0.4, average_over=4, dilation_size=2, all_bands=False)

    def execute(self, eopatch):
        data = eopatch[BANDS][..., CLOUD_INDICES]
        t, h, w, c = data.shape
        f = self.factor
        coarse = np.nanmean(data.reshape(t, h // f, f, w // f, f, c), axis=(2, 4)) if f > 1 else data
        proba = self.detector.get_cloud_probability_maps(np.nan_to_num(coarse))
        if f > 1:
            proba = np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in proba])
        mask = self.detector.get_mask_from_prob(proba.astype(np.float32))
        eopatch[FeatureType.MASK, "CLM"] = mask[..., np.newaxis].astype(bool)
        return eopatch


def main():
    stack, model_txt, dates_json, factor, step, min_valid, split, out = sys.argv[1:9]
    factor, step, min_valid, split = int(factor), int(step), float(min_valid), int(split)
    dates = [dt.datetime.fromisoformat(d) for d in json.loads(open(dates_json).read())]
    booster = lightgbm.Booster(model_file=model_txt)
    with rasterio.open(stack) as src:
        bounds, height, width, crs = src.bounds, src.height, src.width, src.crs.to_epsg()
    resample = []
    day = dates[0]
    while day <= dates[-1]:
        resample.append(day)
        day += dt.timedelta(days=step)
    i = {b: S2.index(b) for b in S2}
    tasks = [
        ("read", ImportFromTiffTask(BANDS, stack, timestamp_size=len(dates))),
        ("valid data", MapFeatureTask(BANDS, (FeatureType.MASK, "IS_DATA"), lambda x: np.isfinite(x).all(axis=-1, keepdims=True))),
        ("cloud masks", CoarseCloudMaskTask(factor)),
        ("valid data", ZipFeatureTask([(FeatureType.MASK, "IS_DATA"), (FeatureType.MASK, "CLM")], (FeatureType.MASK, "IS_VALID"), lambda d, c: d & ~c)),
        ("filter", SimpleFilterTask((FeatureType.MASK, "IS_VALID"), ValidDataFractionPredicate(min_valid))),
        ("interpolate", LinearInterpolationTask(BANDS, mask_feature=(FeatureType.MASK, "IS_VALID"), resample_range=resample, parallel=True)),
        ("indices", NormalizedDifferenceIndexTask(BANDS, (FeatureType.DATA, "NDVI"), (i["B08"], i["B04"]))),
        ("indices", NormalizedDifferenceIndexTask(BANDS, (FeatureType.DATA, "NDWI"), (i["B03"], i["B08"]))),
        ("indices", NormalizedDifferenceIndexTask(BANDS, (FeatureType.DATA, "NDBI"), (i["B11"], i["B08"]))),
    ]
    LinearInterpolationTask(BANDS, resample_range=resample[:2], parallel=True).execute(_tiny(dates))  # numba compiles first
    steps = {}
    labels = np.zeros((height, width), dtype=np.uint8)
    rows, cols = height // split, width // split
    total = time.perf_counter()
    for r in range(split):
        for c in range(split):
            x0, y1 = bounds.left + c * cols * 10, bounds.top - r * rows * 10
            patch = EOPatch(bbox=BBox((x0, y1 - rows * 10, x0 + cols * 10, y1), CRS(crs)), timestamps=dates)
            for name, task in tasks:
                t0 = time.perf_counter()
                patch = task.execute(patch)
                steps[name] = steps.get(name, 0.0) + time.perf_counter() - t0
            t0 = time.perf_counter()
            feats = np.concatenate([patch[BANDS], patch[FeatureType.DATA, "NDVI"], patch[FeatureType.DATA, "NDWI"], patch[FeatureType.DATA, "NDBI"]], axis=-1)
            t_, h, w, f = feats.shape
            x = np.moveaxis(feats, 0, 2).reshape(h * w, t_ * f)
            pred = np.argmax(booster.predict(x), axis=1) + 1
            labels[r * rows : (r + 1) * rows, c * cols : (c + 1) * cols] = pred.reshape(h, w)
            steps["features + predict"] = steps.get("features + predict", 0.0) + time.perf_counter() - t0
            del patch, feats, x
    seconds = time.perf_counter() - total
    np.save(out, labels)
    print(json.dumps({"seconds": seconds, "steps": steps}))


def _tiny(dates):
    patch = EOPatch(bbox=BBox((0, 0, 80, 80), CRS.UTM_33N), timestamps=dates)
    patch[BANDS] = np.random.default_rng(0).random((len(dates), 8, 8, 2)).astype(np.float32)
    return patch


if __name__ == "__main__":
    main()
