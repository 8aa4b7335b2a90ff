"""Train a LightGBM pixel classifier on time stacks + reference rasters and export it to ONNX.

The ONNX file is self-describing: its metadata holds the class table, the feature layout
(dates, bands, feature names), the training parameters and the test metrics, so the
classification step needs nothing else and can refuse a stack that does not fit the model.
Test metrics are computed with the exported ONNX model itself (what users will run).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import rasterio

from .. import __version__
from ..core.atomic import atomic_output, check_not_input
from ..core.classes import NODATA_CLASS, ClassTable, LandCoverClass, make_class_table
from ..core.deps import require
from ..core.errors import LandCoverError
from ..core.monitor import ensure_monitor
from ..io.rasters import Grid, read_class_raster, read_class_table, read_stack_info
from ..reference.sampling import allocate_quotas, sample_with_quotas
from ..timeseries.cloudcheck import check_cloud_masked, clear_pixels, cloud_provenance
from ..timeseries.features import describe_layout_difference, feature_bands, feature_block, feature_layout, iter_feature_windows, read_bands_window
from .spatial import DEFAULT_BLOCK_PX, DEFAULT_CV_FOLDS, block_ids, dumps_footprint, group_folds, training_footprint

MODEL_TYPE = "lightgbm-pixel"
SPLITS = ("pixel", "patch", "block")  # the order of Train classifier's SPLIT enum (ids kept stable for scripts)
MAX_ONNX_OPSET = 15  # highest default-domain opset onnxmltools 1.12–1.16 converts LightGBM to



def merge_class_tables(tables: list[ClassTable | None], present: set[int], monitor) -> ClassTable:
    """Union of the references' tables (first wins on a conflict); ids without a table get legend names."""
    merged: dict[int, LandCoverClass] = {}
    for table in tables:
        for c in table or ():
            known = merged.get(c.id)
            if known is None:
                merged[c.id] = c
            elif known.name != c.name:
                monitor.info(f"Class {c.id} is called '{known.name}' in one reference and '{c.name}' in another; using '{known.name}'.")
    missing = sorted(present - set(merged) - {NODATA_CLASS})
    if missing:
        merged.update({c.id: c for c in make_class_table({i: "" for i in missing})})
    return ClassTable(merged.values())


def _fix_batch_dimension(onx) -> None:
    """onnxmltools declares the label output with a fixed size 1; make every output's first axis dynamic."""
    for out in onx.graph.output:
        dims = out.type.tensor_type.shape.dim
        if len(dims) >= 1:
            dims[0].Clear()
            dims[0].dim_param = "N"


def _exact_thresholds(onx, model) -> int:
    """Make the ONNX trees split exactly where LightGBM's do on float32 features.

    LightGBM compares a feature (float32 widened to double) with a double threshold ``t``;
    onnxruntime compares it with ``float32(t)``, which rounds up about half the time and then sends
    features in ``(t, float32(t)]`` the other way. For float32 ``x``, ``x <= t`` holds exactly when
    ``x <= `` the largest float32 not above ``t``, so each threshold is replaced by that value. The
    ONNX nodes are matched to LightGBM's by walking both trees from the root (true branch = left
    child). Returns the number of thresholds changed; leaves the model as converted if the trees
    do not line up (an unknown converter layout).
    """
    booster = getattr(model, "booster_", model)
    node = next((n for n in onx.graph.node if n.op_type == "TreeEnsembleClassifier"), None)
    if node is None:
        return 0
    attrs = {a.name: a for a in node.attribute}
    if "nodes_values" not in attrs:
        return 0
    where = {(t, n): i for i, (t, n) in enumerate(zip(attrs["nodes_treeids"].ints, attrs["nodes_nodeids"].ints))}
    true_ids, false_ids = attrs["nodes_truenodeids"].ints, attrs["nodes_falsenodeids"].ints
    features, modes = attrs["nodes_featureids"].ints, attrs["nodes_modes"].strings
    values = np.asarray(attrs["nodes_values"].floats, dtype=np.float32)
    exact = values.copy()
    for tree, info in enumerate(booster.dump_model()["tree_info"]):
        todo = [(info["tree_structure"], 0)]
        while todo:
            split, node_id = todo.pop()
            if "split_index" not in split:
                continue
            i = where.get((tree, node_id))
            threshold = split.get("threshold")
            if (
                i is None
                or split.get("decision_type") != "<="
                or modes[i] != b"BRANCH_LEQ"
                or features[i] != split["split_feature"]
                or not isinstance(threshold, float)
                or np.float32(threshold) != values[i]
            ):
                return 0
            rounded = np.float32(threshold)
            if float(rounded) > threshold:
                rounded = np.nextafter(rounded, np.float32(-np.inf))
            exact[i] = rounded
            todo.append((split["left_child"], true_ids[i]))
            todo.append((split["right_child"], false_ids[i]))
    changed = int((exact != values).sum())
    del attrs["nodes_values"].floats[:]
    attrs["nodes_values"].floats.extend(exact.tolist())
    return changed


def fit_lightgbm(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_estimators: int = 300,
    num_leaves: int = 31,
    learning_rate: float = 0.1,
    seed: int = 42,
    monitor=None,
):
    """A deterministic ``lightgbm.LGBMClassifier`` fitted on (N, F) features and class ids."""
    lgb = require("lightgbm")
    monitor = ensure_monitor(monitor)

    def _progress(env) -> None:  # raising Cancelled here stops LightGBM's loop
        monitor.update((env.iteration + 1) / max(1, env.end_iteration))

    classifier = lgb.LGBMClassifier(
        n_estimators=n_estimators,
        num_leaves=num_leaves,
        learning_rate=learning_rate,
        random_state=seed,
        deterministic=True,
        force_col_wise=True,
        n_jobs=-1,
        verbose=-1,
    )
    classifier.fit(x, y, callbacks=[_progress])
    return classifier


def model_to_onnx(model, n_features: int, metadata: dict[str, str]):
    """ONNX ModelProto of a fitted LightGBM classifier: input "features" float [N, F], outputs
    "label" (int64 class ids) and "probabilities" (float [N, C], classes sorted by id), with ``metadata``."""
    onnxmltools = require("onnxmltools")
    onnx = require("onnx")
    data_types = require("onnxmltools.convert.common.data_types")
    opset = min(MAX_ONNX_OPSET, onnx.defs.onnx_opset_version())
    try:
        onx = onnxmltools.convert_lightgbm(
            model,
            name="lc-plugin pixel classifier",
            initial_types=[("features", data_types.FloatTensorType([None, n_features]))],
            zipmap=False,
            target_opset=opset,
        )
    except Exception as exc:  # converter failures are not user errors, but say what failed
        raise LandCoverError(f"Could not convert the LightGBM model to ONNX ({type(exc).__name__}: {exc}).") from exc
    _fix_batch_dimension(onx)
    _exact_thresholds(onx, model)
    onnx.helper.set_model_props(onx, metadata)
    onx.doc_string = "lc-plugin LightGBM pixel classifier; see metadata_props for classes and feature layout."
    return onx


def _onnx_session(model_bytes: bytes):
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])


def _validate_params(stack_paths, reference_paths, samples_per_class, test_fraction, split, n_estimators, num_leaves, learning_rate, block_px) -> None:
    if not stack_paths:
        raise LandCoverError("Give at least one time stack to train on.", "INPUT")
    if len(stack_paths) != len(reference_paths):
        raise LandCoverError(
            f"{len(stack_paths)} time stack(s) but {len(reference_paths)} reference raster(s); " "give one reference raster per stack, in the same order.",
            "REFERENCE",
        )
    if samples_per_class < 1:
        raise LandCoverError(f"Samples per class must be at least 1, got {samples_per_class}.", "SAMPLES_PER_CLASS")
    if not 0.0 <= test_fraction < 1.0:
        raise LandCoverError(f"The test fraction must be in [0, 1), got {test_fraction}.", "TEST_FRACTION")
    if split not in SPLITS:
        raise LandCoverError(f"The split must be one of {', '.join(SPLITS)}, got '{split}'.", "SPLIT")
    if block_px < 1:
        raise LandCoverError(f"The block size must be at least 1 pixel, got {block_px}.", "BLOCK_SIZE")
    if split == "patch":
        if len(stack_paths) < 2:
            raise LandCoverError(
                "A patch split holds whole patches out for testing and needs at least 2 stack/reference pairs; " "give more patches or use the pixel split.",
                "SPLIT",
            )
        if test_fraction <= 0:
            raise LandCoverError("A patch split needs a test fraction above 0.", "TEST_FRACTION")
    if n_estimators < 1:
        raise LandCoverError(f"The number of trees must be at least 1, got {n_estimators}.", "N_ESTIMATORS")
    if num_leaves < 2:
        raise LandCoverError(f"The number of leaves must be at least 2, got {num_leaves}.", "NUM_LEAVES")
    if not learning_rate > 0:
        raise LandCoverError(f"The learning rate must be above 0, got {learning_rate}.", "LEARNING_RATE")


def read_training_inputs(stack_paths, reference_paths):
    """Layouts, grids and class tables of every pair, checked against each other (no pixels read)."""
    infos = []
    for i, path in enumerate(stack_paths):
        try:
            infos.append(read_stack_info(path))
        except LandCoverError as exc:
            raise LandCoverError(str(exc), "INPUT") from exc
        except rasterio.errors.RasterioIOError as exc:
            raise LandCoverError(f"Could not open time stack {i + 1} ({path}): {exc}", "INPUT") from exc
    dates0, bands0 = infos[0][0], infos[0][1]
    for i, (dates, bands, _, _) in enumerate(infos[1:], start=2):
        problems = describe_layout_difference(dates0, bands0, dates, bands, expected_label="stack 1", actual_label=f"stack {i}", exact_bands=True)
        if problems:
            raise LandCoverError(
                f"All training stacks must share dates and bands, but {stack_paths[i - 1]} differs from {stack_paths[0]}: " + "; ".join(problems) + ".",
                "INPUT",
            )
    tables = []
    for i, (ref_path, info) in enumerate(zip(reference_paths, infos), start=1):
        try:
            with rasterio.open(ref_path) as src:
                grid, dtype = Grid(src.crs, src.transform, src.width, src.height), np.dtype(src.dtypes[0])
            tables.append(read_class_table(ref_path))
        except rasterio.errors.RasterioIOError as exc:
            raise LandCoverError(f"Could not open reference raster {i} ({ref_path}): {exc}", "REFERENCE") from exc
        diff = info[2].difference(grid)
        if diff:
            raise LandCoverError(
                f"Pair {i}: reference {ref_path} is not on the grid of stack {stack_paths[i - 1]} ({diff}). "
                "Rasterize the reference onto that stack with the Reference step.",
                "REFERENCE",
            )
        if dtype.kind not in "ui":
            raise LandCoverError(f"Reference {ref_path} must be an integer class raster with ids 0–255.", "REFERENCE")
    return dates0, bands0, [info[2] for info in infos], tables


def _patch_and_local(flat: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    patch = np.searchsorted(offsets, flat, side="right") - 1
    return patch, flat - offsets[patch]


def spatial_groups(flat: np.ndarray, offsets: np.ndarray, grids: list[Grid], block_px: int) -> np.ndarray:
    """The block (patch × ``block_px`` square) of every sampled pixel."""
    patch, local = _patch_and_local(flat, offsets)
    widths = np.array([g.width for g in grids])
    heights = np.array([g.height for g in grids])
    return block_ids(local, patch, widths, heights, block_px)


def block_split(sampled, labels, offsets, grids, block_px: int, test_fraction: float, seed: int, monitor) -> np.ndarray:
    """Which sampled pixels are held out: whole blocks, about ``test_fraction`` of them, balanced by class.

    Blocks holding the only samples of a class stay in training (the model must know every class);
    the test set then lacks that class and the report says so.
    """
    if test_fraction <= 0:
        return np.zeros(sampled.size, dtype=bool)
    groups = spatial_groups(sampled, offsets, grids, block_px)
    folds = max(2, int(round(1.0 / test_fraction)))
    fold, n_groups = group_folds(groups, labels, folds, seed)
    if n_groups < 2:
        raise LandCoverError(
            f"The sampled pixels fall in a single {block_px}×{block_px}-pixel block, so no block can be held out; "
            "use a smaller BLOCK_SIZE, more patches, or the patch split.",
            "BLOCK_SIZE",
        )
    in_test = fold == 0
    for class_id in np.unique(labels):
        of_class = labels == class_id
        if not (of_class & ~in_test).any():
            keep = np.isin(groups, groups[of_class])
            in_test &= ~keep
            monitor.info(f"Class {int(class_id)} has samples in held-out blocks only; its {int(np.unique(groups[of_class]).size)} block(s) stay in training.")
    return in_test


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


def read_reference_labels(path: str) -> np.ndarray:
    labels = read_class_raster(path)[0]
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise LandCoverError(f"Reference {path} must be an integer class raster with ids 0–255.", "REFERENCE")
    return labels.astype(np.uint8)


def train_classifier(
    stack_paths: list[str],
    reference_paths: list[str],
    model_out: str,
    *,
    samples_per_class: int = 5000,
    test_fraction: float = 0.25,
    split: str = "block",
    block_px: int = DEFAULT_BLOCK_PX,
    seed: int = 42,
    n_estimators: int = 300,
    num_leaves: int = 31,
    learning_rate: float = 0.1,
    drop_empty_classes: bool = False,
    predictions_out: str | None = None,
    cv_folds: int = DEFAULT_CV_FOLDS,
    mask_paths: list[str | None] | None = None,
    allow_unmasked: bool = False,
    monitor=None,
) -> dict:
    """Sample class-balanced pixels, fit LightGBM, check it on held-out blocks/patches/pixels, write the ONNX model.

    The default split holds out whole ``block_px`` × ``block_px`` blocks (see ``spatial``), so test
    pixels are not neighbours of training pixels. With ``cv_folds`` ≥ 2 (default 5), also a k-fold
    cross-validation by spatial group (see ``cross_validate``) where there are enough groups,
    stored in the model's ``lc_cv`` metadata. Stacks must be cloud-masked (``cloudcheck``): their
    ``mask_paths`` (one per stack, or None) leave out cloudy pixels; ``allow_unmasked`` accepts
    stacks without either and records it.
    """
    monitor = ensure_monitor(monitor)
    stack_paths, reference_paths = list(stack_paths), list(reference_paths)
    _validate_params(stack_paths, reference_paths, samples_per_class, test_fraction, split, n_estimators, num_leaves, learning_rate, block_px)
    mask_paths = list(mask_paths) if mask_paths else [None] * len(stack_paths)
    if len(mask_paths) != len(stack_paths):
        raise LandCoverError(f"{len(mask_paths)} cloud mask(s) for {len(stack_paths)} stack(s); give one per stack, in the same order.", "CLOUD_MASK")
    if cv_folds == 1 or cv_folds < 0:
        raise LandCoverError(f"Cross-validation needs at least 2 folds (0 = none), got {cv_folds}.", "CV_FOLDS")
    lgb = require("lightgbm")
    require("onnxmltools")
    onnx = require("onnx")
    require("onnxruntime")
    inputs = stack_paths + reference_paths
    check_not_input(model_out, inputs, "OUTPUT_MODEL")
    if predictions_out:
        check_not_input(predictions_out, inputs, "OUTPUT_PREDICTIONS")
        if os.path.realpath(predictions_out) == os.path.realpath(model_out):
            raise LandCoverError("The test predictions and the model need different file names.", "OUTPUT_PREDICTIONS")

    dates, bands, grids, tables = read_training_inputs(stack_paths, reference_paths)
    n_unmasked = check_cloud_masked(stack_paths, mask_paths, allow_unmasked)
    fbands = feature_bands(bands)
    if not fbands:
        raise LandCoverError(f"The stacks have no reflectance bands to learn from (bands: {', '.join(bands)}).", "INPUT")
    feature_names = feature_layout(dates, fbands)
    n_features = len(feature_names)
    n_patches = len(stack_paths)

    # Pass 1, one patch at a time: which labelled pixels have every feature finite (kept as bits),
    # and how many of each class, so the sample can be spread over patches without holding them.
    scan = monitor.sub(0.0, 0.35)
    usable_bits, counts, present = [], np.zeros((n_patches, 256), dtype=np.int64), set()
    total_pixels = sum(g.height * g.width for g in grids)
    done_pixels = 0
    for p, (path, grid, ref_path) in enumerate(zip(stack_paths, grids, reference_paths)):
        lab = read_reference_labels(ref_path)
        if mask_paths[p]:
            lab = np.where(clear_pixels(mask_paths[p], dates, grid), lab, NODATA_CLASS)
        present.update(int(v) for v in np.unique(lab))
        mask = np.zeros(lab.shape, dtype=bool)
        with rasterio.open(path) as src:
            for win in iter_feature_windows(grid.height, grid.width, n_features):
                rs, cs = win.toslices()
                labelled = lab[rs, cs] != NODATA_CLASS
                if labelled.any():
                    feats = feature_block(read_bands_window(src, len(dates), bands, fbands, win), fbands)
                    mask[rs, cs] = np.isfinite(feats).all(axis=1).reshape(win.height, win.width) & labelled
                done_pixels += win.height * win.width
                scan.update(done_pixels / total_pixels)
        counts[p] = np.bincount(lab[mask], minlength=256)
        usable_bits.append(np.packbits(mask))
    table = merge_class_tables(tables, present, monitor)

    # Patch split: whole patches held out (chosen with the seed).
    rng = np.random.default_rng(seed)
    if split == "patch":
        n_test_patches = min(n_patches - 1, math.ceil(test_fraction * n_patches))
        test_patches = set(int(i) for i in rng.choice(n_patches, size=n_test_patches, replace=False))
    else:
        test_patches = set()
    train_patches = [i for i in range(n_patches) if i not in test_patches]

    # Classes without usable (training) pixels: error, or drop them when asked.
    train_counts_all = counts[train_patches].sum(axis=0)
    empty = [c for c in table if train_counts_all[c.id] == 0]
    if empty:
        where = "in the training patches" if split == "patch" else "in any reference raster"
        listing = ", ".join(f"{c.id} '{c.name}'" for c in empty)
        if not drop_empty_classes:
            raise LandCoverError(
                f"Class(es) {listing} have no usable pixels {where} (no labelled pixel with valid data in every date). "
                "Remove them from the reference class table or enable DROP_EMPTY_CLASSES to drop them.",
                "REFERENCE",
            )
        monitor.info(f"Dropping class(es) without usable pixels {where}: {listing}.")
        table = table.subset(c.id for c in table if train_counts_all[c.id] > 0)
    if len(table) < 2:
        found = ", ".join(f"{c.id} '{c.name}'" for c in table) or "none"
        raise LandCoverError(
            f"Training needs at least 2 classes with usable pixels; found {found}. "
            "Check that the reference covers the stacks and that the stacks have valid data.",
            "REFERENCE",
        )

    # Stratified sampling with per-patch quotas (flat index = patch offset + row * width + col).
    ids = np.array(table.ids, dtype=np.int64)
    offsets = np.cumsum([0] + [g.height * g.width for g in grids])
    is_test = np.isin(np.arange(n_patches), sorted(test_patches))
    quotas = np.zeros((n_patches, ids.size), dtype=np.int64)
    quotas[~is_test] = allocate_quotas(counts[~is_test][:, ids], samples_per_class)
    if split == "patch":
        test_cap = max(1, round(samples_per_class * test_fraction / (1.0 - test_fraction)))
        quotas[is_test] = allocate_quotas(counts[is_test][:, ids], test_cap)
    drawn, drawn_labels = [], []
    for p, ref_path in enumerate(reference_paths):
        if not quotas[p].any():
            continue
        lab = read_reference_labels(ref_path)
        usable = np.unpackbits(usable_bits[p], count=lab.size).astype(bool).reshape(lab.shape)
        local = sample_with_quotas(lab, usable, quotas[p], ids, rng)
        drawn.append(local + offsets[p])
        drawn_labels.append(lab.ravel()[local])
    del usable_bits
    sampled = np.concatenate(drawn)
    sampled_labels = np.concatenate(drawn_labels).astype(np.int64)
    if split == "patch":
        in_test = is_test[np.searchsorted(offsets, sampled, side="right") - 1]
        train_idx, y_train_all = sampled[~in_test], sampled_labels[~in_test]
        test_idx, y_test_all = sampled[in_test], sampled_labels[in_test]
    elif split == "block":
        in_test = block_split(sampled, sampled_labels, offsets, grids, block_px, test_fraction, seed, monitor)
        train_idx, y_train_all = sampled[~in_test], sampled_labels[~in_test]
        test_idx, y_test_all = sampled[in_test], sampled_labels[in_test]
    else:
        train_parts, test_parts = [], []
        for class_id in table.ids:
            members = rng.permutation(sampled[sampled_labels == class_id])
            n_test = min(int(round(len(members) * test_fraction)), len(members) - 1)
            test_parts.append(members[:n_test])
            train_parts.append(members[n_test:])
        train_idx = np.sort(np.concatenate(train_parts))
        test_idx = np.sort(np.concatenate(test_parts))
        y_train_all = sampled_labels[np.searchsorted(sampled, train_idx)]  # sampled is sorted: patches in order
        y_test_all = sampled_labels[np.searchsorted(sampled, test_idx)]

    # Pass 2: features of the sampled pixels only.
    extract = monitor.sub(0.35, 0.5)
    wanted = np.sort(np.concatenate([train_idx, test_idx]))
    features = np.empty((wanted.size, n_features), dtype=np.float32)
    pos = 0
    for p, (path, grid) in enumerate(zip(stack_paths, grids)):
        lo, hi = np.searchsorted(wanted, [offsets[p], offsets[p + 1]])
        local = wanted[lo:hi] - offsets[p]
        rows, cols = local // grid.width, local % grid.width
        with rasterio.open(path) as src:
            for win in iter_feature_windows(grid.height, grid.width, n_features):
                a, b = np.searchsorted(rows, [win.row_off, win.row_off + win.height])
                inside = np.flatnonzero((cols[a:b] >= win.col_off) & (cols[a:b] < win.col_off + win.width)) + a
                if inside.size == 0:
                    continue
                block = read_bands_window(src, len(dates), bands, fbands, win)
                pixels = block[:, :, rows[inside] - win.row_off, cols[inside] - win.col_off]  # (T, B, k)
                features[pos + inside] = feature_block(pixels[:, :, np.newaxis, :], fbands)
        pos += hi - lo
        extract.update((p + 1) / n_patches)
    x_train, y_train = features[np.searchsorted(wanted, train_idx)], y_train_all
    x_test, y_test = features[np.searchsorted(wanted, test_idx)], y_test_all
    del features

    # Fit.
    params = {
        "samples_per_class": int(samples_per_class),
        "test_fraction": float(test_fraction),
        "split": split,
        "block_px": int(block_px),
        "seed": int(seed),
        "n_estimators": int(n_estimators),
        "num_leaves": int(num_leaves),
        "learning_rate": float(learning_rate),
        "drop_empty_classes": bool(drop_empty_classes),
        "n_patches": n_patches,
        "test_patches": sorted(test_patches),
        "cloud_masking": [cloud_state(path, mask) for path, mask in zip(stack_paths, mask_paths)],
        "unmasked_accepted": int(n_unmasked),
        "references": [reference_provenance(path) for path in reference_paths],
        "lightgbm_version": lgb.__version__,
    }
    monitor.info(f"Training LightGBM on {len(y_train)} pixels × {n_features} features, {len(table)} classes.")
    classifier = fit_lightgbm(
        x_train,
        y_train,
        n_estimators=n_estimators,
        num_leaves=num_leaves,
        learning_rate=learning_rate,
        seed=seed,
        monitor=monitor.sub(0.5, 0.9),
    )
    model_ids = [int(c) for c in classifier.classes_]
    if model_ids != table.ids:  # cannot happen: every kept class has training pixels
        raise LandCoverError(f"Internal error: model classes {model_ids} differ from the class table {table.ids}.")

    # Export, then evaluate the exported model itself on the test pixels.
    export = monitor.sub(0.9, 1.0)
    metadata = {
        "lc_model_type": MODEL_TYPE,
        "lc_plugin_version": __version__,
        "lc_classes": table.to_json(),
        "lc_feature_names": json.dumps(feature_names),
        "lc_dates": json.dumps([d.isoformat() for d in dates]),
        "lc_bands": json.dumps(fbands),
        "lc_params": json.dumps(params),
    }
    onx = model_to_onnx(classifier, n_features, metadata)
    session = _onnx_session(onx.SerializeToString())
    if len(y_test):
        pred, proba = session.run(None, {"features": x_test})
        pred = np.asarray(pred, dtype=np.int64).ravel()
        accuracy = float(np.mean(pred == y_test))
    else:
        pred, proba, accuracy = np.empty(0, np.int64), np.empty((0, len(table)), np.float32), None
    test_counts = {str(c): int(np.sum(y_test == c)) for c in table.ids}
    train_counts = {str(c): int(np.sum(y_train == c)) for c in table.ids}
    metrics = {
        "overall_accuracy": accuracy,
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
        "train_class_counts": train_counts,
        "test_class_counts": test_counts,
    }
    booster = classifier.booster_
    importance = {kind: [float(v) for v in booster.feature_importance(importance_type=kind)] for kind in ("gain", "split")}
    metadata["lc_feature_importance"] = json.dumps(importance)
    train_patch, train_local = _patch_and_local(train_idx, offsets)
    metadata["lc_training_footprint"] = dumps_footprint(training_footprint(grids, train_patch, train_local, block_px))
    cv = None
    if cv_folds:
        # Groups: whole patches when there are enough, else square blocks so neighbours stay together.
        all_idx = np.concatenate([train_idx, test_idx])
        if n_patches >= cv_folds:
            groups, group_kind = _patch_and_local(all_idx, offsets)[0], "patch"
        else:
            groups, group_kind = spatial_groups(all_idx, offsets, grids, block_px), f"block of {block_px}×{block_px} px"
        n_groups = np.unique(groups).size
        if n_groups < cv_folds:
            cv = {"skipped": f"{cv_folds}-fold cross-validation needs at least {cv_folds} spatial groups ({group_kind}); the samples fall in {n_groups}."}
            monitor.info(cv["skipped"])
        else:
            cv = cross_validate(
                np.concatenate([x_train, x_test]),
                np.concatenate([y_train, y_test]),
                groups,
                cv_folds,
                dict(n_estimators=n_estimators, num_leaves=num_leaves, learning_rate=learning_rate, seed=seed),
                seed,
                monitor=export.sub(0.0, 0.9),
            )
            cv["group"] = group_kind
        metadata["lc_cv"] = json.dumps(cv)
    onnx.helper.set_model_props(onx, {**metadata, "lc_test_metrics": json.dumps(metrics)})
    if predictions_out:
        test_patch = np.searchsorted(offsets, test_idx, side="right") - 1
        local = test_idx - offsets[test_patch]
        widths = np.array([g.width for g in grids])[test_patch]
        columns = np.column_stack([test_patch, local // widths, local % widths, y_test, pred]).astype(np.float64)
        csv_rows = np.column_stack([columns, np.asarray(proba, dtype=np.float64)])
    export.update(1.0)  # last cancel check: nothing is written before it, everything after it
    with atomic_output(model_out) as tmp:
        onnx.save(onx, tmp)
    if predictions_out:
        header = ",".join(["source", "row", "col", "y_true", "y_pred"] + [f"p_{c}" for c in table.ids])
        with atomic_output(predictions_out) as tmp:
            np.savetxt(tmp, csv_rows, delimiter=",", header=header, comments="", fmt=["%d"] * 5 + ["%.6f"] * len(table))
    monitor.info(f"Test overall accuracy: {'n/a' if accuracy is None else f'{accuracy:.4f}'} " f"({len(y_test)} test pixels, {len(y_train)} training pixels).")
    return {
        "model": os.path.abspath(model_out),
        "classes": [{"id": c.id, "name": c.name, "color": c.color} for c in table],
        "dropped_classes": [{"id": c.id, "name": c.name} for c in empty] if empty else [],
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
        "test_overall_accuracy": accuracy,
        "n_features": n_features,
        "predictions": os.path.abspath(predictions_out) if predictions_out else None,
        "cv": cv,
    }


def cross_validate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int, fit_params: dict, seed: int, monitor=None) -> dict:
    """Stratified group k-fold: groups (patches or blocks) never straddle folds, so neighbours do not leak.

    Groups are ordered by their majority class (random within a class) and dealt round-robin,
    which balances the classes across folds. Returns per-fold and mean ± std OA and weighted F1.
    """
    from ..validation.metrics import accuracy_metrics, confusion_matrix

    monitor = ensure_monitor(monitor)
    labels = sorted(int(v) for v in np.unique(y))
    fold, n_groups = group_folds(groups, y, folds, seed)
    if n_groups < folds:
        raise LandCoverError(
            f"Cross-validation with {folds} folds needs at least {folds} spatial groups; the samples fall in {n_groups}. " "Use fewer folds or more patches.",
            "CV_FOLDS",
        )
    results = []
    for k in range(folds):
        test = fold == k
        train = ~test
        if np.unique(y[train]).size < 2 or not test.any():
            continue
        model = fit_lightgbm(x[train], y[train], monitor=monitor.sub(k / folds, (k + 1) / folds), **fit_params)
        pred = model.predict(x[test])
        m = accuracy_metrics(confusion_matrix(y[test], pred, labels), labels)
        results.append(
            {
                "fold": k + 1,
                "n_train": int(train.sum()),
                "n_test": int(test.sum()),
                "overall_accuracy": m["overall_accuracy"],
                "weighted_f1": m["weighted_f1"],
                "kappa": m["kappa"],
            }
        )
    if not results:
        raise LandCoverError("No cross-validation fold had two classes to train on; use fewer folds.", "CV_FOLDS")
    oa = np.array([r["overall_accuracy"] for r in results])
    f1 = np.array([r["weighted_f1"] for r in results])
    return {
        "folds": results,
        "k": int(folds),
        "n_groups": int(n_groups),
        "overall_accuracy_mean": float(oa.mean()),
        "overall_accuracy_std": float(oa.std()),
        "weighted_f1_mean": float(f1.mean()),
        "weighted_f1_std": float(f1.std()),
    }
