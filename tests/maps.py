"""A synthetic three-class map and its truth, for the validation tests (engine and Processing)."""

from __future__ import annotations

import numpy as np

from lc_plugin.core.classes import ClassTable, LandCoverClass
from lc_plugin.io.rasters import Grid

CLASSES = ClassTable([LandCoverClass(1, "forest", "#054907"), LandCoverClass(2, "grassland", "#ffa500"), LandCoverClass(3, "water", "#069af3")])


def truth_and_map(grid: Grid, seed: int, grass_from_col: int, water_from_row: int, water_to_col: int, error: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Truth: forest, grassland from ``grass_from_col``, water in the lower-left corner; the map
    relabels a random ``error`` share of its pixels with a random class (possibly the same one)."""
    rng = np.random.default_rng(seed)
    truth = np.ones((grid.height, grid.width), dtype=np.uint8)
    truth[:, grass_from_col:] = 2
    truth[water_from_row:, :water_to_col] = 3
    mapped = truth.copy()
    flip = rng.random(truth.shape) < error
    mapped[flip] = rng.choice([1, 2, 3], size=int(flip.sum()))
    return truth, mapped
