"""Train a LightGBM pixel classifier on time stacks + reference rasters and export it to ONNX.

The ONNX file is self-describing: its metadata holds the class table, the feature layout
(dates, bands, feature names), the training parameters and the test metrics, so the
classification step needs nothing else and can refuse a stack that does not fit the model.
Test metrics are computed with the exported ONNX model itself (what users will run).

``train_classifier`` runs named phases, each a function here: check the arguments, read the
inputs, scan the usable pixels, choose the classes, sample, split, extract features, fit, evaluate
and export (``boosting`` holds the LightGBM/ONNX pieces, ``spatial`` the blocks).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio

from .. import __version__
from ..core.atomic import atomic_output, check_not_input
from ..core.classes import ClassTable, merge_class_tables
from ..core.deps import require
from ..core.errors import DataError, InputError, LandCoverError
from ..core.monitor import Monitor, ensure_monitor
from ..io.rasters import read_stack_info
from ..reference.training_inputs import check_pairs, read_training_inputs
from ..timeseries.cloudcheck import check_cloud_masked, cloud_provenance
from ..timeseries.features import feature_bands
from .boosting import cross_validate, fit_lightgbm, model_to_onnx, onnx_session
from .samples import PatchSet, SampleSplit, draw_sample, extract_features, held_out_patches, prediction_rows, scan_usable, split_sample
from .spatial import DEFAULT_BLOCK_PX, DEFAULT_CV_FOLDS, dumps_footprint, patch_and_local, spatial_groups, training_footprint

MODEL_TYPE = "lightgbm-pixel"
SPLITS = ("pixel", "patch", "block")  # the order of Train classifier's SPLIT enum (ids kept stable for scripts)


@dataclass(frozen=True)
class ClassifierConfig:
    """How a pixel classifier is trained; every field is recorded in the model's ``lc_params``.

    The default split holds out whole ``block_px`` × ``block_px`` blocks (see ``spatial``), so test
    pixels are not neighbours of training pixels. ``cv_folds`` ≥ 2 adds a k-fold cross-validation by
    spatial group (0 = none). ``allow_unmasked`` accepts stacks never cloud-masked (and records it).
    """

    samples_per_class: int = 5000
    test_fraction: float = 0.25
    split: str = "block"
    block_px: int = DEFAULT_BLOCK_PX
    seed: int = 42
    n_estimators: int = 300
    num_leaves: int = 31
    learning_rate: float = 0.1
    drop_empty_classes: bool = False
    cv_folds: int = DEFAULT_CV_FOLDS
    allow_unmasked: bool = False

    def check(self, n_pairs: int) -> None:
        """Refuse settings that cannot train, before anything is read (errors name the field)."""
        if self.samples_per_class < 1:
            raise InputError(f"Samples per class must be at least 1, got {self.samples_per_class}.", argument="samples_per_class")
        if not 0.0 <= self.test_fraction < 1.0:
            raise InputError(f"The test fraction must be in [0, 1), got {self.test_fraction}.", argument="test_fraction")
        if self.split not in SPLITS:
            raise InputError(f"The split must be one of {', '.join(SPLITS)}, got '{self.split}'.", argument="split")
        if self.block_px < 1:
            raise InputError(f"The block size must be at least 1 pixel, got {self.block_px}.", argument="block_px")
        if self.split == "patch":
            if n_pairs < 2:
                raise InputError(
                    "A patch split holds whole patches out for testing and needs at least 2 stack/reference pairs; give more patches or use the pixel split.",
                    argument="split",
                )
            if self.test_fraction <= 0:
                raise InputError("A patch split needs a test fraction above 0.", argument="test_fraction")
        if self.n_estimators < 1:
            raise InputError(f"The number of trees must be at least 1, got {self.n_estimators}.", argument="n_estimators")
        if self.num_leaves < 2:
            raise InputError(f"The number of leaves must be at least 2, got {self.num_leaves}.", argument="num_leaves")
        if not self.learning_rate > 0:
            raise InputError(f"The learning rate must be above 0, got {self.learning_rate}.", argument="learning_rate")
        if self.cv_folds == 1 or self.cv_folds < 0:
            raise InputError(f"Cross-validation needs at least 2 folds (0 = none), got {self.cv_folds}.", argument="cv_folds")

    def fit_params(self) -> dict[str, Any]:
        """The arguments of ``fit_lightgbm`` (the same for the model and every cross-validation fold)."""
        return dict(n_estimators=self.n_estimators, num_leaves=self.num_leaves, learning_rate=self.learning_rate, seed=self.seed)


@dataclass(frozen=True)
class TrainResult:
    """What ``train_classifier`` wrote and measured (the model's metadata holds the same and more)."""

    model: str
    classes: ClassTable
    dropped_classes: ClassTable
    n_train: int
    n_test: int
    test_overall_accuracy: float | None
    n_features: int
    predictions: str | None
    cv: dict | None


def train_classifier(
    stack_paths: list[str],
    reference_paths: list[str],
    model_out: str,
    config: ClassifierConfig | None = None,
    *,
    mask_paths: list[str | None] | None = None,
    predictions_out: str | None = None,
    monitor: Monitor | None = None,
    **settings: Any,
) -> TrainResult:
    """Sample class-balanced pixels, fit LightGBM, check it on held-out blocks/patches/pixels, write the ONNX model.

    ``config`` says how (``ClassifierConfig``); ``settings`` overrides its fields by name
    (``train_classifier(s, r, m, seed=1)``). Stacks must be cloud-masked (``cloudcheck``): their
    ``mask_paths`` (one per stack, or None) leave out cloudy pixels. ``predictions_out`` gets the
    test pixels' labels, predictions and probabilities as CSV. Nothing is written unless it all succeeds.
    """
    config = dataclasses.replace(config or ClassifierConfig(), **settings)
    monitor = ensure_monitor(monitor)
    masks = _check_arguments(list(stack_paths), list(reference_paths), model_out, config, mask_paths, predictions_out)
    lgb = require("lightgbm")
    for package in ("onnxmltools", "onnx", "onnxruntime"):
        require(package)
    patches = _read_inputs(list(stack_paths), list(reference_paths), masks, config.allow_unmasked)
    scan = scan_usable(patches, monitor.sub(0.0, 0.35))
    table = _merged_table(patches.tables, scan.present, monitor)
    rng = np.random.default_rng(config.seed)
    test_patches = held_out_patches(len(patches.stacks), config, rng)
    table, empty = _trainable_classes(table, scan.counts, test_patches, config, monitor)
    sampled, sampled_labels = draw_sample(patches, scan, table, test_patches, config, rng)
    split = split_sample(patches, sampled, sampled_labels, table, test_patches, config, rng, monitor)
    x_train, x_test = extract_features(patches, split, monitor.sub(0.35, 0.5))
    monitor.info(f"Training LightGBM on {len(split.y_train)} pixels × {patches.n_features} features, {len(table)} classes.")
    classifier = fit_lightgbm(x_train, split.y_train, monitor=monitor.sub(0.5, 0.9), **config.fit_params())
    model_ids = [int(c) for c in classifier.classes_]
    if model_ids != table.ids:  # cannot happen: every kept class has training pixels
        raise LandCoverError(f"Internal error: model classes {model_ids} differ from the class table {table.ids}.")
    params = _training_params(patches, split, config, lgb.__version__)
    export = monitor.sub(0.9, 1.0)
    onx, pred, proba, metrics, cv = _export(patches, split, table, classifier, params, (x_train, x_test), config, export)
    rows = prediction_rows(patches, split, pred, proba) if predictions_out else None
    export.update(1.0)  # last cancel check: nothing is written before it, everything after it
    _write(onx, model_out, predictions_out, rows, table)
    accuracy = metrics["overall_accuracy"]
    shown = "n/a" if accuracy is None else f"{accuracy:.4f}"
    monitor.info(f"Test overall accuracy: {shown} ({metrics['n_test']} test pixels, {metrics['n_train']} training pixels).")
    return TrainResult(
        model=os.path.abspath(model_out),
        classes=table,
        dropped_classes=ClassTable(empty),
        n_train=metrics["n_train"],
        n_test=metrics["n_test"],
        test_overall_accuracy=accuracy,
        n_features=patches.n_features,
        predictions=os.path.abspath(predictions_out) if predictions_out else None,
        cv=cv,
    )


# --- phases ------------------------------------------------------------------------------------------


def _check_arguments(
    stack_paths: list[str],
    reference_paths: list[str],
    model_out: str,
    config: ClassifierConfig,
    mask_paths: list[str | None] | None,
    predictions_out: str | None,
) -> list[str | None]:
    """Refuse bad arguments before anything is read; returns one cloud mask (or None) per stack."""
    check_pairs(stack_paths, reference_paths, "train on")
    config.check(len(stack_paths))
    masks = list(mask_paths) if mask_paths else [None] * len(stack_paths)
    if len(masks) != len(stack_paths):
        raise InputError(f"{len(masks)} cloud mask(s) for {len(stack_paths)} stack(s); give one per stack, in the same order.", argument="mask_paths")
    inputs = stack_paths + reference_paths
    check_not_input(model_out, inputs, "model_out")
    if predictions_out:
        check_not_input(predictions_out, inputs, "predictions_out")
        if os.path.realpath(predictions_out) == os.path.realpath(model_out):
            raise InputError("The test predictions and the model need different file names.", argument="predictions_out")
    return masks


def _read_inputs(stack_paths: list[str], reference_paths: list[str], masks: list[str | None], allow_unmasked: bool) -> PatchSet:
    """The pairs' layouts, grids and tables, checked; the stacks checked to be cloud-masked (or accepted unmasked)."""
    inputs = read_training_inputs(stack_paths, reference_paths)
    n_unmasked = check_cloud_masked(stack_paths, masks, allow_unmasked, "stack_paths")
    fbands = feature_bands(inputs.bands)
    if not fbands:
        raise InputError(f"The stacks have no reflectance bands to learn from (bands: {', '.join(inputs.bands)}).", argument="stack_paths")
    return PatchSet(stack_paths, reference_paths, masks, inputs.dates, inputs.bands, fbands, inputs.grids, inputs.tables, n_unmasked)


def _merged_table(tables: list[ClassTable | None], present: set[int], monitor: Monitor) -> ClassTable:
    """One class table for all references (``merge_class_tables``' rule), a conflict of names logged."""
    table, conflicts = merge_class_tables(tables, present)
    for c in conflicts:
        monitor.info(f"Class {c.class_id} is called '{c.kept}' in one reference and '{c.other}' in another; using '{c.kept}'.")
    return table


def _trainable_classes(
    table: ClassTable, counts: np.ndarray, test_patches: list[int], config: ClassifierConfig, monitor: Monitor
) -> tuple[ClassTable, list]:
    """Classes without usable training pixels are an error, or dropped when asked; at least 2 must remain.
    Returns the table kept and the classes dropped."""
    train_patches = [i for i in range(counts.shape[0]) if i not in test_patches]
    train_counts = counts[train_patches].sum(axis=0)
    empty = [c for c in table if train_counts[c.id] == 0]
    if empty:
        where = "in the training patches" if config.split == "patch" else "in any reference raster"
        listing = ", ".join(f"{c.id} '{c.name}'" for c in empty)
        if not config.drop_empty_classes:
            raise DataError(
                f"Class(es) {listing} have no usable pixels {where} (no labelled pixel with valid data in every date). "
                "Remove them from the reference class table, or choose to drop classes without samples.",
                argument="reference_paths",
            )
        monitor.info(f"Dropping class(es) without usable pixels {where}: {listing}.")
        table = table.subset(c.id for c in table if train_counts[c.id] > 0)
    if len(table) < 2:
        found = ", ".join(f"{c.id} '{c.name}'" for c in table) or "none"
        raise DataError(
            f"Training needs at least 2 classes with usable pixels; found {found}. "
            "Check that the reference covers the stacks and that the stacks have valid data.",
            argument="reference_paths",
        )
    return table, empty


def _training_params(patches: PatchSet, split: SampleSplit, config: ClassifierConfig, lightgbm_version: str) -> dict:
    """The model's ``lc_params``: the settings, the held-out patches, how clouds were handled, the references."""
    return {
        "samples_per_class": int(config.samples_per_class),
        "test_fraction": float(config.test_fraction),
        "split": config.split,
        "block_px": int(config.block_px),
        "seed": int(config.seed),
        "n_estimators": int(config.n_estimators),
        "num_leaves": int(config.num_leaves),
        "learning_rate": float(config.learning_rate),
        "drop_empty_classes": bool(config.drop_empty_classes),
        "n_patches": len(patches.stacks),
        "test_patches": list(split.test_patches),
        "cloud_masking": [cloud_state(path, mask) for path, mask in zip(patches.stacks, patches.masks)],
        "unmasked_accepted": int(patches.n_unmasked),
        "references": [reference_provenance(path) for path in patches.references],
        "lightgbm_version": lightgbm_version,
    }


def _cross_validation(patches: PatchSet, split: SampleSplit, x: np.ndarray, y: np.ndarray, config: ClassifierConfig, monitor: Monitor) -> dict:
    """k-fold cross-validation grouped by whole patches when there are enough, else by square blocks so neighbours stay together."""
    offsets, folds = patches.offsets, config.cv_folds
    all_idx = np.concatenate([split.train_idx, split.test_idx])
    if len(patches.stacks) >= folds:
        groups, group_kind = patch_and_local(all_idx, offsets)[0], "patch"
    else:
        groups, group_kind = spatial_groups(all_idx, offsets, patches.grids, config.block_px), f"block of {config.block_px}×{config.block_px} px"
    n_groups = np.unique(groups).size
    if n_groups < folds:
        cv = {"skipped": f"{folds}-fold cross-validation needs at least {folds} spatial groups ({group_kind}); the samples fall in {n_groups}."}
        monitor.info(cv["skipped"])
        return cv
    cv = cross_validate(x, y, groups, folds, config.fit_params(), config.seed, monitor=monitor)
    cv["group"] = group_kind
    return cv


def _model_metadata(patches: PatchSet, table: ClassTable, params: dict) -> dict[str, str]:
    """What the classification step needs to use the model and refuse a stack that does not fit it."""
    return {
        "lc_model_type": MODEL_TYPE,
        "lc_plugin_version": __version__,
        "lc_classes": table.to_json(),
        "lc_feature_names": json.dumps(patches.feature_names),
        "lc_dates": json.dumps([d.isoformat() for d in patches.dates]),
        "lc_bands": json.dumps(patches.fbands),
        "lc_params": json.dumps(params),
    }


def _test_metrics(onx: Any, x_test: np.ndarray, split: SampleSplit, table: ClassTable) -> tuple[np.ndarray, Any, dict]:
    """Predictions and probabilities of the exported model itself (what users run) on the test pixels, and the metrics."""
    y_train, y_test = split.y_train, split.y_test
    if len(y_test):
        pred, proba = onnx_session(onx.SerializeToString()).run(None, {"features": x_test})
        pred = np.asarray(pred, dtype=np.int64).ravel()
        accuracy: float | None = float(np.mean(pred == y_test))
    else:
        pred, proba, accuracy = np.empty(0, np.int64), np.empty((0, len(table)), np.float32), None
    metrics = {
        "overall_accuracy": accuracy,
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
        "train_class_counts": {str(c): int(np.sum(y_train == c)) for c in table.ids},
        "test_class_counts": {str(c): int(np.sum(y_test == c)) for c in table.ids},
    }
    return pred, proba, metrics


def _export(
    patches: PatchSet,
    split: SampleSplit,
    table: ClassTable,
    classifier: Any,
    params: dict,
    x: tuple[np.ndarray, np.ndarray],
    config: ClassifierConfig,
    monitor: Monitor,
) -> tuple[Any, np.ndarray, Any, dict, dict | None]:
    """The ONNX model with its full metadata (classes, layout, params, importance, footprint, test metrics,
    cross-validation); returns it with the test predictions, probabilities, metrics and cross-validation."""
    onnx = require("onnx")
    x_train, x_test = x
    metadata = _model_metadata(patches, table, params)
    onx = model_to_onnx(classifier, patches.n_features, metadata)
    pred, proba, metrics = _test_metrics(onx, x_test, split, table)
    booster = classifier.booster_
    importance = {kind: [float(v) for v in booster.feature_importance(importance_type=kind)] for kind in ("gain", "split")}
    metadata["lc_feature_importance"] = json.dumps(importance)
    train_patch, train_local = patch_and_local(split.train_idx, patches.offsets)
    metadata["lc_training_footprint"] = dumps_footprint(training_footprint(patches.grids, train_patch, train_local, config.block_px))
    cv = None
    if config.cv_folds:
        xy = np.concatenate([x_train, x_test]), np.concatenate([split.y_train, split.y_test])
        cv = _cross_validation(patches, split, *xy, config, monitor.sub(0.0, 0.9))
        metadata["lc_cv"] = json.dumps(cv)
    onnx.helper.set_model_props(onx, {**metadata, "lc_test_metrics": json.dumps(metrics)})
    return onx, pred, proba, metrics, cv


def _write(onx: Any, model_out: str, predictions_out: str | None, rows: np.ndarray | None, table: ClassTable) -> None:
    """Write the model and (when asked) the test predictions CSV, each atomically."""
    with atomic_output(model_out) as tmp:
        require("onnx").save(onx, tmp)
    if predictions_out and rows is not None:
        header = ",".join(["source", "row", "col", "y_true", "y_pred"] + [f"p_{c}" for c in table.ids])
        with atomic_output(predictions_out) as tmp:
            np.savetxt(tmp, rows, delimiter=",", header=header, comments="", fmt=["%d"] * 5 + ["%.6f"] * len(table))


# --- provenance for the model's metadata and the report ------------------------------------------


def cloud_state(stack_path: str, mask_path: str | None) -> str:
    """How a training stack's clouds were dealt with, for the model's metadata and the report."""
    if mask_path:
        return f"cloudy pixels of {os.path.basename(mask_path)} left out"
    return cloud_provenance(read_stack_info(stack_path)[3]) or "never cloud-masked (accepted with ALLOW_UNMASKED)"


def reference_provenance(path: str) -> dict:
    """What the report's methods paragraph says about a reference raster (no paths, only names and settings)."""
    with rasterio.open(path) as src:
        tags = src.tags()
    keep = ("SOURCE", "CLASS_FIELD", "CLASS_IDS", "CLASS_NAMES_FROM", "EROSION_PX")
    return {"file": os.path.basename(path), **{k.lower(): tags[k] for k in keep if k in tags}}
