"""landcover:sieve and landcover:reclassify through Processing: the engine's hand-worked results, the legend kept."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.classes import make_class_table
from lc_plugin.io.rasters import Grid, read_class_raster, write_class_raster

LABELS = np.array([[1, 1, 1, 2], [1, 2, 1, 2], [1, 1, 1, 2], [0, 0, 3, 3]], dtype=np.uint8)


@pytest.fixture
def class_map(tmp_path):
    path = tmp_path / "map.tif"
    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 4, 4)
    write_class_raster(str(path), LABELS, grid, make_class_table({1: "cultivated land", 2: "forest", 3: "grassland"}))
    return str(path)


def test_sieve_algorithm(run_alg, class_map, tmp_path):
    out = run_alg("sieve", {"INPUT": class_map, "MIN_PIXELS": 2, "OUTPUT": str(tmp_path / "s.tif")})
    labels, classes, _ = read_class_raster(out["OUTPUT"])
    expected = LABELS.copy()
    expected[1, 1] = 1  # the one-pixel forest patch; the 3-pixel column and the 2-pixel grassland stay
    assert np.array_equal(labels, expected) and out["CHANGED"] == 1
    assert classes.names == ["cultivated land", "forest", "grassland"]


def test_reclassify_algorithm(run_alg, class_map, tmp_path):
    table = ["3", "1", "agriculture", "#aabbcc", "2", "0", "", ""]
    out = run_alg("reclassify", {"INPUT": class_map, "TABLE": table, "OUTPUT": str(tmp_path / "r.tif")})
    labels, classes, _ = read_class_raster(out["OUTPUT"])
    assert np.array_equal(labels, np.select([LABELS == 3, LABELS == 2], [1, 0], LABELS))
    assert [(c.id, c.name, c.color) for c in classes] == [(1, "agriculture", "#aabbcc")]


def test_reclassify_names_the_table_when_it_is_wrong(run_alg, class_map, tmp_path):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="TABLE: row 1"):
        run_alg("reclassify", {"INPUT": class_map, "TABLE": ["x", "1", "", ""], "OUTPUT": str(tmp_path / "r.tif")})
    assert not (tmp_path / "r.tif").exists()
