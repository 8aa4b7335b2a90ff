"""Reference data for training: polygons burnt onto a stack's grid, CORINE recoded, stack/reference pairs
read and checked, class-balanced pixel sampling, and training tiles for segmentation networks.

The entry points below take paths and a ``Monitor``; importing them is cheap (zarr is imported when a
tile store is written or read).
"""

from .corine import rasterize_clc_file
from .dataset import TileConfig, export_tiles
from .pairing import pair_stacks
from .rasterize import ClassOptions, rasterize_reference_file
from .tile_store import TileStore, open_tile_store
from .training_inputs import TrainingInputs, read_training_inputs

__all__ = [
    "ClassOptions",
    "TileConfig",
    "TileStore",
    "TrainingInputs",
    "export_tiles",
    "open_tile_store",
    "pair_stacks",
    "rasterize_clc_file",
    "rasterize_reference_file",
    "read_training_inputs",
]
