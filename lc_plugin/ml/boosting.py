"""LightGBM on pixel features: a deterministic fit, its export to ONNX, and spatial cross-validation.

The ONNX model is what users run (``lc_plugin.ml.classify``), so the export makes the ONNX trees
split exactly where LightGBM's do (``_exact_thresholds``) and the test metrics are computed with the
exported model itself (``onnx_session``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.deps import require
from ..core.errors import DataError, LandCoverError
from ..core.monitor import Monitor, ensure_monitor
from .spatial import group_folds

MAX_ONNX_OPSET = 15  # highest default-domain opset onnxmltools 1.12–1.16 converts LightGBM to


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
    monitor: Monitor | None = None,
) -> Any:
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


def model_to_onnx(model: Any, n_features: int, metadata: dict[str, str]) -> Any:
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


def onnx_session(model_bytes: bytes) -> Any:
    """An onnxruntime session on the CPU, quiet (warnings only), for the test metrics of a just-exported model."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])


def cross_validate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int, fit_params: dict, seed: int, monitor: Monitor | None = None) -> dict:
    """Stratified group k-fold: groups (patches or blocks) never straddle folds, so neighbours do not leak.

    Groups are ordered by their majority class (random within a class) and dealt round-robin,
    which balances the classes across folds. Returns per-fold and mean ± std OA and weighted F1.
    """
    from ..validation.metrics import accuracy_metrics, confusion_matrix

    monitor = ensure_monitor(monitor)
    labels = sorted(int(v) for v in np.unique(y))
    fold, n_groups = group_folds(groups, y, folds, seed)
    if n_groups < folds:
        raise DataError(
            f"Cross-validation with {folds} folds needs at least {folds} spatial groups; the samples fall in {n_groups}. Use fewer folds or more patches.",
            argument="cv_folds",
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
        raise DataError("No cross-validation fold had two classes to train on; use fewer folds.", argument="cv_folds")
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
