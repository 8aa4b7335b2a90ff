"""Area estimation as two file steps: draw a sample from a map, then estimate areas from it once labelled.

``sample_design_file`` turns a class map into a GeoPackage of stratified random points (strata =
map classes, sizes from ``olofsson``'s eq. 13 and allocation) with an empty label field for the
analyst; ``area_estimate_file`` reads the labelled points back, takes each point's stratum from
the map under it, and writes the Olofsson et al. (2014) estimates as JSON, HTML and CSV.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
from dataclasses import dataclass

import numpy as np
import rasterio

from ..core.atomic import atomic_output, check_not_input
from ..core.classes import NODATA_CLASS, ClassTable, merge_class_tables
from ..core.errors import Cancelled, DataError, InputError
from ..core.monitor import Monitor, ensure_monitor
from ..io.gdal_errors import gdal_errors
from ..io.rasters import Grid
from .area_page import area_page
from .labels import read_label_raster
from .olofsson import ALLOCATIONS, allocate_sample, cochran_sample_size, draw_stratified_sample, mapped_pixel_counts, olofsson_estimates

__all__ = ["ALLOCATIONS", "AreaEstimate", "DrawnSample", "area_estimate_file", "parse_expected_accuracy", "sample_design_file"]

_SAMPLE_FIELDS = ("point_id", "map_class", "map_name", "weight")


def _read_map(path: str) -> tuple[np.ndarray, ClassTable, Grid, float]:
    """Labels (0 = no data), class table (ids seen get names) and pixel area in hectares of a class raster."""
    labels, table, grid = read_label_raster(path, "map_path", "land-cover map")
    if grid.crs is None or not grid.crs.is_projected:
        raise InputError(f"The map {path} is not in a projected CRS ({grid.crs}); areas need metres. Use a map on a UTM grid.", "map_path")
    factor = grid.crs.linear_units_factor[1] if grid.crs.linear_units_factor else 1.0
    pixel_area_ha = abs(grid.transform.a * grid.transform.e) * factor * factor / 10_000.0
    present = [int(v) for v in np.flatnonzero(mapped_pixel_counts(labels))]
    if not present:
        raise DataError(f"The map {path} has no classified pixel (every pixel is 0 = no data).", "map_path")
    return labels, merge_class_tables([table], present)[0], grid, pixel_area_ha


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
            raise InputError(
                f"Cannot read '{part.strip()}': expected class id:accuracy pairs such as '1:0.7, 4:0.9'.",
                "expected_accuracy_by_class",
            ) from exc
        if cid not in values:
            raise InputError(f"Class id {cid} is not in the map (classes {ids}).", "expected_accuracy_by_class")
        if not 0 < acc < 1:
            raise InputError(f"Expected user's accuracies must lie strictly between 0 and 1, got {acc} for class {cid}.", "expected_accuracy_by_class")
        values[cid] = acc
    return np.array([values[cid] for cid in ids])


@dataclass(frozen=True)
class DrawnSample:
    """What ``sample_design_file`` wrote: the GeoPackage of points, and the design it keeps as metadata."""

    path: str
    design: dict  # sizes and weights per class, notes (see ``sample_design_file``)


@dataclass(frozen=True)
class AreaEstimate:
    """What ``area_estimate_file`` wrote: its files, and the document (every estimate, as in the JSON file)."""

    json_path: str
    html_path: str
    csv_path: str
    document: dict


@dataclass(frozen=True)
class _Plan:
    """What ``sample_design_file`` decides before drawing: the classes sampled and the sizes."""

    ids: list[int]
    mapped: np.ndarray  # mapped pixels per class in ``ids``
    users: np.ndarray  # expected user's accuracy per class
    cochran: int  # the sample size eq. 13 gives
    total: int  # the sample size asked for (``cochran`` when 0 was given)
    per_class: np.ndarray  # points per class after allocation


def _plan(
    labels: np.ndarray, table: ClassTable, sample_size: int, target_se: float, users_text: str | None, default: float, allocation: str, minimum: int
) -> _Plan:
    """Classes, expected accuracies and sample sizes: eq. 13 unless a size is given, then the allocation."""
    counts = mapped_pixel_counts(labels)
    ids = [cid for cid in table.ids if counts[cid] > 0]
    mapped = counts[ids]
    users = parse_expected_accuracy(users_text, default, ids)
    n_cochran = cochran_sample_size(mapped / mapped.sum(), users, target_se)
    total = int(sample_size) if sample_size > 0 else n_cochran
    return _Plan(ids, mapped, users, n_cochran, total, allocate_sample(total, mapped, allocation, minimum))


def _write_sample(
    out_path: str, grid: Grid, points: tuple[np.ndarray, np.ndarray, np.ndarray], names: dict, weight_of: dict, design: dict, monitor: Monitor
) -> None:
    """The points (x, y, map class) as a GeoPackage layer "sample" with an empty label field and the design as metadata."""
    from osgeo import ogr, osr

    xs, ys, point_class = points
    label_field = design["label_field"]
    srs = osr.SpatialReference()
    srs.ImportFromWkt(grid.crs.to_wkt())
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    with atomic_output(out_path) as tmp:
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(tmp)
        if ds is None:
            raise InputError(f"Cannot create the GeoPackage {out_path}.", "out_path")
        layer = ds.CreateLayer("sample", srs, ogr.wkbPoint)
        kinds = (ogr.OFTInteger, ogr.OFTInteger, ogr.OFTString, ogr.OFTReal, ogr.OFTInteger)
        for name, kind in zip((*_SAMPLE_FIELDS, label_field), kinds):
            layer.CreateField(ogr.FieldDefn(name, kind))
        layer.SetMetadataItem("LC_SAMPLE_DESIGN", json.dumps(design))
        defn = layer.GetLayerDefn()
        layer.StartTransaction()
        for i in range(xs.size):
            feature = ogr.Feature(defn)
            cid = int(point_class[i])
            for name, value in zip(_SAMPLE_FIELDS, (i + 1, cid, names[cid], weight_of[cid])):
                feature.SetField(name, value)
            feature.SetFieldNull(label_field)
            point = ogr.Geometry(ogr.wkbPoint)
            point.AddPoint_2D(float(xs[i]), float(ys[i]))
            feature.SetGeometry(point)
            layer.CreateFeature(feature)
            if i % 2000 == 0:
                monitor.update(0.5 + 0.45 * i / max(1, xs.size))
        layer.CommitTransaction()
        ds = None


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
    monitor: Monitor | None = None,
) -> DrawnSample:
    """Draw a stratified random sample of pixel centres from a class map into a point GeoPackage.

    ``sample_size`` 0 means: compute it from ``target_se`` of overall accuracy and the expected
    user's accuracies (``cochran_sample_size``). Each point carries its map class and an empty
    integer ``label_field`` for the analyst; the design (sizes and counts per class) is kept as the
    layer's ``LC_SAMPLE_DESIGN`` metadata.
    """
    monitor = ensure_monitor(monitor)
    check_not_input(out_path, [map_path], "out_path")
    if not label_field or not label_field.replace("_", "a").isalnum():
        raise InputError(f"The label field name must be letters, digits and _, got '{label_field}'.", "label_field")
    if label_field.lower() in ("fid", *_SAMPLE_FIELDS):
        raise InputError(f"The label field may not be called '{label_field}' (a field of the sample).", "label_field")
    if not 0 < expected_accuracy < 1:
        raise InputError(f"The expected user's accuracy must lie strictly between 0 and 1, got {expected_accuracy}.", "expected_accuracy")
    labels, table, grid, _ = _read_map(map_path)
    monitor.update(0.2)
    plan = _plan(labels, table, sample_size, target_se, expected_accuracy_by_class, expected_accuracy, allocation, min_per_class)
    idx = draw_stratified_sample(labels, dict(zip(plan.ids, plan.per_class.tolist())), np.random.default_rng(seed))
    monitor.update(0.5)
    rows, cols = idx // grid.width, idx % grid.width
    xs, ys = rasterio.transform.xy(grid.transform, rows, cols, offset="center")
    names = {c.id: c.name for c in table}
    weights = plan.mapped / plan.mapped.sum()
    design = {
        "map": os.path.abspath(map_path),
        "allocation": allocation,
        "min_per_class": int(min_per_class),
        "target_se": float(target_se),
        "cochran_sample_size": int(plan.cochran),
        "sample_size": int(idx.size),
        "seed": int(seed),
        "label_field": label_field,
        "classes": [
            {"id": cid, "name": names[cid], "mapped_pixels": int(m), "weight": float(w), "expected_users_accuracy": float(u), "sample_size": int(k)}
            for cid, m, w, u, k in zip(plan.ids, plan.mapped, weights, plan.users, plan.per_class)
        ],
    }
    notes = []
    if idx.size > plan.total:
        notes.append(f"The minimum of {min_per_class} points per class gives {idx.size} points, more than the {plan.total} asked for.")
    short = [f"'{names[c]}' ({k})" for c, k in zip(plan.ids, plan.per_class) if k < 2]
    if short:
        notes.append("Classes with fewer than 2 points cannot have their variance estimated: " + ", ".join(short) + ".")
    design["notes"] = notes
    points = (np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64), labels.ravel()[idx])
    _write_sample(out_path, grid, points, names, dict(zip(plan.ids, weights.tolist())), design, monitor)
    monitor.info(f"Drew {idx.size} points ({', '.join(f'{names[c]}: {k}' for c, k in zip(plan.ids, plan.per_class))}).")
    return DrawnSample(out_path, design)


# ---------------------------------------------------------------------------------------------
# The labelled sample → estimates


def _open_sample(sample_path: str, layer_name: str | None):
    from osgeo import gdal

    with gdal_errors():
        try:
            ds = gdal.OpenEx(sample_path, gdal.OF_VECTOR)
        except RuntimeError:  # when the host enabled GDAL exceptions
            ds = None
    if ds is None or ds.GetLayerCount() == 0:
        raise InputError(f"Cannot open the sample {sample_path} as a vector layer.", "sample_path")
    layer = ds.GetLayerByName(layer_name) if layer_name else ds.GetLayer(0)
    if layer is None:
        raise InputError(f"The sample {sample_path} has no layer '{layer_name}'.", "sample_layer")
    return ds, layer


def _to_grid(layer, grid: Grid):
    """A transformation from the layer's CRS to the grid's, or None when they are the same."""
    from osgeo import osr

    srs = layer.GetSpatialRef()
    if srs is None or grid.crs is None:
        return None
    target = osr.SpatialReference()
    target.ImportFromWkt(grid.crs.to_wkt())
    for s in (srs, target):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return None if srs.IsSame(target) else osr.CoordinateTransformation(srs, target)


def _read_sample(sample_path: str, label_field: str, layer_name: str | None, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Rows, columns (on ``grid``) and reference labels of the labelled points; unlabelled points are skipped."""
    from osgeo import ogr

    ds, layer = _open_sample(sample_path, layer_name)
    defn = layer.GetLayerDefn()
    fields = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    if label_field not in fields:
        raise InputError(
            f"The sample has no field '{label_field}' (fields: {', '.join(fields)}); choose the field with the reference class ids.", "label_field"
        )
    fi = fields.index(label_field)
    transform = _to_grid(layer, grid)
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
            raise InputError(f"Point {feature.GetFID()}: '{feature.GetField(fi)}' in '{label_field}' is not a class id.", "label_field") from exc
        if value != round(value) or not 0 <= value <= 255:
            raise InputError(f"Point {feature.GetFID()}: {value} in '{label_field}' is not a class id 1–255.", "label_field")
        if transform is not None:
            geom = geom.Clone()
            geom.Transform(transform)
        xs.append(geom.GetX())
        ys.append(geom.GetY())
        refs.append(int(value))
    del ds  # the layer was read through it
    notes = [f"{unlabelled} point(s) without a reference label in '{label_field}' were skipped."] if unlabelled else []
    if bad:
        notes.append(f"{bad} feature(s) without geometry were skipped.")
    if not refs:
        raise DataError(f"No point of {sample_path} has a reference label in '{label_field}': label the sample first.", "label_field")
    cols, rows = ~grid.transform * (np.asarray(xs), np.asarray(ys))
    return np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64), np.asarray(refs, np.int64), notes


def _strata(labels: np.ndarray, rows: np.ndarray, cols: np.ndarray, refs: np.ndarray, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each point's stratum (the map class under it) and which points count: inside the map, on a class, labelled."""
    height, width = labels.shape
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
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
    return strata, on_map & ~zero


def _error_matrix(table: ClassTable, counts: np.ndarray, strata: np.ndarray, refs: np.ndarray) -> tuple[ClassTable, list[int], np.ndarray]:
    """The classes (the map's, plus reference ids it lacks), the ids estimated and the (K, K) sample counts (rows map)."""
    table = merge_class_tables([table], np.unique(refs).tolist())[0]
    ids = [c for c in table.ids if counts[c] > 0 or c in set(refs.tolist())]
    index = {c: i for i, c in enumerate(ids)}
    k = len(ids)
    n = np.zeros((k, k), dtype=np.int64)
    if strata.size:
        flat = np.array([index[int(s)] for s in strata]) * k + np.array([index[int(r)] for r in refs])
        n = np.bincount(flat, minlength=k * k).reshape(k, k)
    return table, ids, n


def _counts_csv(doc: dict, mapped: list[int]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    heads = [f"{i} {name}" for i, name in zip(doc["labels"], doc["names"])]
    writer.writerow(["map \\ reference", *heads, "total", "mapped_pixels"])
    for head, row, pixels in zip(heads, doc["sample_counts"], mapped):
        writer.writerow([head, *row, sum(row), pixels])
    return buf.getvalue()


def area_estimate_file(
    map_path: str,
    sample_path: str,
    json_out: str,
    html_out: str,
    *,
    label_field: str = "reference",
    sample_layer: str | None = None,
    monitor: Monitor | None = None,
) -> AreaEstimate:
    """Labelled stratified sample + the map it was drawn from → Olofsson area estimates as JSON, HTML and CSV.

    The stratum of a point is the map class under it (read from the map, not from the point's
    attributes); its reference class is ``label_field``. The error matrix of sample counts is
    written to ``<json stem>_confusion.csv``.
    """
    monitor = ensure_monitor(monitor)
    csv_out = os.path.splitext(json_out)[0] + "_confusion.csv"
    for path, argument in ((json_out, "json_out"), (html_out, "html_out"), (csv_out, "json_out")):
        check_not_input(path, [map_path, sample_path], argument)
    if len({os.path.realpath(p) for p in (json_out, html_out, csv_out)}) != 3:
        raise InputError(f"The JSON {json_out}, HTML {html_out} and CSV {csv_out} must be three different files.", "html_out")
    labels, table, grid, pixel_area_ha = _read_map(map_path)
    monitor.update(0.2)
    rows, cols, refs, notes = _read_sample(sample_path, label_field, sample_layer, grid)
    strata, keep = _strata(labels, rows, cols, refs, notes)
    monitor.update(0.4)
    counts = mapped_pixel_counts(labels)
    table, ids, n = _error_matrix(table, counts, strata[keep], refs[keep])
    try:
        est = olofsson_estimates(n, counts[ids], pixel_area_ha, ids, [table.by_id(c).name for c in ids])
    except DataError as exc:  # the sample lacks points (the map's classes were checked above)
        raise DataError(exc.template, "sample_path") from exc
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
    html_page = area_page(doc, table, os.path.basename(csv_out))
    monitor.update(0.9)
    for path, content in ((json_out, text), (csv_out, _counts_csv(doc, counts[ids].tolist())), (html_out, html_page)):
        with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(content)
    with contextlib.suppress(Cancelled):
        monitor.update(1.0)
    monitor.info(f"Overall accuracy {doc['overall_accuracy']:.4f} ± {doc['overall_accuracy_ci95']:.4f} (95 % CI) from {doc['n_sample']} points.")
    return AreaEstimate(json_out, html_out, csv_out, doc)
