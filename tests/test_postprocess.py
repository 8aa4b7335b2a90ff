"""Majority filter, sieve and reclassification on hand-made class rasters with hand-worked results."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.classes import make_class_table
from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import Grid, read_class_raster, write_class_raster
from lc_plugin.ml.postprocess import majority_filter, reclassify_file, reclassify_table, sieve, sieve_file

MAP = np.array(
    [
        [1, 1, 1, 1, 0, 0],
        [1, 2, 1, 1, 0, 0],
        [1, 1, 1, 3, 3, 3],
        [2, 2, 1, 3, 3, 3],
        [2, 2, 1, 3, 4, 3],
        [2, 2, 1, 3, 3, 3],
    ],
    dtype=np.uint8,
)


def grid(shape) -> Grid:
    return Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), shape[1], shape[0])


def test_sieve_merges_single_pixels_into_their_surroundings():
    out = sieve(MAP, 2)
    expected = MAP.copy()
    expected[1, 1] = 1  # the lone forest pixel inside cultivated land
    expected[4, 4] = 3  # the lone class-4 pixel inside grassland
    assert np.array_equal(out, expected)
    assert np.array_equal(sieve(MAP, 7), np.where(MAP == 2, 1, expected))  # the 6-pixel block of 2 goes too


def test_sieve_connectedness_decides_whether_diagonal_pixels_are_one_region():
    labels = np.ones((4, 4), dtype=np.uint8)
    labels[1, 1] = labels[2, 2] = 5
    assert (sieve(labels, 2, connectedness=4) == 1).all()  # two regions of one pixel each
    assert np.array_equal(sieve(labels, 2, connectedness=8), labels)  # one region of two pixels


def test_sieve_never_grows_or_fills_no_data():
    labels = np.array([[0, 0, 1, 1], [0, 2, 1, 1], [0, 0, 1, 1]], dtype=np.uint8)
    out = sieve(labels, 2)
    assert np.array_equal(out, np.array([[0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1]]))  # merged into 1, not into no data
    island = np.zeros((3, 3), dtype=np.uint8)
    island[1, 1] = 2
    assert np.array_equal(sieve(island, 4), island)  # nothing to merge into: left as it is


def test_majority_filter_by_hand():
    labels = np.array([[1, 1, 2, 2], [1, 2, 1, 2], [1, 1, 2, 2]], dtype=np.uint8)
    # (1,1): its 3x3 window holds six 1s and three 2s; (1,2): six 2s and three 1s
    assert np.array_equal(majority_filter(labels, 3), np.array([[1, 1, 2, 2], [1, 1, 2, 2], [1, 1, 2, 2]]))
    tie = np.array([[1, 2], [2, 1]], dtype=np.uint8)
    assert np.array_equal(majority_filter(tie, 3), tie)  # 2 against 2 everywhere: each pixel keeps its class
    with_nodata = np.array([[0, 1, 1], [2, 2, 1], [2, 2, 0]], dtype=np.uint8)
    # (0,1): window 0,1,1,2,2,1 → three 1s, two 2s (no data not counted); (1,2): 1,1,2,1,2,0 → 1; (1,0)/(2,1): 2
    assert np.array_equal(majority_filter(with_nodata, 3), with_nodata)
    with pytest.raises(LandCoverError) as err:
        majority_filter(labels, 4)
    assert err.value.argument == "majority_size"


def test_majority_filter_agrees_with_a_plain_mode_filter():
    from scipy import ndimage

    labels = np.random.default_rng(1).integers(0, 4, (30, 40)).astype(np.uint8)

    def mode(window: np.ndarray) -> float:
        centre = window[len(window) // 2]
        counts = np.bincount(window[window > 0].astype(int), minlength=4)
        if centre == 0:
            return 0
        best = counts.max()
        return centre if counts[int(centre)] == best else int(np.argmax(counts == best))

    expected = ndimage.generic_filter(labels, mode, size=5, mode="constant", cval=0)
    assert np.array_equal(majority_filter(labels, 5), expected)


def test_sieve_file_keeps_the_class_table(tmp_path):
    classes = make_class_table({1: "cultivated land", 2: "forest", 3: "grassland", 4: "shrubland"})
    src = tmp_path / "map.tif"
    write_class_raster(str(src), MAP, grid(MAP.shape), classes)
    summary = sieve_file(str(src), str(tmp_path / "sieved.tif"), 2)
    labels, table, out_grid = read_class_raster(str(tmp_path / "sieved.tif"))
    assert (summary.changed, summary.pixels) == (2, 32)
    assert labels[1, 1] == 1 and labels[4, 4] == 3 and (labels[:2, 4:] == 0).all()
    assert table == classes and out_grid.transform == grid(MAP.shape).transform
    with pytest.raises(LandCoverError) as err:
        sieve_file(str(src), str(src), 2)
    assert err.value.argument == "out_path"


def test_reclassify_merges_renames_renumbers_and_drops(tmp_path):
    classes = make_class_table({1: "cultivated land", 2: "forest", 3: "grassland", 4: "shrubland"})
    src = tmp_path / "map.tif"
    write_class_raster(str(src), MAP, grid(MAP.shape), classes)
    rows = [["3", "1", "agriculture", "#aabbcc"], ["1", "1", "", ""], ["2", "7", "", ""], [4, 0, "", ""]]
    table = reclassify_file(str(src), str(tmp_path / "re.tif"), rows)
    labels, stored, _ = read_class_raster(str(tmp_path / "re.tif"))
    expected = np.select([MAP == 3, MAP == 2, MAP == 4], [1, 7, 0], MAP)
    assert np.array_equal(labels, expected)
    assert [(c.id, c.name, c.color) for c in stored] == [(1, "agriculture", "#aabbcc"), (7, "forest", "#054907")]  # renumbered forest keeps its legend
    assert stored == table


def test_reclassify_table_refuses_contradictions():
    classes = make_class_table({1: "a", 2: "b"})
    for rows, words in [
        ([[1, 2], [1, 3]], "already reclassified"),
        ([[1, 3, "x"], [2, 3, "y"]], "two names"),
        ([["one", 2]], "whole numbers"),
        ([[1, 300]], "0–255"),
        ([[1, 2, "", "red"]], "#rrggbb"),
    ]:
        with pytest.raises(LandCoverError) as err:
            reclassify_table(rows, classes)
        assert words in str(err.value) and err.value.argument == "rows"
    mapping, table = reclassify_table([[1, 2]], classes)
    assert mapping == {1: 2} and [(c.id, c.name) for c in table] == [(2, "b")]  # 2 keeps its own name
