"""Accuracy reports: a land-cover map (or held-out predictions) against reference labels.

Each report is three files written atomically: a JSON document with every number (the
``metrics.accuracy_metrics`` dict plus title, inputs and creation time), a self-contained HTML
page (``report_page``: headline numbers, per-class table, notes and the confusion matrix as
embedded PNG heat maps) and the confusion matrix as CSV (``<json stem>_confusion.csv``); every
figure is also written as SVG beside the page.

Figures are drawn with matplotlib's object API on an Agg canvas, never through ``pyplot``:
pyplot keeps global state and may pick QGIS's Qt backend, and Processing runs algorithms in a
worker thread where that is unsafe. The result is the same Agg rendering without touching the
process-wide backend.
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

from ..core.atomic import atomic_output, check_not_input
from ..core.classes import NODATA_CLASS, ClassTable, merge_class_tables
from ..core.errors import Cancelled, DataError, InputError, LandCoverError
from ..core.monitor import Monitor, ensure_monitor
from ..io.rasters import Grid
from ..ml.spatial import in_training_blocks, positions_in_training_blocks
from . import figures
from .assessment import assess
from .estimates import simple_random_intervals, stratified_intervals
from .labels import describe_grid, read_label_raster, read_reference
from .metrics import accuracy_metrics, confusion_matrix, roc_one_vs_rest
from .predictions import model_extras, name_of, read_predictions, roc_from_raster
from .report_page import accuracy_page, lead_value, report_figures

__all__ = ["AccuracyReport", "accuracy_report_file", "confusion_csv_path", "lead_value", "model_extras", "predictions_report_file", "write_report"]

CHUNK_ROWS = 512


@dataclass(frozen=True)
class AccuracyReport:
    """What a report step wrote: its files, and the document (every number, as in the JSON file)."""

    json_path: str
    html_path: str
    csv_path: str
    svg_paths: tuple[str, ...]
    document: dict


def confusion_csv_path(json_out: str) -> str:
    """The confusion-matrix CSV written beside the JSON report."""
    return os.path.splitext(json_out)[0] + "_confusion.csv"



def _merge_classes(tables: list[ClassTable | None], present_ids: list[int], notes: list[str]) -> ClassTable:
    """The map's and the reference's classes as one table (``merge_class_tables``' rule), a name conflict noted."""
    table, conflicts = merge_class_tables(tables, present_ids)
    notes.extend(
        f"Class id {c.class_id} is named '{c.kept}' in the map but '{c.other}' in the reference; "
        "classes are matched by id, so check that both use the same legend."
        for c in conflicts
    )
    return table


def _pair_counts(ref: np.ndarray, pred: np.ndarray, monitor: Monitor) -> np.ndarray:
    """(256, 256) counts of (reference, predicted) id pairs, block by block to bound memory."""
    counts = np.zeros(256 * 256, dtype=np.int64)
    height = ref.shape[0]
    for r0 in range(0, height, CHUNK_ROWS):
        r1 = min(r0 + CHUNK_ROWS, height)
        code = ref[r0:r1].astype(np.uint16) * 256 + pred[r0:r1]  # fits: at most 255 * 256 + 255
        counts += np.bincount(code.ravel(), minlength=256 * 256)
        monitor.update(r1 / height)
    return counts.reshape(256, 256)


def _read_map_and_reference(
    classification_path: str, reference_path: str, reference_field: str | None, reference_layer: str | None, monitor: Monitor
) -> tuple[np.ndarray, ClassTable | None, Grid, np.ndarray, ClassTable | None, str]:
    """The map's and the reference's ids on the map's grid, their tables, and the kind of reference."""
    pred, pred_table, grid = read_label_raster(classification_path, "classification_path", "classification")
    if not np.any(pred != NODATA_CLASS):
        raise DataError(f"The classification {classification_path} has no classified pixel (every pixel is 0 = no data).", "classification_path")
    monitor.update(0.05)
    ref, ref_table, kind = read_reference(reference_path, grid, reference_field, reference_layer)
    if not np.any(ref != NODATA_CLASS):
        raise DataError(f"The reference {reference_path} has no labelled pixel on the classification's grid.", "reference_path")
    monitor.update(0.3)
    return pred, pred_table, grid, ref, ref_table, kind


def _design_extras(kind: str, reference_path: str, cm: np.ndarray, classes: ClassTable, pred: np.ndarray, grid: Grid, notes: list[str]) -> dict:
    """How the compared pixels were chosen: a point sample is read as stratified by map class (Olofsson
    intervals), anything else as a census of the reference (Wilson intervals, the report's default)."""
    name = os.path.basename(reference_path)
    if kind != "points":
        census = f"every pixel where the map and the reference ({name}) both have a class, a census of the reference rather than a probability sample"
        return {"evaluated": census}
    extras: dict = {"evaluated": f"the {kind} reference points of {name}, read as a sample stratified by map class"}
    mapped = np.bincount(pred.ravel(), minlength=256)[classes.ids]
    pixel_ha = abs(grid.transform.a * grid.transform.e) / 10_000
    try:
        extras["intervals"] = stratified_intervals(cm, classes.ids, mapped, pixel_ha, classes.names)
    except LandCoverError as exc:
        notes.append(f"The point sample cannot be read as stratified by map class ({exc}); simple random intervals are shown.")
    return extras


_NO_MAP_ROC = (
    "ROC curves and AUC are unavailable for a map-vs-reference report without probabilities: a class map holds "
    "no class probabilities. Give the Classify step's probability raster, or run the report on the test "
    "predictions CSV of Train classifier."
)


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
    monitor: Monitor | None = None,
) -> AccuracyReport:
    """Compare a class raster with a reference (class raster on the same grid, polygons or points) and write the report.

    Pixels where either the map or the reference is 0 (no data) are left out. With ``model_path``
    the report adds the model's feature importance, training class counts and cross-validation;
    with ``probabilities_path`` (the Classify step's probability raster) one-vs-rest ROC curves
    over up to ``ROC_MAX_PIXELS`` randomly chosen reference pixels.
    """
    monitor = ensure_monitor(monitor)
    _check_outputs(json_out, html_out, [classification_path, reference_path])
    monitor.update(0.0)
    pred, pred_table, grid, ref, ref_table, kind = _read_map_and_reference(classification_path, reference_path, reference_field, reference_layer, monitor)
    counts = _pair_counts(ref, pred, monitor.sub(0.3, 0.8))
    notes: list[str] = []
    seen = np.flatnonzero(counts[1:, :].sum(axis=1) + counts[:, 1:].sum(axis=0)) + 1
    classes = _merge_classes([pred_table, ref_table], [int(v) for v in seen], notes)
    labels = classes.ids
    cm = counts[np.ix_(labels, labels)]
    if cm.sum() == 0:
        raise DataError(
            "No pixel where both the map and the reference have a class: the reference covers only pixels the map "
            f"leaves as no data (reference {reference_path}, classification {classification_path}).",
            "reference_path",
        )
    metrics = accuracy_metrics(cm, labels, classes.names)
    metrics["notes"] = notes + metrics["notes"]
    metrics["inputs"] = {
        "classification": os.path.basename(classification_path),
        "reference": os.path.basename(reference_path),
        "reference_kind": kind,
        "reference_field": reference_field if kind == "vector" else None,
        "reference_layer": reference_layer if kind == "vector" else None,
        "grid": describe_grid(grid),
        "pixels_classified": int((pred != NODATA_CLASS).sum()),
        "pixels_referenced": int((ref != NODATA_CLASS).sum()),
    }
    monitor.update(0.85)
    extras = model_extras(model_path) if model_path else {}
    compared = (ref != NODATA_CLASS) & (pred != NODATA_CLASS) & np.isin(ref, labels) & np.isin(pred, labels)
    if extras.get("footprint") is not None:
        extras["overlap"] = {"pixels": in_training_blocks(extras["footprint"], grid, compared), "of": int(compared.sum())}
    extras["kind"] = "map"
    extras.update(_design_extras(kind, reference_path, cm, classes, pred, grid, notes))
    extras["roc"] = None
    if probabilities_path:
        extras["roc"] = roc_from_raster(probabilities_path, grid, ref, pred, classes)
        metrics["inputs"]["probabilities"] = os.path.basename(probabilities_path)
    else:
        extras["roc_note"] = _NO_MAP_ROC
    written = _write_report(metrics, classes, json_out, html_out, title or "Accuracy assessment of a land-cover map", extras)
    with contextlib.suppress(Cancelled):  # the outputs are complete; a late cancel does not undo them
        monitor.update(1.0)
    monitor.info(f"Overall accuracy {metrics['overall_accuracy']:.4f}, kappa {metrics['kappa']:.4f} over {metrics['n']} pixels.")
    return written


def predictions_report_file(
    predictions_csv: str,
    json_out: str,
    html_out: str,
    *,
    classes: ClassTable | None = None,
    model_path: str | None = None,
    title: str | None = None,
    monitor: Monitor | None = None,
) -> AccuracyReport:
    """Report on the training step's held-out test predictions (CSV source,row,col,y_true,y_pred,p_<id>…).

    The p_<id> probabilities give one-vs-rest ROC curves and AUCs; ``model_path`` adds the
    model's classes, feature importance, training class counts and cross-validation.
    """
    monitor = ensure_monitor(monitor)
    _check_outputs(json_out, html_out, [predictions_csv])
    monitor.update(0.0)
    y_true, y_pred, p_ids, proba, positions = read_predictions(predictions_csv)
    extras = model_extras(model_path) if model_path else {}
    if classes is None:
        classes = extras.get("classes")
    valid = (y_true != NODATA_CLASS) & (y_pred != NODATA_CLASS)
    if not valid.any():
        raise DataError(
            f"The predictions CSV {predictions_csv} has no row where both y_true and y_pred hold a class "
            "(the training step wrote no test pixels; give it a test fraction above 0).",
            "predictions_csv",
        )
    monitor.update(0.3)
    notes: list[str] = []
    present = sorted(set(np.unique(y_true[valid]).tolist()) | set(np.unique(y_pred[valid]).tolist()) | set(p_ids))
    table = _merge_classes([classes], [int(v) for v in present], notes)
    labels = table.ids
    metrics = accuracy_metrics(confusion_matrix(y_true, y_pred, labels), labels, table.names)
    metrics["notes"] = notes + metrics["notes"]
    metrics["inputs"] = {"predictions": os.path.basename(predictions_csv), "rows": int(y_true.size)}
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
        extras["roc"] = roc_one_vs_rest(y_true[rows], proba[rows], p_ids, [name_of(table, c) for c in p_ids])
    written = _write_report(metrics, table, json_out, html_out, title or "Held-out accuracy of a land-cover classifier", extras)
    with contextlib.suppress(Cancelled):
        monitor.update(1.0)
    return written


# ---------------------------------------------------------------------------------------------
# Output


def _check_outputs(json_out: str, html_out: str, inputs: list[str]) -> None:
    csv_out = confusion_csv_path(json_out)
    check_not_input(json_out, inputs, "json_out")
    check_not_input(html_out, inputs, "html_out")
    check_not_input(csv_out, inputs, "json_out")
    real = [os.path.realpath(p) for p in (json_out, html_out, csv_out)]
    if len(set(real)) != 3:
        raise InputError(
            f"The JSON report {json_out}, the HTML report {html_out} and the confusion CSV {csv_out} must be three different files; choose other names.",
            "html_out",
        )


def _confusion_csv(doc: dict) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    heads = [f"{i} {name}" for i, name in zip(doc["labels"], doc["names"])]
    writer.writerow(["reference \\ predicted", *heads])
    for head, row in zip(heads, doc["confusion_matrix"]):
        writer.writerow([head, *row])
    return buf.getvalue()


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


def _document(metrics: dict, classes: ClassTable, title: str, extras: dict) -> dict:
    """The JSON document: the metrics, what the extras add (ROC, model, CV, intervals) and the assessment in words."""
    doc = {
        "title": title,
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "inputs": metrics.get("inputs", {}),
        **{k: v for k, v in metrics.items() if k != "inputs"},
    }
    if extras.get("model"):
        doc["inputs"]["model"] = extras["model"]
    doc["roc"] = extras.get("roc")
    if doc["roc"] is None:
        doc["roc_note"] = extras.get("roc_note") or "ROC curves are unavailable: no class probabilities."
    else:
        doc["notes"] = list(doc["notes"]) + doc["roc"]["notes"]
    if extras.get("training_counts"):
        doc["training_counts"] = [{"id": cid, "name": name_of(classes, cid), "count": count} for cid, count in sorted(extras["training_counts"].items())]
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
    return doc


def _write_report(metrics: dict, classes: ClassTable, json_out: str, html_out: str, title: str, extras: dict | None = None) -> AccuracyReport:
    """Render every output in memory (JSON, CSV, SVG figures, HTML), then write them."""
    doc = _document(metrics, classes, title, extras or {})
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
    colors = {c.id: c.color for c in classes}
    with figures.figure_format("png"):
        images = report_figures(doc, colors)
    with figures.figure_format("svg"):
        drawn = report_figures(doc, colors)
    svgs = {f"{os.path.splitext(html_out)[0]}_{key}_{i + 1}.svg": svg for key, items in drawn.items() for i, (_, svg) in enumerate(items)}
    csv_out = confusion_csv_path(json_out)
    html_page = accuracy_page(doc, classes, images, os.path.basename(csv_out), [os.path.basename(p) for p in svgs])
    outputs = [(json_out, text), (csv_out, _confusion_csv(doc)), *((path, svg.decode("utf-8")) for path, svg in svgs.items()), (html_out, html_page)]
    for path, content in outputs:
        with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(content)
    return AccuracyReport(json_out, html_out, csv_out, tuple(svgs), doc)


def write_report(metrics: dict, classes: ClassTable, json_out: str, html_out: str, title: str, extras: dict | None = None) -> None:
    """Write the JSON, HTML and ``<json stem>_confusion.csv`` report of an ``accuracy_metrics`` dict.

    An ``inputs`` entry of ``metrics`` (paths and settings) is shown on the page and kept in the JSON;
    ``extras`` may add ``roc`` (``metrics.roc_one_vs_rest``), ``training_counts`` ({id: n}),
    ``feature_importance``, ``cv``, ``history`` and ``architecture`` (see ``model_extras``).
    """
    _write_report(metrics, classes, json_out, html_out, title, extras)
