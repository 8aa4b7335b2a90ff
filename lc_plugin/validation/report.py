"""Accuracy reports: a land-cover map (or held-out predictions) against reference labels.

Each report is three files written atomically: a JSON document with every number (the
``metrics.accuracy_metrics`` dict plus title, inputs and creation time), a self-contained HTML
page (headline numbers, per-class table, notes and the confusion matrix as two embedded PNG
heat maps) and the confusion matrix as CSV (``<json stem>_confusion.csv``).

Figures are drawn with matplotlib's object API on an Agg canvas, never through ``pyplot``:
pyplot keeps global state and may pick QGIS's Qt backend, and Processing runs algorithms in a
worker thread where that is unsafe. The result is the same Agg rendering without touching the
process-wide backend.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime as dt
import html
import io
import json
import os
import re

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from ..core.atomic import atomic_output, check_not_input
from ..core.classes import NODATA_CLASS, ClassTable, LandCoverClass, default_color
from ..core.deps import require
from ..core.errors import Cancelled, LandCoverError
from ..core.monitor import ensure_monitor
from ..io.rasters import TAG_CLASSES, Grid
from ..ml.spatial import in_training_blocks, positions_in_training_blocks
from .assessment import assess
from .estimates import SIMPLE, STRATIFIED, simple_random_intervals, stratified_intervals
from .figures import render
from .metrics import accuracy_metrics, confusion_matrix, roc_one_vs_rest

CHUNK_ROWS = 512
MAX_ANNOTATED_CLASSES = 30  # larger matrices are drawn without numbers in the cells
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def confusion_csv_path(json_out: str) -> str:
    """The confusion-matrix CSV written beside the JSON report."""
    return os.path.splitext(json_out)[0] + "_confusion.csv"


# ---------------------------------------------------------------------------------------------
# Inputs


def _describe_grid(grid: Grid) -> str:
    t = grid.transform
    crs = grid.crs.to_string() if grid.crs else "no CRS"
    return f"{grid.width}×{grid.height} px, {crs}, origin ({t.c:.3f}, {t.f:.3f}), pixel size {t.a:g}×{-t.e:g}"



def _read_label_raster(path: str, parameter: str, what: str) -> tuple[np.ndarray, ClassTable | None, Grid]:
    """Band 1 as uint8 class ids (0 = no data, including the raster's own nodata value)."""
    try:
        with rasterio.open(path) as src:
            data = src.read(1)
            nodata = src.nodata
            text = src.tags().get(TAG_CLASSES)
            grid = Grid(src.crs, src.transform, src.width, src.height)
    except RasterioIOError as exc:
        raise LandCoverError(f"Cannot read the {what} raster {path}: {exc}", parameter) from exc
    table = None
    if text:
        try:
            table = ClassTable.from_json(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise LandCoverError(f"The {TAG_CLASSES} metadata of {path} is not a valid class table: {exc}", parameter) from exc
    valid = np.ones(data.shape, dtype=bool)
    if nodata is not None:
        valid &= ~(np.isnan(data) if np.isnan(nodata) else data == nodata)
    if data.dtype.kind == "f":
        valid &= np.isfinite(data)
        if np.any(data[valid] != np.round(data[valid])):
            raise LandCoverError(f"The {what} raster {path} holds fractional values; expected integer class ids 1–255 (0 = no data).", parameter)
    if data.dtype != np.uint8:
        bad = valid & ((data < 0) | (data > 255))
        if bad.any():
            raise LandCoverError(
                f"The {what} raster {path} holds values outside 0–255 (e.g. {data[bad].flat[0]}); " "expected a class raster with ids 1–255 and 0 = no data.",
                parameter,
            )
    labels = np.where(valid, data, NODATA_CLASS).astype(np.uint8)
    return labels, table, grid


def _is_raster(path: str) -> bool:
    try:
        with rasterio.open(path) as src:
            return src.count > 0
    except RasterioIOError:
        return False


def _is_vector(path: str) -> bool:
    from osgeo import gdal

    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        ds = gdal.OpenEx(path, gdal.OF_VECTOR)
    except RuntimeError:  # when the host enabled GDAL exceptions
        ds = None
    finally:
        gdal.PopErrorHandler()
    return ds is not None and ds.GetLayerCount() > 0


def _read_reference(path: str, grid: Grid, reference_field: str | None, reference_layer: str | None) -> tuple[np.ndarray, ClassTable | None, str]:
    if not path or (not path.startswith("/vsi") and not os.path.exists(path)):
        raise LandCoverError(f"The reference {path!r} does not exist; choose a class raster or a polygon layer.", "REFERENCE")
    if _is_raster(path):
        ref, table, ref_grid = _read_label_raster(path, "REFERENCE", "reference")
        if not ref_grid.same_as(grid):
            raise LandCoverError(
                f"The reference raster is on another grid than the classification: reference {_describe_grid(ref_grid)}; "
                f"classification {_describe_grid(grid)}. Use a reference raster made for this map's grid "
                "(e.g. with the Reference raster step) or give the reference polygons instead.",
                "REFERENCE",
            )
        return ref, table, "raster"
    if _is_vector(path):
        if not reference_field:
            raise LandCoverError(f"The reference {path} is a vector layer: choose the field that holds the integer class ids.", "REFERENCE_FIELD")
        from ..reference.rasterize import rasterize_reference

        try:
            ref, table = rasterize_reference(path, reference_field, grid, layer=reference_layer)
        except LandCoverError as exc:
            if exc.argument == "FIELD":  # the Reference raster step's name for the class field
                exc.argument = "REFERENCE_FIELD"
            raise
        return ref, table, "points" if _is_point_layer(path, reference_layer) else "vector"
    raise LandCoverError(f"The reference {path} is neither a raster nor a vector layer that GDAL can read.", "REFERENCE")


def _is_point_layer(path: str, layer: str | None) -> bool:
    """True for a layer of points (e.g. Sample design's), which the report reads as a stratified sample."""
    from osgeo import ogr

    ds = ogr.Open(path)
    lyr = ds.GetLayerByName(layer) if layer else ds.GetLayer(0)
    return lyr is not None and ogr.GT_Flatten(lyr.GetGeomType()) in (ogr.wkbPoint, ogr.wkbMultiPoint)


def _merge_classes(tables: list[ClassTable | None], present_ids: list[int], notes: list[str]) -> ClassTable:
    """Union of the tables' classes (the first table's name/colour wins) plus ids only seen in the data."""
    merged: dict[int, LandCoverClass] = {}
    for table in tables:
        for c in table or ():
            if c.id == NODATA_CLASS:
                continue
            if c.id not in merged:
                merged[c.id] = c
            elif merged[c.id].name.strip().lower() != c.name.strip().lower():
                notes.append(
                    f"Class id {c.id} is named '{merged[c.id].name}' in the map but '{c.name}' in the reference; "
                    "classes are matched by id, so check that both use the same legend."
                )
    for cid in present_ids:
        if cid not in merged and cid != NODATA_CLASS:
            merged[cid] = LandCoverClass(int(cid), f"class {cid}", default_color(int(cid)))
    return ClassTable(merged.values())


def accuracy_report_file(
    classification_path: str,
    reference_path: str,
    json_out: str,
    html_out: str,
    *,
    reference_field: str | None = None,
    reference_layer: str | None = None,
    model_path: str | None = None,
    probabilities_path: str | None = None,
    title: str | None = None,
    monitor=None,
) -> dict:
    """Compare a class raster with a reference (class raster on the same grid, or polygons) and write the report.

    Pixels where either the map or the reference is 0 (no data) are left out. With ``model_path``
    the report adds the model's feature importance, training class counts and cross-validation;
    with ``probabilities_path`` (the Classify step's probability raster) one-vs-rest ROC curves
    over up to ``ROC_MAX_PIXELS`` randomly chosen reference pixels. Returns the document written to ``json_out``.
    """
    monitor = ensure_monitor(monitor)
    inputs = [classification_path, reference_path]
    _check_outputs(json_out, html_out, inputs)
    monitor.update(0.0)

    pred, pred_table, grid = _read_label_raster(classification_path, "INPUT", "classification")
    if not np.any(pred != NODATA_CLASS):
        raise LandCoverError(f"The classification {classification_path} has no classified pixel (every pixel is 0 = no data).", "INPUT")
    monitor.update(0.05)
    ref, ref_table, kind = _read_reference(reference_path, grid, reference_field, reference_layer)
    design = STRATIFIED if kind == "points" else SIMPLE
    if not np.any(ref != NODATA_CLASS):
        raise LandCoverError(f"The reference {reference_path} has no labelled pixel on the classification's grid.", "REFERENCE")
    monitor.update(0.3)

    # Pair counts of (reference, predicted) ids 0–255, block by block to bound memory.
    counts = np.zeros(256 * 256, dtype=np.int64)
    step = monitor.sub(0.3, 0.8)
    for r0 in range(0, grid.height, CHUNK_ROWS):
        r1 = min(r0 + CHUNK_ROWS, grid.height)
        code = ref[r0:r1].astype(np.uint16) * 256 + pred[r0:r1]  # fits: at most 255 * 256 + 255
        counts += np.bincount(code.ravel(), minlength=256 * 256)
        step.update(r1 / grid.height)
    counts = counts.reshape(256, 256)

    notes: list[str] = []
    seen = np.flatnonzero(counts[1:, :].sum(axis=1) + counts[:, 1:].sum(axis=0)) + 1
    classes = _merge_classes([pred_table, ref_table], [int(v) for v in seen], notes)
    labels = classes.ids
    cm = counts[np.ix_(labels, labels)]
    if cm.sum() == 0:
        raise LandCoverError(
            "No pixel where both the map and the reference have a class: the reference covers only pixels the map "
            f"leaves as no data (reference {reference_path}, classification {classification_path}).",
            "REFERENCE",
        )
    metrics = accuracy_metrics(cm, labels, classes.names)
    metrics["notes"] = notes + metrics["notes"]
    metrics["inputs"] = {
        "classification": os.path.basename(classification_path),
        "reference": os.path.basename(reference_path),
        "reference_kind": kind,
        "reference_field": reference_field if kind == "vector" else None,
        "reference_layer": reference_layer if kind == "vector" else None,
        "grid": _describe_grid(grid),
        "pixels_classified": int((pred != NODATA_CLASS).sum()),
        "pixels_referenced": int((ref != NODATA_CLASS).sum()),
    }
    title = title or "Accuracy assessment of a land-cover map"
    monitor.update(0.85)
    extras = model_extras(model_path) if model_path else {}
    compared = (ref != NODATA_CLASS) & (pred != NODATA_CLASS) & np.isin(ref, labels) & np.isin(pred, labels)
    if extras.get("footprint") is not None:
        extras["overlap"] = {"pixels": in_training_blocks(extras["footprint"], grid, compared), "of": int(compared.sum())}
    extras["kind"] = "map"
    if design == STRATIFIED:
        mapped = np.bincount(pred.ravel(), minlength=256)[labels]
        pixel_ha = abs(grid.transform.a * grid.transform.e) / 10_000
        try:
            extras["intervals"] = stratified_intervals(cm, labels, mapped, pixel_ha, classes.names)
        except LandCoverError as exc:
            notes.append(f"The point sample cannot be read as stratified by map class ({exc}); simple random intervals are shown.")
        extras["evaluated"] = f"the {kind} reference points of {os.path.basename(reference_path)}, read as a sample stratified by map class"
    else:
        extras["evaluated"] = (
            f"every pixel where the map and the reference ({os.path.basename(reference_path)}) both have a class, a census of "
            "the reference rather than a probability sample"
        )
    extras["roc"] = None
    if probabilities_path:
        extras["roc"] = _roc_from_raster(probabilities_path, grid, ref, pred, classes)
        metrics["inputs"]["probabilities"] = os.path.basename(probabilities_path)
    else:
        extras["roc_note"] = (
            "ROC curves and AUC are unavailable for a map-vs-reference report without probabilities: a class map holds "
            "no class probabilities. Give the Classify step's probability raster, or run the report on the test "
            "predictions CSV of Train classifier."
        )
    doc = _write_report(metrics, classes, json_out, html_out, title, extras)
    with contextlib.suppress(Cancelled):  # the outputs are complete; a late cancel does not undo them
        monitor.update(1.0)
    monitor.info(f"Overall accuracy {metrics['overall_accuracy']:.4f}, kappa {metrics['kappa']:.4f} over {metrics['n']} pixels.")
    return doc


ROC_MAX_PIXELS = 200_000


def _roc_from_raster(path: str, grid: Grid, ref: np.ndarray, pred: np.ndarray, classes: ClassTable) -> dict:
    """One-vs-rest ROC of the reference against a probability raster (one band per class, ``CLASS_ID`` tags)."""
    try:
        with rasterio.open(path) as src:
            p_grid = Grid(src.crs, src.transform, src.width, src.height)
            ids = []
            for band in range(1, src.count + 1):
                cid = src.tags(band).get("CLASS_ID")
                ids.append(int(cid) if cid is not None and cid.isdigit() else None)
            if None in ids:
                text = src.tags().get(TAG_CLASSES)
                table = ClassTable.from_json(text) if text else None
                if table is None or len(table) != src.count:
                    raise LandCoverError(
                        f"The probability raster {path} does not say which class each band holds (no CLASS_ID band tags "
                        "or class table); use the probabilities written by the Classify step.",
                        "PROBABILITIES",
                    )
                ids = table.ids
            if not p_grid.same_as(grid):
                raise LandCoverError(
                    f"The probability raster is on another grid than the classification: {_describe_grid(p_grid)} vs " f"{_describe_grid(grid)}.",
                    "PROBABILITIES",
                )
            candidates = np.flatnonzero(((ref != NODATA_CLASS) & (pred != NODATA_CLASS)).ravel())
            if candidates.size > ROC_MAX_PIXELS:
                candidates = np.sort(np.random.default_rng(0).choice(candidates, ROC_MAX_PIXELS, replace=False))
            rows, cols = candidates // grid.width, candidates % grid.width
            proba = np.empty((candidates.size, len(ids)), dtype=np.float32)
            for r0 in range(0, grid.height, CHUNK_ROWS):
                a, b = np.searchsorted(rows, [r0, r0 + CHUNK_ROWS])
                if a == b:
                    continue
                block = src.read(window=((r0, min(r0 + CHUNK_ROWS, grid.height)), (0, grid.width)))
                proba[a:b] = block[:, rows[a:b] - r0, cols[a:b]].T
    except RasterioIOError as exc:
        raise LandCoverError(f"Cannot read the probability raster {path}: {exc}", "PROBABILITIES") from exc
    finite = np.isfinite(proba).all(axis=1)
    y_true = ref.ravel()[candidates][finite]
    return roc_one_vs_rest(y_true, proba[finite], ids, [_name_of(classes, c) for c in ids])


def _read_predictions(path: str) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray | None, np.ndarray | None]:
    """y_true, y_pred, the class ids of the p_<id> columns of the training step's CSV, their (N, K) values and the
    (N, 3) source/row/col positions (None without those columns)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise LandCoverError(f"Cannot read the predictions CSV {path}: {exc}", "PREDICTIONS") from exc
    if not rows:
        raise LandCoverError(f"The predictions CSV {path} is empty.", "PREDICTIONS")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in ("y_true", "y_pred") if c not in header]
    if missing:
        raise LandCoverError(
            f"The predictions CSV {path} has no column {', '.join(missing)}; expected the header "
            "source,row,col,y_true,y_pred,p_<id>… written by the training step.",
            "PREDICTIONS",
        )
    body = [r for r in rows[1:] if r and any(cell.strip() for cell in r)]
    if any(len(r) != len(header) for r in body):
        raise LandCoverError(f"The predictions CSV {path} has rows with a different number of columns than its header.", "PREDICTIONS")
    p_ids = [int(h[2:]) for h in header if h.startswith("p_") and h[2:].isdigit()]
    cols = []
    for name in ("y_true", "y_pred"):
        i = header.index(name)
        try:
            values = np.array([r[i] for r in body], dtype=np.float64)
        except ValueError as exc:
            raise LandCoverError(f"The column {name} of {path} holds a value that is not a class id ({exc}).", "PREDICTIONS") from exc
        if values.size and (not np.all(np.isfinite(values)) or np.any(values != np.round(values))):
            raise LandCoverError(f"The column {name} of {path} holds values that are not integer class ids.", "PREDICTIONS")
        cols.append(values.astype(np.int64))
    proba = None
    if p_ids:
        idx = [header.index(f"p_{c}") for c in p_ids]
        try:
            proba = np.array([[r[i] for i in idx] for r in body], dtype=np.float64).reshape(len(body), len(idx))
        except ValueError:
            proba = None
        if proba is not None and not np.all(np.isfinite(proba)):
            proba = None
    positions = None
    if all(c in header for c in ("source", "row", "col")):
        try:
            positions = np.array([[r[header.index(c)] for c in ("source", "row", "col")] for r in body], dtype=np.float64).astype(np.int64).reshape(-1, 3)
        except ValueError:
            positions = None
    return cols[0], cols[1], p_ids, proba, positions


def predictions_report_file(
    predictions_csv: str,
    json_out: str,
    html_out: str,
    *,
    classes: ClassTable | None = None,
    model_path: str | None = None,
    title: str | None = None,
    monitor=None,
) -> dict:
    """Report on the training step's held-out test predictions (CSV source,row,col,y_true,y_pred,p_<id>…).

    The p_<id> probabilities give one-vs-rest ROC curves and AUCs; ``model_path`` adds the
    model's classes, feature importance, training class counts and cross-validation.
    Returns the document written to ``json_out``.
    """
    monitor = ensure_monitor(monitor)
    _check_outputs(json_out, html_out, [predictions_csv])
    monitor.update(0.0)
    y_true, y_pred, p_ids, proba, positions = _read_predictions(predictions_csv)
    extras = model_extras(model_path) if model_path else {}
    if classes is None:
        classes = extras.get("classes")
    valid = (y_true != NODATA_CLASS) & (y_pred != NODATA_CLASS)
    if not valid.any():
        raise LandCoverError(
            f"The predictions CSV {predictions_csv} has no row where both y_true and y_pred hold a class "
            "(the training step wrote no test pixels; give it a test fraction above 0).",
            "PREDICTIONS",
        )
    monitor.update(0.3)
    notes: list[str] = []
    present = sorted(set(np.unique(y_true[valid]).tolist()) | set(np.unique(y_pred[valid]).tolist()) | set(p_ids))
    table = _merge_classes([classes], [int(v) for v in present], notes)
    labels = table.ids
    cm = confusion_matrix(y_true, y_pred, labels)
    metrics = accuracy_metrics(cm, labels, table.names)
    metrics["notes"] = notes + metrics["notes"]
    metrics["inputs"] = {"predictions": os.path.basename(predictions_csv), "rows": int(y_true.size)}
    title = title or "Held-out accuracy of a land-cover classifier"
    if positions is not None and extras.get("footprint") is not None:
        extras["overlap"] = {"pixels": positions_in_training_blocks(extras["footprint"], positions[valid]), "of": int(valid.sum())}
    extras["kind"] = "held-out"
    extras["evaluated"] = "the held-out test pixels of Train classifier (its test predictions CSV)"
    monitor.update(0.5)
    extras["roc"] = None
    if proba is None:
        extras["roc_note"] = f"The predictions CSV {os.path.basename(predictions_csv)} has no p_<id> probability columns: no ROC curves."
    else:
        rows = valid & np.isin(y_true, p_ids)
        extras["roc"] = roc_one_vs_rest(y_true[rows], proba[rows], p_ids, [_name_of(table, c) for c in p_ids])
    doc = _write_report(metrics, table, json_out, html_out, title, extras)
    with contextlib.suppress(Cancelled):
        monitor.update(1.0)
    return doc


# ---------------------------------------------------------------------------------------------
# Output


def _check_outputs(json_out: str, html_out: str, inputs: list[str]) -> None:
    csv_out = confusion_csv_path(json_out)
    check_not_input(json_out, inputs, "OUTPUT_JSON")
    check_not_input(html_out, inputs, "OUTPUT_HTML")
    check_not_input(csv_out, inputs, "OUTPUT_JSON")
    real = [os.path.realpath(p) for p in (json_out, html_out, csv_out)]
    if len(set(real)) != 3:
        raise LandCoverError(
            f"The JSON report {json_out}, the HTML report {html_out} and the confusion CSV {csv_out} must be three " "different files; choose other names.",
            "OUTPUT_HTML",
        )


def _tick_label(name: str) -> str:
    name = name if len(name) <= 24 else name[:23] + "…"
    return name.replace("$", r"\$")  # matplotlib would read $…$ as math


def _heatmap_png(values: np.ndarray, names: list[str], title: str, fmt: str, vmax: float, xlabel: str = "Predicted", ylabel: str = "Reference") -> bytes:
    """A confusion-matrix heat map (rows = reference, columns = predicted) as PNG bytes."""
    require("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = len(names)
    side = min(max(4.5, 0.55 * k + 2.5), 24.0)
    fig = Figure(figsize=(side + 1.2, side), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax if vmax > 0 else 1.0, interpolation="nearest")
    ticks = [_tick_label(n) for n in names]
    ax.set_xticks(range(k))
    ax.set_xticklabels(ticks, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k))
    ax.set_yticklabels(ticks)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if k <= MAX_ANNOTATED_CLASSES:
        size = 10 if k <= 8 else (8 if k <= 15 else 6)
        threshold = 0.5 * (vmax if vmax > 0 else 1.0)
        for i in range(k):
            for j in range(k):
                v = values[i, j]
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=size, color="white" if v > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return render(fig)


def _name_of(table: ClassTable, cid: int) -> str:
    try:
        return table.by_id(cid).name
    except KeyError:
        return f"class {cid}"


def model_extras(model_path: str) -> dict:
    """What the report takes from an lc-plugin model: classes, feature importance, training counts, CV,
    and for a segmentation network its architecture and training history."""
    from ..ml.classify import load_model

    model = load_model(model_path)
    meta = model.metadata
    extras: dict = {"classes": model.classes, "model": os.path.basename(model_path)}
    try:
        if "lc_feature_importance" in meta:
            imp = json.loads(meta["lc_feature_importance"])
            per_date = len(model.feature_names) // max(1, len(model.dates))
            extras["feature_importance"] = {
                "dates": [d.isoformat() for d in model.dates],
                "features": [name.split("_", 1)[1] for name in model.feature_names[:per_date]],
                "gain": imp["gain"],
                "split": imp["split"],
            }
        if "lc_params" in meta:
            extras["params"] = json.loads(meta["lc_params"])
        if "lc_training_footprint" in meta:
            extras["footprint"] = json.loads(meta["lc_training_footprint"])
        if "lc_test_metrics" in meta:
            tm = json.loads(meta["lc_test_metrics"])
            extras["test_metrics"] = tm
            extras["training_counts"] = {int(k): int(v) for k, v in tm.get("train_class_counts", {}).items()}
            extras["test_counts"] = {int(k): int(v) for k, v in tm.get("test_class_counts", {}).items()}
        if "lc_cv" in meta:
            extras["cv"] = json.loads(meta["lc_cv"])
        if "lc_history" in meta:
            extras["history"] = json.loads(meta["lc_history"])
        if "lc_architecture" in meta:
            extras["architecture"] = json.loads(meta["lc_architecture"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LandCoverError(f"The lc-plugin metadata of {model_path} is damaged ({exc}).", "MODEL") from exc
    return extras


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
.meta{color:#666;font-size:.9em}
.headline{display:flex;flex-wrap:wrap;gap:1em;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}
.card .v{font-size:1.5em;font-weight:600}.card .k{color:#666;font-size:.85em}
table{border-collapse:collapse}th,td{border-bottom:1px solid #e5e5e5;padding:.3em .7em;text-align:right}
th{background:#f5f5f5}td.name,th.name{text-align:left}
.swatch{display:inline-block;width:.9em;height:.9em;border:1px solid #555;margin-right:.5em;vertical-align:middle}
img{max-width:100%;height:auto}
.lead{border:2px solid #2e7d32;border-radius:6px;padding:.6em 1em;margin:1em 0;background:#f3faf3}
.lead .v{font-size:1.8em;font-weight:700}.lead .k{color:#333;font-weight:600}
.warning{border-left:4px solid #c62828;background:#fff4f4;padding:.5em .8em}
"""


def _swatch(color: str | None) -> str:
    color = color if color and _COLOR_RE.match(color) else "#cccccc"
    return f'<span class="swatch" style="background:{color}"></span>'


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<p><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"></p>'


def lead_value(lead: dict) -> str:
    value = lead["value"]
    if "std" in value:
        return f"{value['value']:.3f} ± {value['std']:.3f}"
    if value["value"] is None:
        return "n/a"
    return f"{value['value']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"


def _with_ci(entry: dict) -> str:
    return "n/a" if entry["value"] is None else f"{entry['value']:.3f} [{entry['low']:.3f}–{entry['high']:.3f}]"


def _assessment_html(doc: dict) -> list[str]:
    """Lead estimate, warnings, other figures explained, methods paragraph."""
    e = html.escape
    a = doc["assessment"]
    lead = a["lead"]
    parts = [
        '<div class="lead"><div class="k">' + e(lead["label"]) + '</div><div class="v">' + e(lead_value(lead)) + "</div>",
        f"<p>{e(lead['why'])}</p></div>",
    ]
    parts += [f'<p class="warning">⚠ {e(w)}</p>' for w in a["warnings"]]
    if a["others"]:
        parts.append("<h2>Other figures in this report</h2><ul>" + "".join(f"<li>{e(o)}</li>" for o in a["others"]) + "</ul>")
    parts.append("<h2>Methods</h2><p>" + e(" ".join(a["methods"])) + "</p>")
    return parts


def _error_matrix_html(doc: dict, colors: dict[int, str]) -> list[str]:
    """The error matrix with row and column totals (rows reference, columns map), as a paper prints it."""
    e = html.escape
    cm = np.asarray(doc["confusion_matrix"], dtype=np.int64)
    names = doc["names"]
    head = "".join(f"<th>{e(n)}</th>" for n in names)
    parts = [
        "<h2>Error matrix</h2><table><thead><tr><th class=\"name\">Reference \\ map</th>" + head + "<th>Total</th><th>Producer's acc.</th></tr></thead><tbody>"
    ]
    per_class = {c["id"]: c for c in doc["intervals"]["per_class"]}
    for i, (cid, name) in enumerate(zip(doc["labels"], names)):
        cells = "".join(f"<td>{v:,}</td>" for v in cm[i])
        pa = _with_ci(per_class[cid]["producers_accuracy"])
        parts.append(f'<tr><td class="name">{_swatch(colors.get(cid))}{e(name)}</td>{cells}<td><b>{int(cm[i].sum()):,}</b></td><td>{pa}</td></tr>')
    totals = "".join(f"<td><b>{int(v):,}</b></td>" for v in cm.sum(axis=0))
    ua = "".join(f"<td>{_with_ci(per_class[cid]['users_accuracy'])}</td>" for cid in doc["labels"])
    oa = _with_ci(doc["intervals"]["overall_accuracy"])
    parts.append(f'<tr><td class="name"><b>Total</b></td>{totals}<td><b>{int(cm.sum()):,}</b></td><td></td></tr>')
    parts.append(f'<tr><td class="name">User\'s acc.</td>{ua}<td></td><td>OA {oa}</td></tr></tbody></table>')
    parts.append(
        f"<p class=\"meta\">Accuracies with 95 % confidence intervals: {e(doc['intervals']['method'])}; "
        "n/a where undefined (no pixel mapped as, or referenced as, the class).</p>"
    )
    return parts


def _html_page(doc: dict, classes: ClassTable, images: dict[str, list[tuple[str, bytes]]], csv_name: str, svg_names: list[str] = ()) -> str:
    e = html.escape
    colors = {c.id: c.color for c in classes}
    title = e(doc["title"])
    n = doc["n"]
    oa = doc["overall_accuracy"]
    cards = [
        ("Overall accuracy of this report", f"{_fmt(oa)} ({oa * 100:.1f} %)"),
        ("Cohen's kappa", _fmt(doc["kappa"])),
        ("Weighted F1", _fmt(doc["weighted_f1"])),
        ("Macro F1", _fmt(doc["macro_f1"])),
        ("MIoU", _fmt(doc.get("miou"))),
        ("Pixels compared (n)", f"{n:,}"),
    ]
    roc = doc.get("roc")
    if roc and roc.get("macro_auc") is not None:
        cards.append(("Macro AUC (one-vs-rest)", _fmt(roc["macro_auc"])))
    cv = doc.get("cross_validation")
    if cv:
        cards.append((f"CV overall accuracy ({cv['k']} folds)", f"{_fmt(cv['overall_accuracy_mean'])} ± {_fmt(cv['overall_accuracy_std'])}"))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<p class="meta">Created {e(doc["created"])}</p>',
    ]
    inputs = doc.get("inputs") or {}
    if inputs:
        parts.append('<ul class="meta">')
        parts += [f"<li>{e(str(k))}: {e(str(v))}</li>" for k, v in inputs.items() if v is not None]
        parts.append("</ul>")
    parts += _assessment_html(doc)
    parts.append('<h2>Headline figures</h2><div class="headline">')
    parts += [f'<div class="card"><div class="v">{e(v)}</div><div class="k">{e(k)}</div></div>' for k, v in cards]
    parts.append("</div>")
    parts += _error_matrix_html(doc, colors)

    parts.append("<h2>Per class</h2><table><thead><tr>")
    parts.append(
        "<th class=\"name\">Class</th><th>Id</th><th>Precision<br>(user's acc.)</th><th>Recall<br>(producer's acc.)</th>"
        "<th>F1</th><th>IoU</th><th>Support<br>(reference)</th><th>Predicted</th></tr></thead><tbody>"
    )
    for c in doc["per_class"]:
        parts.append(
            f'<tr><td class="name">{_swatch(colors.get(c["id"]))}{e(c["name"])}</td>'
            f'<td>{c["id"]}</td><td>{_fmt(c["precision"])}</td><td>{_fmt(c["recall"])}</td><td>{_fmt(c["f1"])}</td>'
            f'<td>{_fmt(c.get("iou"))}</td><td>{c["support"]:,}</td><td>{c["predicted"]:,}</td></tr>'
        )
    parts.append("</tbody></table>")

    if doc.get("notes"):
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{e(note)}</li>" for note in doc["notes"]]
        parts.append("</ul>")

    parts.append(
        "<h2>Confusion matrix</h2><p>Rows are reference classes, columns predicted classes. Row-normalised cells are "
        "the share of each reference class (recall), column-normalised cells the share of each predicted class "
        f"(precision). The counts are also in {e(csv_name)}.</p>"
    )
    if svg_names:
        parts.append("<p class=\"meta\">Every figure is also written as SVG beside this page: " + ", ".join(e(n) for n in svg_names) + ".</p>")
    parts += [_img(png, alt) for alt, png in images.get("confusion", [])]

    parts.append("<h2>ROC curves</h2>")
    if roc:
        parts.append('<table><thead><tr><th class="name">Class</th><th>AUC</th><th>Test samples</th></tr></thead><tbody>')
        for c in roc["per_class"]:
            parts.append(f'<tr><td class="name">{_swatch(colors.get(c["id"]))}{e(c["name"])}</td><td>{_fmt(c["auc"])}</td><td>{c["support"]:,}</td></tr>')
        parts.append(
            f'<tr><td class="name">macro average</td><td>{_fmt(roc["macro_auc"])}</td><td></td></tr>'
            f'<tr><td class="name">support-weighted average</td><td>{_fmt(roc["weighted_auc"])}</td><td></td></tr>'
        )
        parts.append("</tbody></table>")
        parts += [_img(png, alt) for alt, png in images.get("roc", [])]
    else:
        parts.append(f"<p>{e(doc.get('roc_note') or 'ROC curves are unavailable: no class probabilities.')}</p>")

    counts = doc.get("training_counts")
    if counts:
        parts.append(
            '<h2>Training samples per class</h2><table><thead><tr><th class="name">Class</th><th>Id</th>' "<th>Training samples</th></tr></thead><tbody>"
        )
        for c in counts:
            parts.append(f'<tr><td class="name">{_swatch(colors.get(c["id"]))}{e(c["name"])}</td><td>{c["id"]}</td><td>{c["count"]:,}</td></tr>')
        parts.append("</tbody></table>")
        parts += [_img(png, alt) for alt, png in images.get("counts", [])]

    if doc.get("feature_importance"):
        parts.append(
            "<h2>Feature importance</h2><p>LightGBM importance of every band/index on every date: <i>gain</i> is the "
            "total loss reduction of the splits on a feature, <i>split</i> how often it is used.</p>"
        )
        parts += [_img(png, alt) for alt, png in images.get("importance", [])]

    history = doc.get("training_history")
    if history:
        arch = doc.get("architecture") or {}
        described = f"{e(str(arch.get('name', 'network')))} (width {arch.get('width', '?')}, depth {arch.get('depth', '?')}), " if arch else ""
        parts.append(
            f"<h2>Training curves</h2><p>{described}{len(history['epochs'])} epochs in {history['seconds']:.1f} s on "
            f"{e(str(history.get('device', '?')))}; the model keeps the weights of epoch {history['best_epoch']} (lowest validation loss).</p>"
        )
        parts += [_img(png, alt) for alt, png in images.get("history", [])]

    if cv:
        parts.append(
            f"<h2>Cross-validation</h2><p>{cv['k']}-fold, stratified by spatial group ({e(str(cv.get('group', '')))}, "
            f"{cv['n_groups']} groups): overall accuracy {_fmt(cv['overall_accuracy_mean'])} ± {_fmt(cv['overall_accuracy_std'])}, "
            f"weighted F1 {_fmt(cv['weighted_f1_mean'])} ± {_fmt(cv['weighted_f1_std'])} (mean ± std).</p>"
            "<table><thead><tr><th>Fold</th><th>Train</th><th>Test</th><th>Overall accuracy</th><th>Weighted F1</th></tr></thead><tbody>"
        )
        for f in cv["folds"]:
            parts.append(
                f'<tr><td>{f["fold"]}</td><td>{f["n_train"]:,}</td><td>{f["n_test"]:,}</td>'
                f'<td>{_fmt(f["overall_accuracy"])}</td><td>{_fmt(f["weighted_f1"])}</td></tr>'
            )
        parts.append("</tbody></table>")
        parts += [_img(png, alt) for alt, png in images.get("cv", [])]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _confusion_csv(doc: dict) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    heads = [f"{i} {name}" for i, name in zip(doc["labels"], doc["names"])]
    writer.writerow(["reference \\ predicted", *heads])
    for head, row in zip(heads, doc["confusion_matrix"]):
        writer.writerow([head, *row])
    return buf.getvalue()


def _write_report(metrics: dict, classes: ClassTable, json_out: str, html_out: str, title: str, extras: dict | None = None) -> dict:
    """Render all three outputs in memory, then write them; returns the JSON document."""
    from . import figures

    extras = extras or {}
    doc = {
        "title": title,
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "inputs": metrics.get("inputs", {}),
        **{k: v for k, v in metrics.items() if k != "inputs"},
    }
    if extras.get("model"):
        doc["inputs"]["model"] = extras["model"]
    colors = {c.id: c.color for c in classes}
    doc["roc"] = extras.get("roc")
    if doc["roc"] is None:
        doc["roc_note"] = extras.get("roc_note") or "ROC curves are unavailable: no class probabilities."
    else:
        doc["notes"] = list(doc["notes"]) + doc["roc"]["notes"]
    if extras.get("training_counts"):
        doc["training_counts"] = [{"id": cid, "name": _name_of(classes, cid), "count": count} for cid, count in sorted(extras["training_counts"].items())]
    if extras.get("feature_importance"):
        doc["feature_importance"] = extras["feature_importance"]
    cv = extras.get("cv")
    if cv and "skipped" in cv:
        doc["notes"] = list(doc["notes"]) + [f"Cross-validation was not run: {cv['skipped']}"]
    elif cv:
        doc["cross_validation"] = cv
    if extras.get("history"):
        doc["training_history"] = extras["history"]
        doc["architecture"] = extras.get("architecture")
    _mark_undefined(doc["per_class"])
    doc["intervals"] = extras.get("intervals") or simple_random_intervals(np.asarray(doc["confusion_matrix"]), doc["labels"])
    doc["notes"] = list(doc["notes"]) + list(doc["intervals"].get("notes", []))
    doc["overlap_with_training"] = extras.get("overlap")
    model_info = {"params": extras.get("params"), "test_metrics": extras.get("test_metrics"), "cv": cv}
    doc["assessment"] = assess(extras.get("kind", "map"), doc, model_info, extras.get("overlap"), extras.get("evaluated", "the compared pixels"))
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)

    with figures.figure_format("png"):
        images = _figures(doc, colors)
    with figures.figure_format("svg"):
        svgs = {f"{os.path.splitext(html_out)[0]}_{key}_{i + 1}.svg": svg for key, items in _figures(doc, colors).items() for i, (_, svg) in enumerate(items)}
    csv_out = confusion_csv_path(json_out)
    page = _html_page(doc, classes, images, os.path.basename(csv_out), [os.path.basename(p) for p in svgs])
    outputs = [(json_out, text), (csv_out, _confusion_csv(doc)), *((path, svg.decode("utf-8")) for path, svg in svgs.items()), (html_out, page)]
    for path, content in outputs:
        with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(content)
    return doc


def _mark_undefined(per_class: list[dict]) -> None:
    """Undefined accuracies become None ("n/a"): precision of a class never mapped, recall of one absent
    from the reference, F1 and IoU of one absent from both (``accuracy_metrics`` reports 0, as scikit-learn)."""
    for c in per_class:
        if c["predicted"] == 0:
            c["precision"] = None
        if c["support"] == 0:
            c["recall"] = None
        if c["predicted"] == 0 and c["support"] == 0:
            c["f1"] = c["iou"] = None


def _figures(doc: dict, colors: dict[int, str]) -> dict[str, list[tuple[str, bytes]]]:
    """Every figure of the report, as (caption, bytes) in the current ``figures.figure_format``."""
    from . import figures

    cm = np.asarray(doc["confusion_matrix"], dtype=np.float64)
    recall = np.asarray(doc["confusion_matrix_recall"], dtype=np.float64)
    precision = np.asarray(doc["confusion_matrix_precision"], dtype=np.float64)
    names = list(doc["names"])
    images: dict[str, list[tuple[str, bytes]]] = {
        "confusion": [
            ("Confusion matrix (pixel counts)", _heatmap_png(cm, names, "Pixel counts", "{:.0f}", float(cm.max()))),
            ("Confusion matrix normalised by reference (recall)", _heatmap_png(recall, names, "Share of reference (row-normalised, recall)", "{:.2f}", 1.0)),
            (
                "Confusion matrix normalised by prediction (precision)",
                _heatmap_png(precision, names, "Share of predicted (column-normalised, precision)", "{:.2f}", 1.0),
            ),
        ]
    }
    if doc["roc"] and any(c["auc"] is not None for c in doc["roc"]["per_class"]):
        images["roc"] = [("ROC curves one-vs-rest", figures.roc_png(doc["roc"]["per_class"], colors))]
    if doc.get("training_counts"):
        tc = doc["training_counts"]
        images["counts"] = [
            (
                "Training samples per class",
                figures.class_counts_png([c["name"] for c in tc], [c["count"] for c in tc], [colors.get(c["id"]) for c in tc], "Training samples per class"),
            )
        ]
    fi = doc.get("feature_importance")
    if fi:
        t, f = len(fi["dates"]), len(fi["features"])
        images["importance"] = [
            (
                f"Feature importance ({kind})",
                figures.importance_png(
                    np.asarray(fi[kind], dtype=np.float64).reshape(t, f).T, fi["dates"], fi["features"], f"Feature importance ({kind}) by band/index and date"
                ),
            )
            for kind in ("gain", "split")
        ]
    if doc.get("training_history"):
        hist = doc["training_history"]
        images["history"] = [("Training curves", figures.training_curves_png(hist["epochs"], hist["best_epoch"]))]
    if doc.get("cross_validation"):
        images["cv"] = [("Cross-validation folds", figures.cv_png(doc["cross_validation"]["folds"]))]
    return images



def write_report(metrics: dict, classes: ClassTable, json_out: str, html_out: str, title: str, extras: dict | None = None) -> None:
    """Write the JSON, HTML and ``<json stem>_confusion.csv`` report of an ``accuracy_metrics`` dict.

    An ``inputs`` entry of ``metrics`` (paths and settings) is shown on the page and kept in the JSON;
    ``extras`` may add ``roc`` (``metrics.roc_one_vs_rest``), ``training_counts`` ({id: n}),
    ``feature_importance``, ``cv``, ``history`` and ``architecture`` (see ``model_extras``).
    """
    _write_report(metrics, classes, json_out, html_out, title, extras)
