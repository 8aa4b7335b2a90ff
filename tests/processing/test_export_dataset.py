"""landcover:exportdataset through processing.run: a store with a second modality, and bad input."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pytest
from test_bad_input import expect_error

from lc_plugin.reference.dataset import open_tile_store
from tests.test_dataset import make_pair

pytest.importorskip("zarr")


@pytest.fixture
def pairs(tmp_path):
    """Two 8×12 patches (the second half labelled) and an OLCI-like stack per patch."""
    labels = np.zeros((8, 12), np.uint8)
    labels[:, 6:] = 2
    labels[4:, 10:] = 3
    olci = tmp_path / "olci"
    olci.mkdir()
    stacks, refs, extras = [], [], []
    for i in range(2):
        stack, ref = make_pair(tmp_path, i, 8, 12, labels)
        extra, _ = make_pair(olci, i, 8, 12, dates=[dt.date(2017, 7, 1)], bands=["Oa17"])
        stacks.append(stack), refs.append(ref), extras.append(extra)
    return stacks, refs, extras


def test_export_with_second_modality(run_alg, pairs, tmp_path):
    stacks, refs, extras = pairs
    out = str(tmp_path / "tiles.zarr")
    result = run_alg(
        "exportdataset",
        {"INPUT": stacks, "REFERENCE": refs, "TILE_SIZE": 4, "FOLDS": 3, "SEED": 1, "AREA": "demo", "EXTRA_STACKS": extras, "OUTPUT": out},
    )
    # columns 0, 4, 8 × rows 0, 4: the column-0 tiles have no label, so 4 tiles per patch
    assert result["OUTPUT"] == out and result["N_TILES"] == 8
    store = open_tile_store(out)
    assert store.area == "demo" and store.year == 2017 and store.sensors == ["S2L2A", "S3OLCI"]
    assert store.classes.ids == [1, 2, 3]  # the references' class table, present in the tiles or not
    assert store.offsets.tolist() == [[0, 4], [0, 8], [4, 4], [4, 8]] * 2 and store.patches.tolist() == [0] * 4 + [1] * 4
    assert store.inputs("S3OLCI")[5, 0, 0, 2, 3] == pytest.approx(1000 + 2 + 11 / 1000)  # patch 1, row 0 + 2, col 8 + 3
    assert np.bincount(store.folds, minlength=3).tolist() in ([3, 3, 2], [3, 2, 3], [2, 3, 3])
    assert not [p for p in os.listdir(tmp_path) if ".partial" in p]


def test_no_labelled_tile(run_alg, pairs, tmp_path):
    stacks, _, _ = pairs
    empty, _ = make_pair(tmp_path / "olci", 5, 8, 12, np.zeros((8, 12), np.uint8))
    out = str(tmp_path / "t.zarr")
    ref = os.path.join(os.path.dirname(empty), "ref_5.tif")
    expect_error(run_alg, "exportdataset", {"INPUT": [empty], "REFERENCE": [ref], "TILE_SIZE": 4, "OUTPUT": out}, "REFERENCE", "labelled", outputs=[out])


def test_reference_on_another_grid(run_alg, pairs, tmp_path):
    stacks, refs, _ = pairs
    out = str(tmp_path / "t.zarr")
    expect_error(run_alg, "exportdataset", {"INPUT": stacks, "REFERENCE": refs[::-1], "TILE_SIZE": 4, "OUTPUT": out}, "REFERENCE", "grid", outputs=[out])


def test_extra_stack_on_another_grid(run_alg, pairs, tmp_path):
    stacks, refs, extras = pairs
    out = str(tmp_path / "t.zarr")
    params = {"INPUT": stacks, "REFERENCE": refs, "TILE_SIZE": 4, "EXTRA_STACKS": extras[::-1], "OUTPUT": out}
    expect_error(run_alg, "exportdataset", params, "EXTRA_STACKS", "grid", outputs=[out])


def test_tile_larger_than_patch(run_alg, pairs, tmp_path):
    stacks, refs, _ = pairs
    out = str(tmp_path / "t.zarr")
    expect_error(run_alg, "exportdataset", {"INPUT": stacks, "REFERENCE": refs, "TILE_SIZE": 10, "OUTPUT": out}, "TILE_SIZE", "8", outputs=[out])
