"""Overall, user's and producer's accuracy with 95 % confidence intervals, as a paper reports them.

Which estimator is right depends on how the evaluated pixels were chosen:

- **simple random** (or every pixel of a reference, treated as one): each accuracy is a binomial
  proportion (OA: correct / all; user's accuracy of class i: correct / mapped as i; producer's:
  correct / reference i), with the Wilson score interval, which stays inside [0, 1] and behaves
  for small counts and proportions near 0 or 1 (Wilson 1927; Agresti & Coull 1998);
- **stratified by map class** (the Sample design step): the Olofsson et al. (2014) estimators,
  weighting each stratum by its mapped area (``area.olofsson_estimates``), with their normal
  intervals.

An accuracy whose denominator is 0 (a class never mapped: no user's accuracy; absent from the
reference: no producer's accuracy) is undefined: None here, "n/a" in the report, never 0.
"""

from __future__ import annotations

import math

import numpy as np

from .olofsson import Z_95, olofsson_estimates

SIMPLE = "simple random"
STRATIFIED = "stratified by map class"


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float | None, float | None, float | None]:
    """(proportion, low, high) of a binomial proportion with the Wilson score interval; Nones when n = 0."""
    if n <= 0:
        return None, None, None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def _entry(value, low, high) -> dict:
    return {"value": value, "low": low, "high": high}


def simple_random_intervals(cm: np.ndarray, labels: list[int]) -> dict:
    """Wilson intervals from a (K, K) error matrix, rows = reference, columns = map."""
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm)
    per_class = []
    for i, cid in enumerate(labels):
        per_class.append(
            {
                "id": int(cid),
                "users_accuracy": _entry(*wilson_interval(int(tp[i]), int(cm[:, i].sum()))),
                "producers_accuracy": _entry(*wilson_interval(int(tp[i]), int(cm[i, :].sum()))),
            }
        )
    return {
        "design": SIMPLE,
        "method": "binomial proportions with Wilson score 95 % intervals",
        "overall_accuracy": _entry(*wilson_interval(int(tp.sum()), int(cm.sum()))),
        "per_class": per_class,
    }


def stratified_intervals(cm: np.ndarray, labels: list[int], mapped_pixels: np.ndarray, pixel_area_ha: float, names: list[str]) -> dict:
    """Olofsson et al. (2014) estimates from a (K, K) error matrix (rows = reference, columns = map) of a
    sample stratified by map class, with the mapped pixel count of every class."""
    est = olofsson_estimates(np.asarray(cm).T, mapped_pixels, pixel_area_ha, labels, names)

    def around(value, half):
        return _entry(value, None if value is None else max(0.0, value - half), None if value is None else min(1.0, value + half))

    per_class = [
        {
            "id": c["id"],
            "users_accuracy": around(c["users_accuracy"], c["users_accuracy_ci95"] or 0.0),
            "producers_accuracy": around(c["producers_accuracy"], c["producers_accuracy_ci95"] or 0.0),
            "area_ha": c["area_ha"],
            "area_ci95_ha": c["area_ci95_ha"],
        }
        for c in est["per_class"]
    ]
    return {
        "design": STRATIFIED,
        "method": "Olofsson et al. (2014) stratified estimators weighted by mapped area, 95 % normal intervals",
        "overall_accuracy": around(est["overall_accuracy"], est["overall_accuracy_ci95"]),
        "per_class": per_class,
        "notes": est["notes"],
    }
