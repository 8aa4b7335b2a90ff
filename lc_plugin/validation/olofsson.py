"""Unbiased area estimates and accuracy from a stratified random sample (Olofsson et al. 2014): the arrays.

Olofsson, Foody, Herold, Stehman, Woodcock, Wulder (2014), "Good practices for estimating area
and assessing accuracy of land change", Remote Sensing of Environment 148:42–57. A map's pixel
counts are biased area estimates (every omission and commission error moves area between
classes); a stratified random sample labelled by an analyst gives an unbiased estimate with a
known standard error. The strata are the map classes; ``n[i, j]`` counts sample points mapped as
class i whose reference label is j, ``N[i]`` is the mapped pixel count of class i.

These array-level functions are checked against the paper's worked example; ``area`` holds the
file-level steps built on them. Every number returned is a finite float (or None where
undefined, with a note): the JSON holds no NaN.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.classes import NODATA_CLASS
from ..core.errors import DataError, InputError
from .metrics import ratio

Z_95 = 1.959963984540054  # two-sided 95 % normal quantile (the paper rounds to 1.96)
ALLOCATIONS = ("olofsson", "proportional", "equal")


def _check_sample(n: np.ndarray, big_n: np.ndarray, labels: list[int], names: list[str]) -> list[str]:
    """Refuse a sample that cannot give estimates (empty, or a mapped class without points); note single-point strata."""
    k = len(labels)
    if n.sum() <= 0:
        raise DataError(
            "The sample has no labelled point inside the map: nothing to estimate from. "
            "Label the points' reference field and check that they lie on classified pixels.",
            "n",
        )
    if big_n.sum() <= 0:
        raise DataError("The map has no classified pixel: no area to estimate.", "mapped_pixels")
    n_i = n.sum(axis=1)
    unsampled = [f"'{names[i]}' (id {labels[i]}, {int(big_n[i]):,} px)" for i in range(k) if big_n[i] > 0 and n_i[i] == 0]
    if unsampled:
        raise DataError(
            "Map class(es) " + ", ".join(unsampled) + " have no labelled sample point, so the area they hold cannot "
            "be estimated. Every mapped class is a stratum and needs sample points (at least 2; the paper advises "
            "50–100): draw the sample with the Sample design step and label every point.",
            "n",
        )
    notes: list[str] = []
    single = [f"'{names[i]}' (id {labels[i]})" for i in range(k) if n_i[i] == 1]
    if single:
        notes.append(
            "Stratum/strata " + ", ".join(single) + " have a single sample point: its variance cannot be estimated "
            "(n_i − 1 = 0) and is left out, so the standard errors are too small. Label at least 2 points per class."
        )
    return notes


def _producers_variance(big_n: np.ndarray, n_hat_j: np.ndarray, producers: np.ndarray, var_terms: np.ndarray) -> np.ndarray:
    """Variance of producer's accuracy P_j (eq. 7, in pixel totals N); 0 for a class no point references."""
    k = big_n.size
    var_users = np.diag(var_terms)
    var_prod = np.zeros(k)
    for j in range(k):
        if n_hat_j[j] <= 0:
            continue
        others = [i for i in range(k) if i != j]
        term1 = big_n[j] ** 2 * (1 - producers[j]) ** 2 * var_users[j]
        term2 = producers[j] ** 2 * float((big_n[others] ** 2 * var_terms[others, j]).sum())
        var_prod[j] = (term1 + term2) / n_hat_j[j] ** 2
    return var_prod


def olofsson_estimates(
    n: np.ndarray,
    mapped_pixels: np.ndarray,
    pixel_area_ha: float,
    labels: list[int],
    names: list[str] | None = None,
    *,
    z: float = Z_95,
) -> dict:
    """Stratified estimators of area proportions, areas, user's/producer's/overall accuracy and their SEs.

    ``n``: (K, K) sample counts, rows = map class (stratum), columns = reference class, in the
    order of ``labels``; ``mapped_pixels``: (K,) mapped pixel count per class. Equations of
    Olofsson et al. (2014): p̂_ij = W_i n_ij / n_i. (eq. 9), p̂_.j = Σ_i p̂_ij, its SE (eq. 10),
    user's U_i = n_ii / n_i., producer's P_j = p̂_jj / p̂_.j, overall O = Σ p̂_jj, their variances
    (eqs. 5–7). Raises DataError for an empty sample or a mapped class without sample points.
    """
    n = np.asarray(n, dtype=np.float64)
    big_n = np.asarray(mapped_pixels, dtype=np.float64)
    k = len(labels)
    names = [str(v) for v in names] if names is not None else [f"class {v}" for v in labels]
    if n.shape != (k, k) or big_n.shape != (k,):
        raise ValueError(f"n {n.shape} and mapped_pixels {big_n.shape} do not match {k} labels")
    n_i = n.sum(axis=1)
    notes = _check_sample(n, big_n, labels, names)
    total = float(big_n.sum())
    w = big_n / total
    frac = ratio(n, n_i[:, None])  # n_ij / n_i.
    p = w[:, None] * frac  # estimated area proportions p̂_ij (eq. 9)
    pj = p.sum(axis=0)  # p̂_.j
    den = np.where(n_i > 1, n_i - 1, np.inf)[:, None]  # a single-point stratum contributes no variance
    var_terms = frac * (1 - frac) / den
    se_pj = np.sqrt((w[:, None] ** 2 * var_terms).sum(axis=0))  # eq. 10
    diag = np.diag(frac)  # user's accuracy U_i = n_ii / n_i.
    users = diag
    var_users = np.diag(var_terms)
    overall = float(np.trace(p))
    var_overall = float((w**2 * var_users).sum())
    # Producer's accuracy P_j = p̂_jj / p̂_.j and its variance (eq. 7, in pixel totals N).
    n_hat_j = (big_n[:, None] * frac).sum(axis=0)  # estimated reference total of class j (pixels)
    producers = ratio(np.diag(p), pj)
    var_prod = _producers_variance(big_n, n_hat_j, producers, var_terms)
    no_ref = [i for i in range(k) if pj[i] <= 0]
    if no_ref:
        notes.append(
            "No sample point has the reference class "
            + ", ".join(f"'{names[i]}' (id {labels[i]})" for i in no_ref)
            + ": its estimated area is 0 and its producer's accuracy is undefined (reported as null)."
        )
    total_area = total * pixel_area_ha
    per_class = []
    for i in range(k):
        se_u = math.sqrt(var_users[i]) if n_i[i] > 0 else None
        se_p = math.sqrt(var_prod[i]) if pj[i] > 0 else None
        per_class.append(
            {
                "id": int(labels[i]),
                "name": names[i],
                "mapped_pixels": int(big_n[i]),
                "mapped_area_ha": float(big_n[i] * pixel_area_ha),
                "weight": float(w[i]),
                "sample_size": int(n_i[i]),
                "reference_count": int(n[:, i].sum()),
                "area_proportion": float(pj[i]),
                "area_proportion_se": float(se_pj[i]),
                "area_ha": float(pj[i] * total_area),
                "area_se_ha": float(se_pj[i] * total_area),
                "area_ci95_ha": float(z * se_pj[i] * total_area),
                "area_ci95_low_ha": float((pj[i] - z * se_pj[i]) * total_area),
                "area_ci95_high_ha": float((pj[i] + z * se_pj[i]) * total_area),
                "users_accuracy": float(users[i]) if n_i[i] > 0 else None,
                "users_accuracy_se": se_u,
                "users_accuracy_ci95": z * se_u if se_u is not None else None,
                "producers_accuracy": float(producers[i]) if pj[i] > 0 else None,
                "producers_accuracy_se": se_p,
                "producers_accuracy_ci95": z * se_p if se_p is not None else None,
            }
        )
    return {
        "method": "Olofsson et al. (2014) stratified estimator; strata = map classes",
        "labels": [int(v) for v in labels],
        "names": names,
        "n_sample": int(n.sum()),
        "total_pixels": int(total),
        "pixel_area_ha": float(pixel_area_ha),
        "total_area_ha": float(total_area),
        "z": float(z),
        "overall_accuracy": overall,
        "overall_accuracy_se": math.sqrt(var_overall),
        "overall_accuracy_ci95": z * math.sqrt(var_overall),
        "per_class": per_class,
        "sample_counts": n.astype(np.int64).tolist(),
        "area_proportions": p.tolist(),
        "notes": notes,
    }


# ---------------------------------------------------------------------------------------------
# Sample design


def cochran_sample_size(weights, users_accuracy, target_se: float) -> int:
    """Total sample size for a target standard error of overall accuracy (Olofsson et al. 2014, eq. 13).

    n = (Σ W_i S_i / S(Ô))² with S_i = sqrt(U_i (1 − U_i)) and U_i the expected user's accuracy.
    """
    w = np.asarray(weights, dtype=np.float64)
    u = np.broadcast_to(np.asarray(users_accuracy, dtype=np.float64), w.shape)
    if not target_se > 0:
        raise InputError(f"The target standard error must be above 0, got {target_se}.", "target_se")
    if np.any((u <= 0) | (u >= 1)):
        raise InputError(f"Expected user's accuracies must lie strictly between 0 and 1, got {u.tolist()}.", "users_accuracy")
    s = np.sqrt(u * (1 - u))
    return max(1, math.ceil((float((w * s).sum()) / target_se) ** 2))


def allocate_sample(total: int, mapped_pixels, allocation: str = "olofsson", min_per_class: int = 50) -> np.ndarray:
    """Points per stratum (int64), never more than the stratum's pixels.

    ``olofsson``: every class gets at least ``min_per_class`` (the paper's 50–100 for rare
    classes), the rest is shared in proportion to mapped area; ``proportional``: in proportion to
    area only (rare classes may get few or none); ``equal``: the same number per class.
    """
    big_n = np.asarray(mapped_pixels, dtype=np.int64)
    if allocation not in ALLOCATIONS:
        raise InputError(f"The allocation must be one of {', '.join(ALLOCATIONS)}, got '{allocation}'.", "allocation")
    if total < 1:
        raise InputError(f"The sample size must be at least 1, got {total}.", "total")
    if min_per_class < 0:
        raise InputError(f"The minimum per class must be 0 or more, got {min_per_class}.", "min_per_class")
    present = big_n > 0
    k = int(present.sum())
    if k == 0:
        raise DataError("The map has no classified pixel to sample.", "mapped_pixels")
    w = ratio(big_n, big_n.sum())
    if allocation == "equal":
        share = np.where(present, total / k, 0.0)
    elif allocation == "proportional":
        share = total * w
    else:
        fixed = np.zeros(big_n.size, dtype=bool)
        share = np.zeros(big_n.size)
        for _ in range(big_n.size + 1):  # classes below the minimum get it; the rest is reshared
            rest = total - min_per_class * int((fixed & present).sum())
            free = present & ~fixed
            share = np.where(fixed & present, float(min_per_class), 0.0)
            if rest > 0 and free.any():
                share[free] = rest * big_n[free] / big_n[free].sum()
            below = free & (share < min_per_class)
            if not below.any():
                break
            fixed |= below
    # Largest-remainder rounding, then the cap at the stratum size.
    base = np.floor(share).astype(np.int64)
    left = int(round(share.sum())) - int(base.sum())
    if left > 0:
        order = np.argsort(-(share - base), kind="stable")
        base[order[:left]] += 1
    return np.minimum(base, big_n)


def draw_stratified_sample(labels: np.ndarray, per_class: dict[int, int], rng: np.random.Generator) -> np.ndarray:
    """Sorted flat pixel indices: a simple random sample without replacement of ``per_class[c]`` pixels of class c."""
    flat = labels.ravel()
    chosen = []
    for cid, count in per_class.items():
        if count <= 0:
            continue
        members = np.flatnonzero(flat == cid)
        chosen.append(rng.choice(members, size=min(int(count), members.size), replace=False))
    if not chosen:
        return np.empty(0, dtype=np.int64)
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def mapped_pixel_counts(labels: np.ndarray) -> np.ndarray:
    """(256,) int64 pixel count per class id; id 0 (no data) set to 0."""
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=256)[:256].copy()
    counts[NODATA_CLASS] = 0
    return counts
