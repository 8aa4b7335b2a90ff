"""io: the files the chain exchanges (time stacks, class rasters, their overviews and legends), HTTP with
retries, the scene cache, GDAL's messages, and the two steps that only move pixels (mosaic, split)."""

from .mosaic import MosaicResult, mosaic_files
from .rasters import Grid, StackWriter, TimeStack, read_class_raster, read_stack, read_stack_info, write_class_raster, write_stack
from .split import split_stack_file

__all__ = [
    "Grid",
    "MosaicResult",
    "StackWriter",
    "TimeStack",
    "mosaic_files",
    "read_class_raster",
    "read_stack",
    "read_stack_info",
    "split_stack_file",
    "write_class_raster",
    "write_stack",
]
