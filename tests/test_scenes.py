"""Scene filter: valid fractions by hand and on the real patch, the file-level step, its errors."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import Grid, TimeStack, read_stack, write_stack
from lc_plugin.timeseries.scenes import filter_scenes_file, valid_fractions


def patch_grid(width: int = 100, height: int = 101, x0: float = 465181.05) -> Grid:
    return Grid(CRS.from_epsg(32633), from_origin(x0, 5080254.63, 9.9948, 9.9974), width, height)


def test_valid_fractions_by_hand():
    mask = np.zeros((4, 2, 5), dtype=np.uint8)
    mask[0, 0, :] = 1  # 5 cloudy of 10 → 0.5
    mask[1, :, :] = 255  # no data at all → 0.0
    mask[2, 0, :] = 255  # half outside the footprint, the rest clear → 1.0
    mask[3, 0, :] = 255  # 5 observed, 1 cloudy → 0.8
    mask[3, 1, 0] = 1
    np.testing.assert_allclose(valid_fractions(mask), [0.5, 0.0, 1.0, 0.8])
    assert valid_fractions(np.zeros((0, 3, 3), dtype=np.uint8)).shape == (0,)


def test_valid_fraction_count_on_real_patch(testpatch):
    eop = testpatch / "TestEOPatch"
    clm = np.load(eop / "mask" / "CLM.npy", allow_pickle=False)[..., 0]
    fractions = valid_fractions(clm)
    # Independent: IS_VALID = IS_DATA & ~CLM, and IS_DATA is all ones on this patch.
    is_valid = np.load(eop / "mask" / "IS_VALID.npy", allow_pickle=False)[..., 0]
    expected = is_valid.reshape(len(is_valid), -1).mean(axis=1)
    np.testing.assert_allclose(fractions, expected, rtol=0, atol=1e-12)
    assert (fractions >= 0.8).sum() == (expected >= 0.8).sum()
    assert 0 < (fractions >= 0.8).sum() < len(fractions)


@pytest.fixture(scope="module")
def real_series(testpatch):
    """NDVI (68, 1, 101, 100), CLM (68, 101, 100) and dates of the real patch."""
    eop = testpatch / "TestEOPatch"
    ndvi = np.load(eop / "data" / "NDVI.npy", allow_pickle=False)
    clm = np.load(eop / "mask" / "CLM.npy", allow_pickle=False)[..., 0]
    stamps = json.loads((eop / "timestamps.json").read_text())
    dates = [dt.date.fromisoformat(s[:10]) for s in stamps]
    return np.moveaxis(ndvi, -1, 1).astype(np.float32), clm, dates


def write_pair(tmp_path, data, clm, dates, grid=None):
    grid = grid or patch_grid()
    stack, mask = tmp_path / "stack.tif", tmp_path / "clm.tif"
    write_stack(str(stack), TimeStack(data, list(dates), ["NDVI"], grid, {"SOURCE": "test"}))
    write_stack(str(mask), TimeStack(clm[:, np.newaxis].astype(np.uint8), list(dates), ["CLM"], grid, {"METHOD": "scl"}),
                kind="cloudmask", nodata=255)
    return str(stack), str(mask)


def test_filter_scenes_file_on_real_patch(real_series, tmp_path):
    data, clm, dates = real_series
    clm = clm.copy()
    clm[:, :, :10] = 255  # a strip without data on every date: it must not count
    stack, mask = write_pair(tmp_path, data, clm, dates)
    kept = filter_scenes_file(stack, mask, str(tmp_path / "out.tif"), str(tmp_path / "out_clm.tif"), min_valid_fraction=0.8).dates

    observed = clm[:, :, 10:]
    clear_share = (observed == 0).reshape(len(dates), -1).mean(axis=1)
    expected_idx = np.flatnonzero(clear_share >= 0.8)
    assert kept == [dates[i] for i in expected_idx]

    out = read_stack(str(tmp_path / "out.tif"))
    assert out.dates == kept and out.bands == ["NDVI"]
    np.testing.assert_array_equal(out.data, data[expected_idx])
    assert out.tags["SOURCE"] == "test" and float(out.tags["FILTER_MIN_VALID"]) == 0.8
    np.testing.assert_allclose(json.loads(out.tags["FILTER_VALID_FRACTIONS"]), clear_share[expected_idx], atol=1e-6)
    out_mask = read_stack(str(tmp_path / "out_clm.tif"))
    assert out_mask.dates == kept and out_mask.bands == ["CLM"] and out_mask.data.dtype == np.uint8
    assert out_mask.tags["METHOD"] == "scl" and out_mask.tags["LC_KIND"] == "cloudmask"
    np.testing.assert_array_equal(out_mask.data[:, 0], clm[expected_idx])
    with rasterio.open(tmp_path / "out_clm.tif") as src:
        assert src.nodata == 255


def test_threshold_zero_keeps_all_and_one_keeps_only_clear(tmp_path):
    dates = [dt.date(2020, 1, d) for d in (1, 2, 3)]
    clm = np.zeros((3, 4, 4), dtype=np.uint8)
    clm[1, 0, 0] = 1
    clm[2] = 255  # no data at all: fraction 0.0
    data = np.ones((3, 1, 4, 4), dtype=np.float32)
    stack, mask = write_pair(tmp_path, data, clm, dates, patch_grid(4, 4))
    assert filter_scenes_file(stack, mask, str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), min_valid_fraction=0.0).dates == dates
    assert filter_scenes_file(stack, mask, str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), min_valid_fraction=1.0).dates == dates[:1]


def test_no_date_passes_names_the_best(tmp_path):
    dates = [dt.date(2020, 1, d) for d in (1, 2, 3)]
    clm = np.ones((3, 4, 4), dtype=np.uint8)
    clm[1, :2] = 0  # the best date: 8 of 16 clear
    clm[2, 0] = 0
    stack, mask = write_pair(tmp_path, np.ones((3, 1, 4, 4), dtype=np.float32), clm, dates, patch_grid(4, 4))
    with pytest.raises(LandCoverError) as err:
        filter_scenes_file(stack, mask, str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), min_valid_fraction=0.8)
    assert err.value.argument == "min_valid_fraction"
    assert "2020-01-02" in str(err.value) and "50" in str(err.value) and "Lower" in str(err.value)
    assert not (tmp_path / "a.tif").exists() and not (tmp_path / "b.tif").exists()


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_fraction_outside_unit_interval(tmp_path, fraction):
    dates = [dt.date(2020, 1, 1)]
    stack, mask = write_pair(tmp_path, np.ones((1, 1, 4, 4), np.float32), np.zeros((1, 4, 4)), dates, patch_grid(4, 4))
    with pytest.raises(LandCoverError) as err:
        filter_scenes_file(stack, mask, str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), min_valid_fraction=fraction)
    assert err.value.argument == "min_valid_fraction"


def test_mask_of_other_dates_or_grid_is_refused(tmp_path):
    dates = [dt.date(2020, 1, 1), dt.date(2020, 1, 6)]
    stack, _ = write_pair(tmp_path, np.ones((2, 1, 4, 4), np.float32), np.zeros((2, 4, 4)), dates, patch_grid(4, 4))
    other_dates = tmp_path / "other_dates.tif"
    write_stack(str(other_dates), TimeStack(np.zeros((2, 1, 4, 4), np.uint8), [dates[0], dt.date(2020, 1, 11)], ["CLM"],
                                            patch_grid(4, 4)), kind="cloudmask", nodata=255)
    other_grid = tmp_path / "other_grid.tif"
    write_stack(str(other_grid), TimeStack(np.zeros((2, 1, 4, 4), np.uint8), dates, ["CLM"], patch_grid(4, 4, x0=465191.05)),
                kind="cloudmask", nodata=255)
    not_a_mask = tmp_path / "not_a_mask.tif"
    write_stack(str(not_a_mask), TimeStack(np.zeros((2, 1, 4, 4), np.float32), dates, ["B04"], patch_grid(4, 4)))
    for bad, hint in ((other_dates, "2020-01-06"), (other_grid, "grid"), (not_a_mask, "CLM")):
        with pytest.raises(LandCoverError) as err:
            filter_scenes_file(stack, str(bad), str(tmp_path / "a.tif"), str(tmp_path / "b.tif"))
        assert err.value.argument == "mask_path"
        assert hint in str(err.value)


def test_outputs_may_not_overwrite_inputs(tmp_path):
    dates = [dt.date(2020, 1, 1)]
    stack, mask = write_pair(tmp_path, np.ones((1, 1, 4, 4), np.float32), np.zeros((1, 4, 4)), dates, patch_grid(4, 4))
    with pytest.raises(LandCoverError):
        filter_scenes_file(stack, mask, stack, str(tmp_path / "b.tif"))
    with pytest.raises(LandCoverError):
        filter_scenes_file(stack, mask, str(tmp_path / "a.tif"), mask)


def test_filter_to_vrt_copies_no_pixel_and_reads_the_same(real_series, tmp_path):
    """A .vrt output lists the kept dates' bands of the input: same stack for every reader, pixels not rewritten."""
    from lc_plugin.timeseries.interpolate import interpolate_file

    data, clm, dates = real_series
    stack, mask = write_pair(tmp_path, data, clm, dates)
    kept = filter_scenes_file(stack, mask, str(tmp_path / "f.tif"), str(tmp_path / "f_clm.tif"), min_valid_fraction=0.8).dates
    assert filter_scenes_file(stack, mask, str(tmp_path / "f.vrt"), str(tmp_path / "f_clm.vrt"), min_valid_fraction=0.8).dates == kept
    for tif, vrt in (("f.tif", "f.vrt"), ("f_clm.tif", "f_clm.vrt")):
        a, b = read_stack(str(tmp_path / tif)), read_stack(str(tmp_path / vrt))
        assert (a.dates, a.bands, a.grid.transform, a.grid.crs) == (b.dates, b.bands, b.grid.transform, b.grid.crs)
        np.testing.assert_array_equal(a.data, b.data)
        assert {k: v for k, v in a.tags.items() if k != "AREA_OR_POINT"} == {k: v for k, v in b.tags.items() if k != "AREA_OR_POINT"}
        with rasterio.open(tmp_path / vrt) as src:
            assert src.descriptions[0] == f"{kept[0].isoformat()} {a.bands[0]}" and src.tags(1)["DATE"] == kept[0].isoformat()
    text = (tmp_path / "f.vrt").read_text()
    assert '<SourceFilename relativeToVRT="1">stack.tif</SourceFilename>' in text  # moves with its folder
    assert (tmp_path / "f.vrt").stat().st_size < 0.05 * (tmp_path / "f.tif").stat().st_size
    interpolate_file(str(tmp_path / "f.tif"), str(tmp_path / "i_tif.tif"), mask_path=str(tmp_path / "f_clm.tif"), step_days=30)
    interpolate_file(str(tmp_path / "f.vrt"), str(tmp_path / "i_vrt.tif"), mask_path=str(tmp_path / "f_clm.vrt"), step_days=30)
    np.testing.assert_array_equal(read_stack(str(tmp_path / "i_tif.tif")).data, read_stack(str(tmp_path / "i_vrt.tif")).data)


def test_dates_left_out_by_the_user_are_dropped_whatever_their_clear_fraction(tmp_path):
    dates = [dt.date(2020, 1, d) for d in (1, 2, 3)]
    data = np.arange(3, dtype=np.float32).reshape(3, 1, 1, 1) * np.ones((3, 1, 4, 4), dtype=np.float32)
    stack, mask = write_pair(tmp_path, data, np.zeros((3, 4, 4)), dates, patch_grid(4, 4))
    out = str(tmp_path / "a.tif")
    kept = filter_scenes_file(stack, mask, out, str(tmp_path / "b.tif"), min_valid_fraction=0.0, exclude_dates=[dates[1], dt.date(2021, 1, 1)]).dates
    assert kept == [dates[0], dates[2]]
    assert read_stack(out).data[:, 0, 0, 0].tolist() == [0.0, 2.0]
