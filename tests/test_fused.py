"""The one-pass chain gives the class map of the separate steps, on a real L1C stack."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.classes import make_class_table
from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import Grid, TimeStack, read_class_raster, write_class_raster, write_stack
from lc_plugin.ml.classify import classify_file
from lc_plugin.ml.train import train_classifier
from lc_plugin.runs.fused import FusedSettings, classify_stack
from lc_plugin.timeseries.clouds import cloud_masks_file
from lc_plugin.timeseries.interpolate import interpolate_file
from lc_plugin.timeseries.scenes import filter_scenes_file

pytest.importorskip("s2cloudless")

S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
FRAMES = [2, 1, 4, 3, 0]  # the dates of REFERENCE_SCENES.npy in the 68-date series
TILES = 3  # the 101×100 px patch tiled 3×3: more than one 256-row window


@pytest.fixture(scope="module")
def chain(testpatch, tmp_path_factory):
    """A real 13-band L1C stack, its reference, and a model trained on the separate steps' output."""
    tmp = tmp_path_factory.mktemp("fused")
    eop = testpatch / "TestEOPatch"
    scenes = np.load(testpatch / "REFERENCE_SCENES.npy", allow_pickle=False)
    stamps = json.loads((eop / "timestamps.json").read_text())
    dates = [dt.date.fromisoformat(stamps[i][:10]) for i in FRAMES]
    order = np.argsort(dates)
    data = np.tile(np.moveaxis(scenes[order], -1, 1), (1, 1, TILES, TILES)).astype(np.float32)
    data[1, :, 40:60, 50:70] = np.nan  # a hole in one date
    grid = Grid(CRS.from_epsg(32633), from_origin(465180, 5080250, 10, 10), data.shape[3], data.shape[2])
    stack = str(tmp / "stack.tif")
    write_stack(stack, TimeStack(data, [dates[i] for i in order], S2_BANDS, grid))
    lulc = np.tile(np.load(eop / "mask_timeless" / "LULC.npy", allow_pickle=False)[..., 0], (TILES, TILES)).astype(np.uint8)
    reference = str(tmp / "reference.tif")
    write_class_raster(reference, lulc, grid, make_class_table({int(c): "" for c in np.unique(lulc) if c}))
    settings = FusedSettings(min_valid_fraction=0.5, step_days=16)
    step = {name: str(tmp / name) for name in ("clm.tif", "f.vrt", "f_clm.vrt", "interp.tif", "model.onnx", "classes.tif")}
    cloud_masks_file(stack, step["clm.tif"], processing_resolution=settings.processing_resolution)
    filter_scenes_file(stack, step["clm.tif"], step["f.vrt"], step["f_clm.vrt"], min_valid_fraction=settings.min_valid_fraction)
    interpolate_file(step["f.vrt"], step["interp.tif"], mask_path=step["f_clm.vrt"], step_days=settings.step_days)
    train_classifier([step["interp.tif"]], [reference], step["model.onnx"], n_estimators=10, samples_per_class=200, drop_empty_classes=True)
    classify_file(step["model.onnx"], step["interp.tif"], step["classes.tif"])
    return tmp, stack, settings, step


def test_one_pass_equals_the_separate_steps(chain):
    tmp, stack, settings, step = chain
    before = {p.name for p in tmp.iterdir()}
    result = classify_stack(stack, step["model.onnx"], str(tmp / "one_pass.tif"), settings, threads=2)
    written = {p.name for p in tmp.iterdir()} - before
    expected, classes, grid = read_class_raster(step["classes.tif"])
    got, got_classes, got_grid = read_class_raster(str(tmp / "one_pass.tif"))
    assert 0 < (got > 0).mean() and len(np.unique(got)) > 2  # a real map, not one class
    np.testing.assert_array_equal(got, expected)
    assert got_classes == classes and got_grid.transform == grid.transform
    with rasterio.open(step["f.vrt"]) as src:
        assert len(result.kept_dates) == len(json.loads(src.tags()["LC_DATES"])) < 5  # the filter dropped cloudy dates
    assert set(result.steps) == {"cloud masks", "filter", "interpolate + features + classify", "write class map"}
    assert "one_pass.tif" in written and all(n.startswith("one_pass.") for n in written)  # the map (and its style), nothing else


def test_one_pass_refuses_a_model_of_other_dates(chain):
    tmp, stack, settings, step = chain
    with pytest.raises(LandCoverError) as err:
        classify_stack(stack, step["model.onnx"], str(tmp / "other.tif"), FusedSettings(min_valid_fraction=0.5, step_days=10))
    assert err.value.argument == "stack_path" and "dates" in str(err.value)
    assert not (tmp / "other.tif").exists()
