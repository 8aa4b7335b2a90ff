"""The numba tree kernel equals LightGBM's own predict, bit for bit, where it is hardest to.

Pixels sit exactly on the split thresholds and one float32 step either side of them (where a
float32 rounding of the threshold would send them the wrong way), blocks end mid-lane, and
the work is split over threads.
"""

from __future__ import annotations

import numpy as np
import pytest

from lc_plugin.timeseries import trees

pytest.importorskip("numba")
lightgbm = pytest.importorskip("lightgbm")


def threshold_pixels(booster, n: int, seed: int) -> np.ndarray:
    """(n, F) float32 pixels whose every feature is on, just below or just above a split threshold."""
    rng = np.random.default_rng(seed)
    model = booster.dump_model()
    per_feature: dict[int, list[float]] = {}
    todo = [t["tree_structure"] for t in model["tree_info"]]
    while todo:
        node = todo.pop()
        if "split_feature" in node:
            per_feature.setdefault(node["split_feature"], []).append(node["threshold"])
            todo += [node["left_child"], node["right_child"]]
    columns = []
    for f in range(model["max_feature_idx"] + 1):
        t = np.float32(per_feature.get(f, [0.5]))
        candidates = np.concatenate([t, np.nextafter(t, np.float32(-np.inf)), np.nextafter(t, np.float32(np.inf))])
        columns.append(rng.choice(candidates, n))
    return np.stack(columns, axis=1).astype(np.float32)


def test_s2cloudless_model_on_its_thresholds():
    pytest.importorskip("s2cloudless")
    from lc_plugin.timeseries.cloud_model import binned_cloud_forest, cloud_detector

    booster = cloud_detector().classifier.classifier
    forest = binned_cloud_forest()
    assert forest.roots.size == 170 and int((forest.bound == 255).sum()) == 170 * 770  # 130,900 leaves
    x = threshold_pixels(booster, 2 * 2048 + 13, seed=0)  # two blocks and a part-filled lane group
    expected = booster.predict(x).astype(np.float32)
    np.testing.assert_array_equal(trees.predict_proba(forest, x, threads=2), expected)
    np.testing.assert_array_equal(trees.predict_proba(forest, x[:5], threads=1), expected[:5])


def test_small_trained_model_with_a_constant_feature_and_one_leaf_trees():
    rng = np.random.default_rng(1)
    x = rng.random((3000, 4)).astype(np.float32)
    x[:, 2] = 0.25  # never split on
    y = (x[:, 0] + 0.3 * np.sin(9 * x[:, 1]) > 0.6).astype(int)
    params = {"objective": "binary", "num_leaves": 15, "learning_rate": 0.3, "min_data_in_leaf": 5, "verbose": -1}
    booster = lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=25)
    forest = trees.forest_from_lightgbm(booster.model_to_string())
    probe = np.concatenate([threshold_pixels(booster, 500, seed=2), x[:300]])
    np.testing.assert_array_equal(trees.predict_proba(forest, probe), booster.predict(probe).astype(np.float32))

    # One class only: nothing to split, so single-leaf trees (written without split fields).
    stump = lightgbm.train(params, lightgbm.Dataset(x, np.zeros(len(x), dtype=int)), num_boost_round=2)
    assert "num_leaves=1\n" in stump.model_to_string()
    single = trees.forest_from_lightgbm(stump.model_to_string())
    np.testing.assert_array_equal(trees.predict_proba(single, x[:10]), stump.predict(x[:10]).astype(np.float32))


def test_unsupported_models_are_refused():
    rng = np.random.default_rng(3)
    x = rng.random((300, 3))
    multi = lightgbm.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, lightgbm.Dataset(x, rng.integers(0, 3, 300)), 2)
    with pytest.raises(ValueError, match="binary"):
        trees.forest_from_lightgbm(multi.model_to_string())
    forest_input = np.zeros((4, 2), dtype=np.float32)
    binary = lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(x, rng.integers(0, 2, 300)), 2)
    with pytest.raises(ValueError, match="pixels"):
        trees.predict_proba(trees.forest_from_lightgbm(binary.model_to_string()), forest_input)
