"""runs: a grid of patches (``create_grid``) and the whole chain run over it (``run_batch``), resumable,
in parallel, locally or on Dask; the fused one-pass chain and the workbench's settings live here too."""

from .batch import BatchResult, run_batch
from .executors import EXECUTORS
from .grid import Patch, PatchGrid, create_grid, read_patches
from .markers import DONE_MARKER, is_done, training_pairs
from .parameters import CLOUD_METHODS, BatchParameters
from .patch import ONE_PASS_STEP, process_patch

__all__ = [
    "CLOUD_METHODS",
    "DONE_MARKER",
    "EXECUTORS",
    "ONE_PASS_STEP",
    "BatchParameters",
    "BatchResult",
    "Patch",
    "PatchGrid",
    "create_grid",
    "process_patch",
    "read_patches",
    "run_batch",
    "training_pairs",
    "is_done",
]
