"""A grid run on the demo scene: a model trained on one 100 px patch and the parameters that run
it over a grid of smaller patches. Shared by the batch tests, the rungrid test and bench_batch."""

from __future__ import annotations

import datetime as dt
import os

from lc_plugin.ml.train import train_classifier
from lc_plugin.reference.rasterize import rasterize_reference_file
from lc_plugin.runs import BatchParameters
from lc_plugin.runs.grid import create_grid, read_patches
from lc_plugin.sources.download import download_patch
from lc_plugin.timeseries.clouds import cloud_masks_file
from lc_plugin.timeseries.interpolate import interpolate_file

from .scene import DemoScene


def train_demo_model(scene: DemoScene, stac_url: str, folder: str, start: dt.date, end: dt.date, samples_per_class: int = 300) -> str:
    """An ONNX model (20 trees, 30-day steps, no cross-validation) trained on the scene's first 100 px patch,
    interpolated over its SCL-clear observations (Train refuses stacks never cloud-masked)."""
    one = os.path.join(folder, "one.gpkg")
    create_grid(scene.aoi_path, one, patch_px=100)
    names = ("train_stack.tif", "train_clm.tif", "train_interp.tif", "train_ref.tif", "model.onnx")
    stack, clm, interp, ref, model = (os.path.join(folder, n) for n in names)
    download_patch(read_patches(one)[0], stack, start=start, end=end, stac_url=stac_url, collection=scene.collection, max_cloud=100)
    cloud_masks_file(stack, clm, method="scl")
    interpolate_file(stack, interp, mask_path=clm, step_days=30, start=start, end=end)
    rasterize_reference_file(scene.reference_path, "LULC_ID", interp, ref)
    train_classifier([interp], [ref], model, n_estimators=20, samples_per_class=samples_per_class, drop_empty_classes=True, cv_folds=0)
    return model


def grid_run_parameters(scene: DemoScene, stac_url: str, folder: str, patch_px: int, start: dt.date, end: dt.date, **overrides) -> tuple[BatchParameters, int]:
    """A grid of ``patch_px`` patches over the scene and the run's parameters (SCL masks, 30-day
    steps, the reference rasterized per patch, a model from ``train_demo_model``); and the patch count."""
    grid = os.path.join(folder, "grid.gpkg")
    count = create_grid(scene.aoi_path, grid, patch_px=patch_px).count
    values = dict(
        grid=grid,
        model=train_demo_model(scene, stac_url, folder, start, end),
        start=start.isoformat(),
        end=end.isoformat(),
        stac_url=stac_url,
        collection=scene.collection,
        max_cloud=100,
        cloud_method="scl",
        step_days=30,
        reference=scene.reference_path,
        reference_field="LULC_ID",
        download_threads=2,
    )
    return BatchParameters(**(values | overrides)), count
