"""Unbiased area estimates and accuracy from a stratified random sample (Olofsson et al. 2014).

Olofsson, Foody, Herold, Stehman, Woodcock, Wulder (2014), "Good practices for estimating area
and assessing accuracy of land change", Remote Sensing of Environment 148:42–57. A map's pixel
counts are biased area estimates (every omission and commission error moves area between
classes); a stratified random sample labelled by an analyst gives an unbiased estimate with a
known standard error. The strata are the map classes; ``n[i, j]`` counts sample points mapped as
class i whose reference label is j, ``N[i]`` is the mapped pixel count of class i.

Array-level functions (``olofsson_estimates``, ``cochran_sample_size``, ``allocate_sample``,
``draw_stratified_sample``) are checked against the paper's worked example; the file-level
entry points (``sample_design_file``, ``area_estimate_file``) serve the Processing algorithms.
Every number returned is a finite float (or None where undefined, with a note): the JSON holds
no NaN.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime as dt
import html
import io
import json
import math
import os

import numpy as np
import rasterio

from ..core.atomic import atomic_output, check_not_input
from ..core.classes import NODATA_CLASS, ClassTable, LandCoverClass, default_color
from ..core.errors import Cancelled, LandCoverError
from ..core.monitor import ensure_monitor
from ..io.rasters import Grid

Z_95 = 1.959963984540054  # two-sided 95 % normal quantile (the paper rounds to 1.96)
ALLOCATIONS = ("olofsson", "proportional", "equal")


def _ratio(num, den) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


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
    (eqs. 5–7). Raises LandCoverError for an empty sample or a mapped class without sample points.
    """
    n = np.asarray(n, dtype=np.float64)
    big_n = np.asarray(mapped_pixels, dtype=np.float64)
    k = len(labels)
    names = [str(v) for v in names] if names is not None else [f"class {v}" for v in labels]
    if n.shape != (k, k) or big_n.shape != (k,):
        raise ValueError(f"n {n.shape} and mapped_pixels {big_n.shape} do not match {k} labels")
    if n.sum() <= 0:
        raise LandCoverError(
            "The sample has no labelled point inside the map: nothing to estimate from. "
            "Label the points' reference field and check that they lie on classified pixels.",
            "SAMPLE",
        )
    if big_n.sum() <= 0:
        raise LandCoverError("The map has no classified pixel: no area to estimate.", "INPUT")
    n_i = n.sum(axis=1)
    unsampled = [f"'{names[i]}' (id {labels[i]}, {int(big_n[i]):,} px)" for i in range(k) if big_n[i] > 0 and n_i[i] == 0]
    if unsampled:
        raise LandCoverError(
            "Map class(es) " + ", ".join(unsampled) + " have no labelled sample point, so the area they hold cannot "
            "be estimated. Every mapped class is a stratum and needs sample points (at least 2; the paper advises "
            "50–100): draw the sample with the Sample design step and label every point.",
            "SAMPLE",
        )
    notes: list[str] = []
    single = [f"'{names[i]}' (id {labels[i]})" for i in range(k) if n_i[i] == 1]
    if single:
        notes.append(
            "Stratum/strata " + ", ".join(single) + " have a single sample point: its variance cannot be estimated "
            "(n_i − 1 = 0) and is left out, so the standard errors are too small. Label at least 2 points per class."
        )
    total = float(big_n.sum())
    w = big_n / total
    frac = _ratio(n, n_i[:, None])  # n_ij / n_i.
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
    producers = _ratio(np.diag(p), pj)
    var_prod = np.zeros(k)
    for j in range(k):
        if n_hat_j[j] <= 0:
            continue
        others = [i for i in range(k) if i != j]
        term1 = big_n[j] ** 2 * (1 - producers[j]) ** 2 * var_users[j]
        term2 = producers[j] ** 2 * float((big_n[others] ** 2 * var_terms[others, j]).sum())
        var_prod[j] = (term1 + term2) / n_hat_j[j] ** 2
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
        raise LandCoverError(f"The target standard error must be above 0, got {target_se}.", "TARGET_SE")
    if np.any((u <= 0) | (u >= 1)):
        raise LandCoverError(f"Expected user's accuracies must lie strictly between 0 and 1, got {u.tolist()}.", "EXPECTED_ACCURACY")
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
        raise LandCoverError(f"The allocation must be one of {', '.join(ALLOCATIONS)}, got '{allocation}'.", "ALLOCATION")
    if total < 1:
        raise LandCoverError(f"The sample size must be at least 1, got {total}.", "SAMPLE_SIZE")
    if min_per_class < 0:
        raise LandCoverError(f"The minimum per class must be 0 or more, got {min_per_class}.", "MIN_PER_CLASS")
    present = big_n > 0
    k = int(present.sum())
    if k == 0:
        raise LandCoverError("The map has no classified pixel to sample.", "INPUT")
    w = _ratio(big_n, big_n.sum())
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


# ---------------------------------------------------------------------------------------------
# Files: the sample design (map → points to label) and the estimates (labelled points + map → report)


def _read_map(path: str) -> tuple[np.ndarray, ClassTable, Grid, float]:
    """Labels (0 = no data), class table (ids seen get names) and pixel area in hectares of a class raster."""
    from .report import _read_label_raster

    labels, table, grid = _read_label_raster(path, "INPUT", "land-cover map")
    if grid.crs is None or not grid.crs.is_projected:
        raise LandCoverError(f"The map {path} is not in a projected CRS ({grid.crs}); areas need metres. Use a map on a UTM grid.", "INPUT")
    factor = grid.crs.linear_units_factor[1] if grid.crs.linear_units_factor else 1.0
    pixel_area_ha = abs(grid.transform.a * grid.transform.e) * factor * factor / 10_000.0
    present = [int(v) for v in np.flatnonzero(mapped_pixel_counts(labels))]
    if not present:
        raise LandCoverError(f"The map {path} has no classified pixel (every pixel is 0 = no data).", "INPUT")
    known = {c.id: c for c in table or ()}
    merged = [known.get(cid) or LandCoverClass(cid, f"class {cid}", default_color(cid)) for cid in present]
    merged += [c for cid, c in known.items() if cid not in present and cid != NODATA_CLASS]
    return labels, ClassTable(merged), grid, pixel_area_ha


def parse_expected_accuracy(text: str | None, default: float, ids: list[int]) -> np.ndarray:
    """Expected user's accuracy per class: ``default`` unless ``text`` ("id:value, …") says otherwise."""
    values = {cid: float(default) for cid in ids}
    for part in (text or "").replace(";", ",").split(","):
        if not part.strip():
            continue
        try:
            key, value = part.split(":")
            cid, acc = int(key), float(value)
        except ValueError as exc:
            raise LandCoverError(
                f"Cannot read '{part.strip()}': expected class id:accuracy pairs such as '1:0.7, 4:0.9'.",
                "EXPECTED_ACCURACY_BY_CLASS",
            ) from exc
        if cid not in values:
            raise LandCoverError(f"Class id {cid} is not in the map (classes {ids}).", "EXPECTED_ACCURACY_BY_CLASS")
        values[cid] = acc
    return np.array([values[cid] for cid in ids])


def sample_design_file(
    map_path: str,
    out_path: str,
    *,
    sample_size: int = 0,
    target_se: float = 0.01,
    expected_accuracy: float = 0.85,
    expected_accuracy_by_class: str | None = None,
    allocation: str = "olofsson",
    min_per_class: int = 50,
    label_field: str = "reference",
    seed: int = 42,
    monitor=None,
) -> dict:
    """Draw a stratified random sample of pixel centres from a class map into a point GeoPackage.

    ``sample_size`` 0 means: compute it from ``target_se`` of overall accuracy and the expected
    user's accuracies (``cochran_sample_size``). Each point carries its map class and an empty
    integer ``label_field`` for the analyst. Returns the design (sizes and counts per class).
    """
    from osgeo import ogr, osr

    monitor = ensure_monitor(monitor)
    check_not_input(out_path, [map_path], "OUTPUT")
    if not label_field or not label_field.replace("_", "a").isalnum():
        raise LandCoverError(f"The label field name must be letters, digits and _, got '{label_field}'.", "LABEL_FIELD")
    if label_field.lower() in ("fid", "point_id", "map_class", "map_name", "weight"):
        raise LandCoverError(f"The label field may not be called '{label_field}' (a field of the sample).", "LABEL_FIELD")
    if not 0 < expected_accuracy < 1:
        raise LandCoverError(f"The expected user's accuracy must lie strictly between 0 and 1, got {expected_accuracy}.", "EXPECTED_ACCURACY")
    labels, table, grid, _ = _read_map(map_path)
    monitor.update(0.2)
    counts = mapped_pixel_counts(labels)
    ids = [cid for cid in table.ids if counts[cid] > 0]
    mapped = counts[ids]
    weights = mapped / mapped.sum()
    users = parse_expected_accuracy(expected_accuracy_by_class, expected_accuracy, ids)
    n_cochran = cochran_sample_size(weights, users, target_se)
    total = int(sample_size) if sample_size > 0 else n_cochran
    per_class = allocate_sample(total, mapped, allocation, min_per_class)
    rng = np.random.default_rng(seed)
    idx = draw_stratified_sample(labels, dict(zip(ids, per_class.tolist())), rng)
    monitor.update(0.5)
    rows, cols = idx // grid.width, idx % grid.width
    xs, ys = rasterio.transform.xy(grid.transform, rows, cols, offset="center")
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    point_class = labels.ravel()[idx]
    names = {c.id: c.name for c in table}
    weight_of = dict(zip(ids, weights.tolist()))
    design = {
        "map": os.path.abspath(map_path),
        "allocation": allocation,
        "min_per_class": int(min_per_class),
        "target_se": float(target_se),
        "cochran_sample_size": int(n_cochran),
        "sample_size": int(idx.size),
        "seed": int(seed),
        "label_field": label_field,
        "classes": [
            {"id": cid, "name": names[cid], "mapped_pixels": int(m), "weight": float(w), "expected_users_accuracy": float(u), "sample_size": int(k)}
            for cid, m, w, u, k in zip(ids, mapped, weights, users, per_class)
        ],
    }
    notes = []
    if idx.size > total:
        notes.append(f"The minimum of {min_per_class} points per class gives {idx.size} points, more than the {total} asked for.")
    short = [f"'{names[c]}' ({k})" for c, k in zip(ids, per_class) if k < 2]
    if short:
        notes.append("Classes with fewer than 2 points cannot have their variance estimated: " + ", ".join(short) + ".")
    design["notes"] = notes
    srs = osr.SpatialReference()
    srs.ImportFromWkt(grid.crs.to_wkt())
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    with atomic_output(out_path) as tmp:
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(tmp)
        if ds is None:
            raise LandCoverError(f"Cannot create the GeoPackage {out_path}.", "OUTPUT")
        layer = ds.CreateLayer("sample", srs, ogr.wkbPoint)
        for name, kind in (
            ("point_id", ogr.OFTInteger),
            ("map_class", ogr.OFTInteger),
            ("map_name", ogr.OFTString),
            ("weight", ogr.OFTReal),
            (label_field, ogr.OFTInteger),
        ):
            layer.CreateField(ogr.FieldDefn(name, kind))
        layer.SetMetadataItem("LC_SAMPLE_DESIGN", json.dumps(design))
        defn = layer.GetLayerDefn()
        layer.StartTransaction()
        for i in range(idx.size):
            feature = ogr.Feature(defn)
            cid = int(point_class[i])
            feature.SetField("point_id", i + 1)
            feature.SetField("map_class", cid)
            feature.SetField("map_name", names[cid])
            feature.SetField("weight", weight_of[cid])
            feature.SetFieldNull(label_field)
            point = ogr.Geometry(ogr.wkbPoint)
            point.AddPoint_2D(float(xs[i]), float(ys[i]))
            feature.SetGeometry(point)
            layer.CreateFeature(feature)
            if i % 2000 == 0:
                monitor.update(0.5 + 0.45 * i / max(1, idx.size))
        layer.CommitTransaction()
        ds = None
    monitor.info(f"Drew {idx.size} points ({', '.join(f'{names[c]}: {k}' for c, k in zip(ids, per_class))}).")
    return design


def _read_sample(sample_path: str, label_field: str, layer_name: str | None, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Rows, columns (on ``grid``) and reference labels of the labelled points; unlabelled points are skipped."""
    from osgeo import gdal, ogr, osr

    notes: list[str] = []
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        ds = gdal.OpenEx(sample_path, gdal.OF_VECTOR)
    except RuntimeError:
        ds = None
    finally:
        gdal.PopErrorHandler()
    if ds is None or ds.GetLayerCount() == 0:
        raise LandCoverError(f"Cannot open the sample {sample_path} as a vector layer.", "SAMPLE")
    layer = ds.GetLayerByName(layer_name) if layer_name else ds.GetLayer(0)
    if layer is None:
        raise LandCoverError(f"The sample {sample_path} has no layer '{layer_name}'.", "SAMPLE")
    defn = layer.GetLayerDefn()
    fields = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    if label_field not in fields:
        raise LandCoverError(
            f"The sample has no field '{label_field}' (fields: {', '.join(fields)}); choose the field with the reference class ids.",
            "REFERENCE_FIELD",
        )
    fi = fields.index(label_field)
    transform = None
    srs = layer.GetSpatialRef()
    if srs is not None and grid.crs is not None:
        target = osr.SpatialReference()
        target.ImportFromWkt(grid.crs.to_wkt())
        for s in (srs, target):
            s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        if not srs.IsSame(target):
            transform = osr.CoordinateTransformation(srs, target)
    xs, ys, refs = [], [], []
    unlabelled = bad = 0
    for feature in layer:
        geom = feature.GetGeometryRef()
        if geom is None or geom.IsEmpty():
            bad += 1
            continue
        if ogr.GT_Flatten(geom.GetGeometryType()) != ogr.wkbPoint:
            geom = geom.Centroid()
        if not feature.IsFieldSetAndNotNull(fi) or str(feature.GetField(fi)).strip() == "":
            unlabelled += 1
            continue
        try:
            value = float(feature.GetField(fi))
        except (TypeError, ValueError) as exc:
            raise LandCoverError(f"Point {feature.GetFID()}: '{feature.GetField(fi)}' in '{label_field}' is not a class id.", "REFERENCE_FIELD") from exc
        if value != round(value) or not 0 <= value <= 255:
            raise LandCoverError(f"Point {feature.GetFID()}: {value} in '{label_field}' is not a class id 1–255.", "REFERENCE_FIELD")
        if transform is not None:
            geom = geom.Clone()
            geom.Transform(transform)
        xs.append(geom.GetX())
        ys.append(geom.GetY())
        refs.append(int(value))
    if unlabelled:
        notes.append(f"{unlabelled} point(s) without a reference label in '{label_field}' were skipped.")
    if bad:
        notes.append(f"{bad} feature(s) without geometry were skipped.")
    if not refs:
        raise LandCoverError(f"No point of {sample_path} has a reference label in '{label_field}': label the sample first.", "REFERENCE_FIELD")
    inv = ~grid.transform
    cols, rows = inv * (np.asarray(xs), np.asarray(ys))
    return np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64), np.asarray(refs, np.int64), notes


def area_estimate_file(
    map_path: str,
    sample_path: str,
    json_out: str,
    html_out: str,
    *,
    label_field: str = "reference",
    sample_layer: str | None = None,
    monitor=None,
) -> dict:
    """Labelled stratified sample + the map it was drawn from → Olofsson area estimates as JSON, HTML and CSV.

    The stratum of a point is the map class under it (read from the map, not from the point's
    attributes); its reference class is ``label_field``. The error matrix of sample counts is
    written to ``<json stem>_confusion.csv``. Returns the JSON document.
    """
    monitor = ensure_monitor(monitor)
    csv_out = os.path.splitext(json_out)[0] + "_confusion.csv"
    for path, parameter in ((json_out, "OUTPUT_JSON"), (html_out, "OUTPUT_HTML"), (csv_out, "OUTPUT_JSON")):
        check_not_input(path, [map_path, sample_path], parameter)
    if len({os.path.realpath(p) for p in (json_out, html_out, csv_out)}) != 3:
        raise LandCoverError(f"The JSON {json_out}, HTML {html_out} and CSV {csv_out} must be three different files.", "OUTPUT_HTML")
    labels, table, grid, pixel_area_ha = _read_map(map_path)
    monitor.update(0.2)
    rows, cols, refs, notes = _read_sample(sample_path, label_field, sample_layer, grid)
    inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    if (~inside).any():
        notes.append(f"{int((~inside).sum())} labelled point(s) outside the map were skipped.")
    strata = np.zeros(rows.size, dtype=np.int64)
    strata[inside] = labels[rows[inside], cols[inside]]
    on_map = inside & (strata != NODATA_CLASS)
    if (inside & ~on_map).any():
        notes.append(f"{int((inside & ~on_map).sum())} labelled point(s) on unclassified map pixels (0) were skipped.")
    zero = on_map & (refs == NODATA_CLASS)
    if zero.any():
        notes.append(f"{int(zero.sum())} point(s) labelled 0 (no data / not interpretable) were skipped.")
    keep = on_map & ~zero
    monitor.update(0.4)
    counts = mapped_pixel_counts(labels)
    extra = sorted(set(np.unique(refs[keep]).tolist()) - set(table.ids))
    if extra:
        table = ClassTable(list(table) + [LandCoverClass(c, f"class {c}", default_color(c)) for c in extra])
    ids = [c for c in table.ids if counts[c] > 0 or c in set(refs[keep].tolist())]
    index = {c: i for i, c in enumerate(ids)}
    k = len(ids)
    n = np.zeros((k, k), dtype=np.int64)
    if keep.any():
        flat = np.array([index[int(s)] for s in strata[keep]]) * k + np.array([index[int(r)] for r in refs[keep]])
        n = np.bincount(flat, minlength=k * k).reshape(k, k)
    names = [table.by_id(c).name for c in ids]
    est = olofsson_estimates(n, counts[ids], pixel_area_ha, ids, names)
    doc = {
        "title": f"Area estimates for {os.path.basename(map_path)} from {os.path.basename(sample_path)}",
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "inputs": {
            "map": os.path.basename(map_path),  # no absolute paths in a report
            "sample": os.path.basename(sample_path),
            "label_field": label_field,
            "points_read": int(rows.size),
            "points_used": int(keep.sum()),
        },
        **est,
    }
    doc["notes"] = notes + est["notes"]
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
    monitor.update(0.6)
    page = _area_html(doc, table, os.path.basename(csv_out))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    heads = [f"{i} {name}" for i, name in zip(ids, names)]
    writer.writerow(["map \\ reference", *heads, "total", "mapped_pixels"])
    for head, row, mapped in zip(heads, n.tolist(), counts[ids].tolist()):
        writer.writerow([head, *row, sum(row), mapped])
    monitor.update(0.9)
    for path, content in ((json_out, text), (csv_out, buf.getvalue()), (html_out, page)):
        with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(content)
    with contextlib.suppress(Cancelled):
        monitor.update(1.0)
    monitor.info(f"Overall accuracy {doc['overall_accuracy']:.4f} ± {doc['overall_accuracy_ci95']:.4f} (95 % CI) from {doc['n_sample']} points.")
    return doc


def _f(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ha(value: float) -> str:
    return f"{value:,.1f}"


def _area_html(doc: dict, table: ClassTable, csv_name: str) -> str:
    from . import figures
    from .report import _CSS, _heatmap_png, _swatch

    e = html.escape
    colors = {c.id: c.color for c in table}
    pc = doc["per_class"]
    cards = [
        ("Overall accuracy ± 95 % CI", f"{_f(doc['overall_accuracy'])} ± {_f(doc['overall_accuracy_ci95'])}"),
        ("Sample points", f"{doc['n_sample']:,}"),
        ("Mapped area (ha)", _ha(doc["total_area_ha"])),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(doc['title'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(doc['title'])}</h1>",
        f'<p class="meta">Created {e(doc["created"])}. {e(doc["method"])}: '
        "Olofsson, Foody, Herold, Stehman, Woodcock, Wulder (2014), Good practices for estimating area and assessing "
        "accuracy of land change, Remote Sensing of Environment 148:42–57.</p>",
        '<ul class="meta">',
        *[f"<li>{e(str(k))}: {e(str(v))}</li>" for k, v in doc["inputs"].items()],
        "</ul>",
        '<div class="headline">',
        *[f'<div class="card"><div class="v">{e(v)}</div><div class="k">{e(k)}</div></div>' for k, v in cards],
        "</div>",
        "<h2>Area estimates and accuracy per class</h2><p>Estimated areas are the stratified estimator "
        "Σ<sub>i</sub> W<sub>i</sub> n<sub>ij</sub>/n<sub>i·</sub> times the mapped total; ± is the 95 % confidence "
        "interval (1.96 standard errors). User's accuracy is per map class, producer's per reference class, both "
        "weighted by mapped area.</p>",
        '<table><thead><tr><th class="name">Class</th><th>Id</th><th>Mapped area (ha)</th><th>Weight W<sub>i</sub></th>'
        "<th>Sample n<sub>i·</sub></th><th>Estimated area (ha)</th><th>± 95 % CI (ha)</th><th>SE (ha)</th>"
        "<th>User's acc. ± 95 % CI</th><th>Producer's acc. ± 95 % CI</th></tr></thead><tbody>",
    ]
    for c in pc:
        ua = f"{_f(c['users_accuracy'])} ± {_f(c['users_accuracy_ci95'])}" if c["users_accuracy"] is not None else "n/a"
        pa = f"{_f(c['producers_accuracy'])} ± {_f(c['producers_accuracy_ci95'])}" if c["producers_accuracy"] is not None else "n/a"
        parts.append(
            f'<tr><td class="name">{_swatch(colors.get(c["id"]))}{e(c["name"])}</td><td>{c["id"]}</td>'
            f'<td>{_ha(c["mapped_area_ha"])}</td><td>{c["weight"]:.4f}</td><td>{c["sample_size"]:,}</td>'
            f'<td>{_ha(c["area_ha"])}</td><td>{_ha(c["area_ci95_ha"])}</td><td>{_ha(c["area_se_ha"])}</td>'
            f"<td>{ua}</td><td>{pa}</td></tr>"
        )
    parts.append("</tbody></table>")
    if doc["notes"]:
        parts += ["<h2>Notes</h2><ul>", *[f"<li>{e(note)}</li>" for note in doc["notes"]], "</ul>"]
    names = list(doc["names"])
    images = [
        (
            "Mapped vs estimated area",
            figures.area_png(
                names, [c["mapped_area_ha"] for c in pc], [c["area_ha"] for c in pc], [c["area_ci95_ha"] for c in pc], [colors.get(c["id"]) for c in pc]
            ),
        ),
    ]
    counts = np.asarray(doc["sample_counts"], dtype=np.float64)
    axes = {"xlabel": "Reference (analyst's label)", "ylabel": "Map class (stratum)"}
    images.append(("Error matrix (sample counts)", _heatmap_png(counts, names, "Sample counts n_ij", "{:.0f}", float(counts.max()), **axes)))
    props = np.asarray(doc["area_proportions"], dtype=np.float64)
    images.append(
        ("Error matrix (estimated area proportions)", _heatmap_png(props, names, "Estimated area proportions p_ij", "{:.3f}", float(props.max()), **axes))
    )
    parts.append(
        f"<h2>Figures</h2><p>The sample counts are also in {e(csv_name)}. In the error matrices rows are "
        "map classes (strata) and columns reference classes.</p>"
    )
    for alt, png in images:
        parts.append(f'<p><img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{e(alt)}"></p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
