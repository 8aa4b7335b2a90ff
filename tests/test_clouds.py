"""Cloud masks: s2cloudless reproduced on real scenes, SCL masks by hand, the file-level step."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.errors import Cancelled, LandCoverError
from lc_plugin.core.monitor import Monitor
from lc_plugin.io.rasters import Grid, TimeStack, read_stack, write_stack
from lc_plugin.timeseries.clouds import (
    DEFAULT_PROCESSING_RESOLUTION,
    DEFAULT_SCL_CLASSES,
    S2CLOUDLESS_BANDS,
    CloudMaskFile,
    block_means,
    cloud_masks_file,
    resolution_factor,
    s2cloudless_masks,
    s2cloudless_probabilities,
    scl_masks,
    upsample_bilinear,
)

pytest.importorskip("s2cloudless")

S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
MODEL_IDX = [S2_BANDS.index(b) for b in S2CLOUDLESS_BANDS]
FRAMES = [2, 1, 4, 3, 0]  # the dates of REFERENCE_SCENES.npy in the 68-date series


def patch_grid(width: int = 100, height: int = 101) -> Grid:
    """The test patch's grid (EPSG:32633, ~10 m pixels)."""
    return Grid(CRS.from_epsg(32633), from_origin(465181.05, 5080254.63, 9.9948, 9.9974), width, height)


@pytest.fixture(scope="module")
def reference(testpatch):
    """13-band TOA scenes, their dates and eo-learn's stored s2cloudless output for those frames."""
    scenes = np.load(testpatch / "REFERENCE_SCENES.npy", allow_pickle=False)
    eop = testpatch / "TestEOPatch"
    stamps = json.loads((eop / "timestamps.json").read_text())
    dates = [dt.date.fromisoformat(stamps[i][:10]) for i in FRAMES]
    clp = np.load(eop / "data" / "CLP_S2C.npy", allow_pickle=False)[FRAMES, ..., 0]
    clm = np.load(eop / "mask" / "CLM_S2C.npy", allow_pickle=False)[FRAMES, ..., 0]
    return scenes, dates, clp, clm


def test_probabilities_match_eolearn_clp_s2c(reference):
    scenes, _, clp, _ = reference
    assert clp.dtype == np.float32 and np.nanmax(clp) <= 1.0  # stored as float probabilities, not 0–255
    probs = s2cloudless_probabilities(scenes[..., MODEL_IDX])
    assert probs.shape == (5, 101, 100) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, clp, rtol=0, atol=1e-6)


def test_masks_match_eolearn_clm_s2c(reference):
    scenes, _, clp, clm = reference
    masks = s2cloudless_masks(s2cloudless_probabilities(scenes[..., MODEL_IDX]), threshold=0.4, average_over=4, dilation_size=2)
    assert masks.dtype == np.uint8
    assert 0 < masks.sum() < masks.size  # the frames have both clouds and clear sky
    np.testing.assert_array_equal(masks, clm.astype(np.uint8))


def test_s2cloudless_scene_with_class_defaults(s2cloudless_scene):
    """s2cloudless's own expected output (average_over 1, dilation 1) on a real L1C scene (a crop)."""
    arrays = np.load(s2cloudless_scene)
    rows = 256
    bands = arrays["s2_im"][:, :rows][..., MODEL_IDX]
    probs = s2cloudless_probabilities(bands)
    np.testing.assert_allclose(probs, arrays["cl_probs"][:, :rows], rtol=0, atol=1e-4)
    masks = s2cloudless_masks(probs, threshold=0.4, average_over=1, dilation_size=1)
    # The crop's last two rows see different neighbours than in the full scene (radius 1 + 1).
    np.testing.assert_array_equal(masks[:, : rows - 2], arrays["cl_mask"][:, : rows - 2].astype(np.uint8))


def test_nan_pixels_are_nodata_and_do_not_change_the_rest(reference):
    scenes, _, clp, _ = reference
    bands = scenes[..., MODEL_IDX].copy()
    bands[0, 10:20, 30:40, 7] = np.nan  # B10 missing in a block of the first date
    bands[3, 50, 50, :] = np.nan
    probs = s2cloudless_probabilities(bands)
    hole = np.zeros(probs.shape, dtype=bool)
    hole[0, 10:20, 30:40] = True
    hole[3, 50, 50] = True
    assert np.isnan(probs[hole]).all()
    np.testing.assert_allclose(probs[~hole], clp[~hole], rtol=0, atol=1e-6)
    masks = s2cloudless_masks(probs)
    assert (masks[hole] == 255).all()
    assert set(np.unique(masks[~hole])) <= {0, 1}


def test_mask_without_postprocessing_is_a_plain_threshold():
    rng = np.random.default_rng(0)
    probs = rng.random((2, 30, 40)).astype(np.float32)
    masks = s2cloudless_masks(probs, threshold=0.6, average_over=0, dilation_size=0)
    np.testing.assert_array_equal(masks, (probs > 0.6).astype(np.uint8))
    # Dilation alone only grows clouds.
    grown = s2cloudless_masks(probs, threshold=0.6, average_over=0, dilation_size=1)
    assert (grown >= masks).all() and grown.sum() > masks.sum()


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"threshold": 1.5}, "threshold"),
    ({"average_over": -1}, "average_over"),
    ({"dilation_size": 1.5}, "dilation_size"),
])
def test_bad_postprocessing_parameters(kwargs, parameter):
    with pytest.raises(LandCoverError) as err:
        s2cloudless_masks(np.zeros((1, 5, 5), dtype=np.float32), **kwargs)
    assert err.value.argument == parameter


def test_scl_masks_by_hand():
    scl = np.array([[[0, 3, 4, 8], [9, 10, 5, np.nan]], [[1, 2, 6, 7], [11, 8, 0, 4]]], dtype=np.float32)
    expected = np.array([[[255, 1, 0, 1], [1, 1, 0, 255]], [[0, 0, 0, 0], [0, 1, 255, 0]]], dtype=np.uint8)
    masks = scl_masks(scl)
    assert masks.dtype == np.uint8
    np.testing.assert_array_equal(masks, expected)
    assert DEFAULT_SCL_CLASSES == (3, 8, 9, 10)
    # Custom classes, and integer input (no NaN possible; 0 is still no data).
    custom = scl_masks(scl.astype(np.float32), classes=(1, 9))
    assert custom[1, 0, 0] == 1 and custom[0, 0, 1] == 0 and custom[0, 1, 0] == 1
    np.testing.assert_array_equal(scl_masks(np.array([[[0, 9, 4]]], dtype=np.uint8)), [[[255, 1, 0]]])


# --- file level ---------------------------------------------------------------------------------


def write_l1c_stack(path, scenes, dates, bands=S2_BANDS) -> None:
    """(T, H, W, 13) arrays → a time stack with the requested bands, dates in time order."""
    order = np.argsort(dates)
    data = np.moveaxis(scenes[order][..., [S2_BANDS.index(b) for b in bands]], -1, 1).astype(np.float32)
    write_stack(str(path), TimeStack(np.ascontiguousarray(data), [dates[i] for i in order], list(bands), patch_grid()))


def test_cloud_masks_file_s2cloudless(reference, tmp_path):
    scenes, dates, clp, clm = reference
    stack = tmp_path / "l1c.tif"
    write_l1c_stack(stack, scenes, dates)
    messages: list[str] = []
    progress: list[float] = []
    used = cloud_masks_file(
        str(stack),
        str(tmp_path / "clm.tif"),
        str(tmp_path / "clp.tif"),
        monitor=Monitor(progress.append, log=messages.append),
        processing_resolution=0,
    )
    assert used == CloudMaskFile(str(tmp_path / "clm.tif"), str(tmp_path / "clp.tif"), "s2cloudless")
    order = np.argsort(dates)
    mask = read_stack(str(tmp_path / "clm.tif"))
    assert mask.bands == ["CLM"] and mask.data.dtype == np.uint8
    assert mask.dates == sorted(dates)
    assert mask.grid.crs == CRS.from_epsg(32633) and mask.grid.transform == patch_grid().transform
    np.testing.assert_array_equal(mask.data[:, 0], clm[order].astype(np.uint8))
    assert mask.tags["METHOD"] == "s2cloudless" and float(mask.tags["THRESHOLD"]) == 0.4
    assert mask.tags["AVERAGE_OVER"] == "4" and mask.tags["DILATION_SIZE"] == "2"
    assert mask.tags["LC_KIND"] == "cloudmask" and mask.tags["PROCESSING_BLOCK_PX"] == "1"
    with rasterio.open(tmp_path / "clm.tif") as src:
        assert src.nodata == 255
    prob = read_stack(str(tmp_path / "clp.tif"))
    assert prob.bands == ["CLP"] and prob.tags["LC_KIND"] == "cloudprob"
    np.testing.assert_allclose(prob.data[:, 0], clp[order], rtol=0, atol=1e-6)
    assert progress and progress[-1] == pytest.approx(100.0)
    assert any("cloudy" in m for m in messages)


def test_cloud_masks_file_nodata_pixels(reference, tmp_path):
    scenes, dates, _, _ = reference
    scenes = scenes.copy()
    scenes[:, :5, :] = np.nan  # a strip outside the footprint on every date
    stack = tmp_path / "l1c.tif"
    write_l1c_stack(stack, scenes, dates)
    cloud_masks_file(str(stack), str(tmp_path / "clm.tif"), str(tmp_path / "clp.tif"))
    mask = read_stack(str(tmp_path / "clm.tif")).data[:, 0]
    assert (mask[:, :5] == 255).all() and set(np.unique(mask[:, 5:])) <= {0, 1}
    assert np.isnan(read_stack(str(tmp_path / "clp.tif")).data[:, 0, :5]).all()


def write_l2a_stack(path, with_scl: bool = True) -> tuple[np.ndarray, list[dt.date]]:
    rng = np.random.default_rng(1)
    dates = [dt.date(2020, 5, 1), dt.date(2020, 5, 6)]
    bands = ["B02", "B03", "B04", "B08"] + (["SCL"] if with_scl else [])
    data = rng.random((2, len(bands), 101, 100)).astype(np.float32) * 0.3
    scl = rng.integers(0, 12, size=(2, 101, 100))
    if with_scl:
        data[:, -1] = scl
    write_stack(str(path), TimeStack(data, dates, bands, patch_grid()))
    return scl, dates


def test_cloud_masks_file_auto_uses_scl_without_b10(tmp_path):
    scl, dates = write_l2a_stack(tmp_path / "l2a.tif")
    messages: list[str] = []
    used = cloud_masks_file(
        str(tmp_path / "l2a.tif"), str(tmp_path / "clm.tif"), str(tmp_path / "clp.tif"), monitor=Monitor(log=messages.append)
    )
    assert used.method == "scl" and used.probability_path is None
    assert not (tmp_path / "clp.tif").exists()
    assert any("probabilit" in m for m in messages)
    mask = read_stack(str(tmp_path / "clm.tif"))
    assert mask.dates == dates and mask.tags["METHOD"] == "scl"
    assert json.loads(mask.tags["SCL_CLASSES"]) == [3, 8, 9, 10]
    expected = np.where(scl == 0, 255, np.isin(scl, [3, 8, 9, 10])).astype(np.uint8)
    np.testing.assert_array_equal(mask.data[:, 0], expected)


def test_s2cloudless_on_l2a_stack_explains_b10(tmp_path):
    write_l2a_stack(tmp_path / "l2a.tif")
    with pytest.raises(LandCoverError) as err:
        cloud_masks_file(str(tmp_path / "l2a.tif"), str(tmp_path / "clm.tif"), method="s2cloudless")
    assert err.value.argument == "method"
    text = str(err.value)
    assert "B10" in text and "L2A" in text and "SCL" in text and "L1C" in text
    assert "B01" in text  # names every missing band
    assert not (tmp_path / "clm.tif").exists()


def test_scl_method_without_scl_band(tmp_path):
    write_l2a_stack(tmp_path / "bands.tif", with_scl=False)
    with pytest.raises(LandCoverError) as err:
        cloud_masks_file(str(tmp_path / "bands.tif"), str(tmp_path / "clm.tif"), method="scl")
    assert err.value.argument == "method" and "SCL" in str(err.value)
    with pytest.raises(LandCoverError) as err:
        cloud_masks_file(str(tmp_path / "bands.tif"), str(tmp_path / "clm.tif"))  # auto: neither source
    assert err.value.argument == "method"
    with pytest.raises(LandCoverError) as err:
        cloud_masks_file(str(tmp_path / "bands.tif"), str(tmp_path / "clm.tif"), method="fmask")
    assert err.value.argument == "method"


def test_digital_numbers_are_refused(reference, tmp_path):
    scenes, dates, _, _ = reference
    write_l1c_stack(tmp_path / "dn.tif", scenes * 10000, dates)
    with pytest.raises(LandCoverError) as err:
        cloud_masks_file(str(tmp_path / "dn.tif"), str(tmp_path / "clm.tif"))
    assert err.value.argument == "stack_path" and "10000" in str(err.value)


def test_cancel_leaves_no_output(reference, tmp_path):
    scenes, dates, _, _ = reference
    write_l1c_stack(tmp_path / "l1c.tif", scenes, dates)
    with pytest.raises(Cancelled):
        cloud_masks_file(str(tmp_path / "l1c.tif"), str(tmp_path / "clm.tif"), monitor=Monitor(is_cancelled=lambda: True))
    assert not (tmp_path / "clm.tif").exists()


def test_output_may_not_overwrite_input(tmp_path):
    write_l2a_stack(tmp_path / "l2a.tif")
    with pytest.raises(LandCoverError) as err:
        cloud_masks_file(str(tmp_path / "l2a.tif"), str(tmp_path / "l2a.tif"))
    assert err.value.argument == "mask_out"


def test_block_means_by_hand():
    bands = np.arange(2 * 3 * 5 * 1, dtype=np.float32).reshape(1, 3, 5, 2)  # (T, H, W, C)
    bands[0, 0, 0, 1] = np.nan  # pixel (0, 0) has a missing band: left out of its block
    means = block_means(bands, 2)
    assert means.shape == (1, 2, 3, 2)
    # Block (0, 0) holds pixels (0, 1), (1, 0), (1, 1) (values 2, 10, 12 in band 0).
    assert means[0, 0, 0, 0] == pytest.approx((2 + 10 + 12) / 3)
    # Edge blocks are smaller: block (1, 2) is pixel (2, 4) alone.
    np.testing.assert_array_equal(means[0, 1, 2], bands[0, 2, 4])
    assert np.isnan(block_means(np.full((1, 2, 2, 1), np.nan, dtype=np.float32), 2)).all()


def test_upsample_bilinear_by_hand():
    coarse = np.array([[[0.0, 1.0], [2.0, 3.0]]], dtype=np.float32)
    fine = upsample_bilinear(coarse, 2, 4, 4)
    # Fine pixel centres lie at -0.25, 0.25, 0.75, 1.25 coarse cells: the outer ones hold the edge value.
    np.testing.assert_allclose(fine[0, 0], [0.0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(fine[0, :, 0], [0.0, 0.5, 1.5, 2.0])
    np.testing.assert_allclose(fine[0, 1, 1], 0.75)  # 0.75·(0.75·0 + 0.25·1) + 0.25·(0.75·2 + 0.25·3)
    coarse[0, 0, 1] = np.nan  # a block without data: its neighbours' values only
    fine = upsample_bilinear(coarse, 2, 4, 4)
    assert np.isnan(fine[0, 0, 3])  # its only neighbour is that block
    # (0, 0) = 0, (1, 0) = 2 and (1, 1) = 3 with weights 0.75·0.25, 0.25·0.25, 0.25·0.75, renormalised.
    assert fine[0, 1, 2] == pytest.approx((2 * 0.0625 + 3 * 0.1875) / 0.4375)


def test_resolution_factor():
    grid = patch_grid()  # ~10 m pixels
    assert resolution_factor(grid, 40) == 4 and resolution_factor(grid, 60) == 6
    assert resolution_factor(grid, 0) == 1 and resolution_factor(grid, 10) == 1 and resolution_factor(grid, 4) == 1
    with pytest.raises(LandCoverError) as err:
        resolution_factor(grid, -10)
    assert err.value.argument == "processing_resolution"


def test_processing_resolution_agrees_with_full_resolution(s2cloudless_scene):
    """The default processing resolution on a real, 47 % cloudy L1C scene (a crop) against the 10 m masks."""
    bands = np.load(s2cloudless_scene)["s2_im"][:, :384][..., MODEL_IDX]
    full = s2cloudless_masks(s2cloudless_probabilities(bands))
    factor = int(DEFAULT_PROCESSING_RESOLUTION // 10)
    coarse = s2cloudless_masks(s2cloudless_probabilities(bands, factor=factor))
    agreement = (coarse == full).mean()
    assert 0.97 <= agreement < 1.0
    assert abs(coarse.mean() - full.mean()) < 0.01  # no bias towards cloud or clear


def test_processing_resolution_file_and_nodata(reference, tmp_path):
    scenes, dates, _, clm = reference
    scenes = scenes.copy()
    scenes[:, :5, :] = np.nan
    stack = tmp_path / "l1c.tif"
    write_l1c_stack(stack, scenes, dates)
    cloud_masks_file(str(stack), str(tmp_path / "clm.tif"), str(tmp_path / "clp.tif"))  # the default resolution
    mask = read_stack(str(tmp_path / "clm.tif"))
    assert mask.tags["PROCESSING_BLOCK_PX"] == str(int(DEFAULT_PROCESSING_RESOLUTION // 10))
    assert (mask.data[:, 0, :5] == 255).all() and np.isnan(read_stack(str(tmp_path / "clp.tif")).data[:, 0, :5]).all()
    order = np.argsort(dates)
    assert (mask.data[:, 0, 5:] == clm[order][:, 5:]).mean() > 0.97
