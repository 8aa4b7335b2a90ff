"""timeseries: from a downloaded time stack to the features a classifier reads.

Cloud masks (``clouds``: s2cloudless or SCL), the dates clear enough (``scenes``), per-pixel linear
interpolation onto a regular date grid (``interpolate``), valid-observation counts (``coverage``),
the features and pixel profiles read from stacks (``features``, ``profiles``), and the checks Train
and Classify make that a stack was cloud-masked (``cloudcheck``). Importing this package loads no
model runtime (s2cloudless, LightGBM, numba and onnxruntime load on first use).
"""

from .clouds import CloudMaskFile, cloud_masks_file
from .coverage import ValidCount, valid_count_file
from .interpolate import Interpolated, interpolate_file
from .scenes import FilteredStack, filter_scenes_file

__all__ = [
    "CloudMaskFile",
    "FilteredStack",
    "Interpolated",
    "ValidCount",
    "cloud_masks_file",
    "filter_scenes_file",
    "interpolate_file",
    "valid_count_file",
]
