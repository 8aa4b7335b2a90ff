"""What a report reads besides the map and the reference: test predictions, class probabilities, a model.

The training step's held-out predictions CSV (``source,row,col,y_true,y_pred,p_<id>…``) gives the
held-out report; the Classify step's probability raster gives a map's ROC curves; an lc-plugin
model's metadata gives class names, feature importance, training counts, cross-validation and, for
a network, its training curves. Errors name the report function's argument for the file at fault.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from ..core.classes import NODATA_CLASS, ClassTable
from ..core.errors import InputError
from ..io.rasters import TAG_CLASSES, Grid
from .labels import describe_grid
from .metrics import roc_one_vs_rest

CHUNK_ROWS = 512


def name_of(table: ClassTable, cid: int) -> str:
    try:
        return table.by_id(cid).name
    except KeyError:
        return f"class {cid}"


ROC_MAX_PIXELS = 200_000


def roc_from_raster(path: str, grid: Grid, ref: np.ndarray, pred: np.ndarray, classes: ClassTable) -> dict:
    """One-vs-rest ROC of the reference against a probability raster (one band per class, ``CLASS_ID`` tags)."""
    try:
        with rasterio.open(path) as src:
            p_grid = Grid(src.crs, src.transform, src.width, src.height)
            tagged = [src.tags(band).get("CLASS_ID") for band in range(1, src.count + 1)]
            ids = [int(cid) for cid in tagged if cid is not None and cid.isdigit()]
            if len(ids) < src.count:
                text = src.tags().get(TAG_CLASSES)
                table = ClassTable.from_json(text) if text else None
                if table is None or len(table) != src.count:
                    raise InputError(
                        f"The probability raster {path} does not say which class each band holds (no CLASS_ID band tags "
                        "or class table); use the probabilities written by the Classify step.",
                        "probabilities_path",
                    )
                ids = table.ids
            if not p_grid.same_as(grid):
                raise InputError(
                    f"The probability raster is on another grid than the classification: {describe_grid(p_grid)} vs " f"{describe_grid(grid)}.",
                    "probabilities_path",
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
        raise InputError(f"Cannot read the probability raster {path}: {exc}", "probabilities_path") from exc
    finite = np.isfinite(proba).all(axis=1)
    y_true = ref.ravel()[candidates][finite]
    return roc_one_vs_rest(y_true, proba[finite], ids, [name_of(classes, c) for c in ids])


def read_predictions(path: str) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray | None, np.ndarray | None]:
    """y_true, y_pred, the class ids of the p_<id> columns of the training step's CSV, their (N, K) values and the
    (N, 3) source/row/col positions (None without those columns)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise InputError(f"Cannot read the predictions CSV {path}: {exc}", "predictions_csv") from exc
    if not rows:
        raise InputError(f"The predictions CSV {path} is empty.", "predictions_csv")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in ("y_true", "y_pred") if c not in header]
    if missing:
        raise InputError(
            f"The predictions CSV {path} has no column {', '.join(missing)}; expected the header "
            "source,row,col,y_true,y_pred,p_<id>… written by the training step.",
            "predictions_csv",
        )
    body = [r for r in rows[1:] if r and any(cell.strip() for cell in r)]
    if any(len(r) != len(header) for r in body):
        raise InputError(f"The predictions CSV {path} has rows with a different number of columns than its header.", "predictions_csv")
    p_ids = [int(h[2:]) for h in header if h.startswith("p_") and h[2:].isdigit()]
    cols = []
    for name in ("y_true", "y_pred"):
        i = header.index(name)
        try:
            values = np.array([r[i] for r in body], dtype=np.float64)
        except ValueError as exc:
            raise InputError(f"The column {name} of {path} holds a value that is not a class id ({exc}).", "predictions_csv") from exc
        if values.size and (not np.all(np.isfinite(values)) or np.any(values != np.round(values))):
            raise InputError(f"The column {name} of {path} holds values that are not integer class ids.", "predictions_csv")
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
        raise InputError(f"The lc-plugin metadata of {model_path} is damaged ({exc}).", "model_path") from exc
    return extras
