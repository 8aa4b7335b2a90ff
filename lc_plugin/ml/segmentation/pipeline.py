"""Train a segmentation network on a tile store, export it to ONNX and report on the test fold.

The test-fold metrics are computed with the exported ONNX model itself (through the Classify
step's loader), so the report describes exactly the file the user gets.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...core.atomic import check_not_input
from ...core.classes import ClassTable
from ...core.deps import require
from ...core.errors import DataError, InputError, LandCoverError
from ...core.monitor import Monitor, ensure_monitor
from ...validation.metrics import accuracy_metrics, confusion_matrix, roc_one_vs_rest
from .training import FitResult, TrainConfig, fit, split_folds, take, targets

DEFAULT_OVERLAP_FRACTION = 0.25  # of the tile size: blending width used by Classify


@dataclass
class TileSet:
    """Tiles as arrays (or zarr arrays) with what the model needs to know about them."""

    x: Any  # (N, T, C, H, W) float32, NaN = no data
    y: Any  # (N, H, W) uint8 class ids, 0 = unlabelled
    folds: np.ndarray  # (N,) fold of each tile
    classes: ClassTable
    dates: list
    bands: list[str]
    valid: Any = None  # (N, H, W) bool
    n_folds: int | None = None  # None: the highest fold id + 1
    x2: Any = None  # (N, T2, C2, h, w) float32: the same tiles of a second (coarse) modality
    second: dict[str, Any] | None = None  # its sensor, dates, bands, resolution and the primary resolution


def open_tiles(path: str, second_sensor: str | None = None) -> TileSet:
    """A tile store written by ``reference.dataset.export_tiles``, as a ``TileSet`` (an error naming ``dataset_path``
    otherwise), with the sensor group ``second_sensor`` as the second input when given."""
    from ...reference.tile_store import open_tile_store

    try:
        store = open_tile_store(path)
    except LandCoverError as exc:
        raise type(exc)(str(exc), argument="dataset_path") from exc
    tiles = TileSet(
        store.inputs(), store.labels, np.asarray(store.folds), store.classes, list(store.dates), list(store.bands), store.valid, store.n_folds
    )
    if second_sensor:
        if second_sensor not in store.sensors[1:]:
            others = ", ".join(store.sensors[1:]) or "none"
            raise InputError(f"The tile store has no second sensor '{second_sensor}' (its other sensors: {others}).", argument="second_sensor")
        dates, bands = store.sensor_meta(second_sensor)
        tiles.x2 = store.inputs(second_sensor)
        tiles.second = {
            "sensor": second_sensor, "dates": dates, "bands": bands, "resolution": store.sensor_resolution(second_sensor),
            "primary_resolution": store.sensor_resolution(),
        }
    return tiles


def evaluate_tiles(model: Any, tiles: TileSet, idx: np.ndarray, batch_size: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference ids, predicted ids and probabilities (n, K) of the labelled, valid pixels of tiles ``idx``."""
    ids = np.asarray(model.classes.ids)
    refs, preds, probas = [], [], []
    for start in range(0, len(idx), batch_size):
        part = np.sort(idx[start:start + batch_size])
        xb = take(tiles.x, part)
        t = targets(xb, take(tiles.y, part), model.classes.ids, None if tiles.valid is None else take(tiles.valid, part))
        proba = model.predict(xb, None if tiles.x2 is None else take(tiles.x2, part))  # (n, K, H, W)
        keep = t >= 0
        refs.append(ids[t[keep]])
        probas.append(np.moveaxis(proba, 1, -1)[keep])
        preds.append(ids[probas[-1].argmax(axis=1)])
    k = len(ids)
    if not refs:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, k), np.float32)
    return np.concatenate(refs), np.concatenate(preds), np.concatenate(probas)


def train_on_tiles(tiles: TileSet, config: TrainConfig, model_out: str, *, monitor: Monitor | None = None) -> tuple[FitResult, dict | None, dict]:
    """Fit on the training folds, write the ONNX model, return (fit, test-fold metrics or None, report extras)."""
    from ..onnx_models import load_model
    from .export import save_model, second_input_metadata, segmentation_metadata, to_onnx_bytes, with_metadata

    monitor = ensure_monitor(monitor)
    config.validate()
    n, n_dates, n_channels, tile_h, tile_w = tiles.x.shape
    if tile_h != tile_w:
        raise DataError(f"The data set's tiles are {tile_h}×{tile_w} px; square tiles are needed.", argument="dataset_path")
    if len(tiles.classes) < 2:
        raise DataError("The data set has fewer than 2 classes.", argument="dataset_path")
    train_idx, val_idx, test_idx = split_folds(tiles.folds, config, tiles.n_folds)
    monitor.info(
        f"{len(train_idx)} training, {len(val_idx)} validation and {len(test_idx)} test tiles of {tile_h}×{tile_w} px, "
        f"{n_dates} dates × {n_channels} bands."
    )
    result = fit(tiles.x, tiles.y, train_idx, val_idx, tiles.classes, config, valid=tiles.valid, x2=tiles.x2, monitor=monitor.sub(0.0, 0.9))
    overlap = int(round(tile_h * DEFAULT_OVERLAP_FRACTION))
    extra = {"lc_test_metrics": json.dumps({"train_class_counts": {str(k): v for k, v in result.train_counts.items()}})}
    second = None
    if tiles.x2 is not None:
        second = tuple(tiles.x2.shape[1:4])
        info = tiles.second or {}  # open_tiles sets it with x2
        extra["lc_second_input"] = second_input_metadata(
            result, info["sensor"], info["dates"], info["bands"], second[2], info["resolution"], info["primary_resolution"]
        )
    meta = segmentation_metadata(result, config, tiles.classes, tiles.dates, tiles.bands, tile_h, overlap, extra)
    onx = with_metadata(to_onnx_bytes(result.model, n_dates, n_channels, tile_h, second), meta)
    save_model(onx, model_out)
    model = load_model(model_out)
    extras = {
        "model": os.path.abspath(model_out),
        "training_counts": result.train_counts,
        "history": json.loads(meta["lc_history"]),
        "architecture": json.loads(meta["lc_architecture"]),
    }
    metrics = None
    if len(test_idx):
        ref, pred, proba = evaluate_tiles(model, tiles, test_idx, config.batch_size)
        if ref.size:
            labels = tiles.classes.ids
            metrics = accuracy_metrics(confusion_matrix(ref, pred, labels), labels, tiles.classes.names)
            extras["roc"] = roc_one_vs_rest(ref, proba, labels, tiles.classes.names)
    monitor.update(1.0)
    return result, metrics, extras


@dataclass(frozen=True)
class SegmentationResult:
    """What ``train_segmentation`` wrote and measured (test metrics None when the test fold has no labelled pixel)."""

    model: str
    report: str | None
    epochs: int
    best_epoch: int
    best_val_miou: float
    test_overall_accuracy: float | None
    test_miou: float | None
    seconds: float
    device: str


def train_segmentation(
    dataset_path: str,
    model_out: str,
    report_out: str | None,
    config: TrainConfig,
    *,
    second_sensor: str | None = None,
    monitor: Monitor | None = None,
) -> SegmentationResult:
    """File-level entry point of landcover:trainsegmentation: data set in, ONNX model and HTML report out
    (a two-input network when ``second_sensor`` names a second modality of the store)."""
    from ...validation.report import write_report

    require("torch")
    require("onnx")
    require("onnxruntime")
    monitor = ensure_monitor(monitor)
    config.validate()
    check_not_input(model_out, [dataset_path], "model_out")
    if report_out:
        check_not_input(report_out, [dataset_path, model_out], "report_out")
    tiles = open_tiles(dataset_path, second_sensor)
    result, metrics, extras = train_on_tiles(tiles, config, model_out, monitor=monitor)
    if report_out and metrics is not None:
        dataset_name = os.path.basename(os.path.normpath(dataset_path))
        metrics["inputs"] = {"data set": dataset_name, "test fold": config.test_fold, "settings": json.dumps(config.to_dict())}
        if second_sensor:
            metrics["inputs"]["second modality"] = second_sensor
        extras["kind"] = "held-out"
        extras["evaluated"] = f"the pixels of the tiles of test fold {config.test_fold}, which the network never trained on"
        json_out = os.path.splitext(report_out)[0] + ".json"
        write_report(metrics, tiles.classes, json_out, report_out, f"Segmentation network ({config.architecture}), test fold {config.test_fold}", extras)
    elif report_out:
        monitor.info("The test fold has no labelled pixels with data: no report written.")
    best = result.history[result.best_epoch - 1]
    return SegmentationResult(
        model=os.path.abspath(model_out),
        report=os.path.abspath(report_out) if report_out and metrics is not None else None,
        epochs=len(result.history),
        best_epoch=result.best_epoch,
        best_val_miou=best["val_miou"],
        test_overall_accuracy=metrics["overall_accuracy"] if metrics else None,
        test_miou=metrics["miou"] if metrics else None,
        seconds=result.seconds,
        device=result.device,
    )
