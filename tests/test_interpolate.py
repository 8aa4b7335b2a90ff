"""Temporal interpolation: hand-computed values, numpy.interp on the real NDVI series, the file step."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

import lc_plugin.timeseries.interpolate as interpolate_module
from lc_plugin.core.errors import Cancelled, LandCoverError
from lc_plugin.core.monitor import Monitor
from lc_plugin.io.rasters import Grid, TimeStack, read_stack, write_stack
from lc_plugin.timeseries.interpolate import all_finite, date_grid, interpolate_file, interpolate_linear, take_dates


def patch_grid(width: int = 100, height: int = 101, x0: float = 465181.05) -> Grid:
    return Grid(CRS.from_epsg(32633), from_origin(x0, 5080254.63, 9.9948, 9.9974), width, height)


def series(values, valid=None, bands: int = 1):
    """One pixel's series as (T, B, 1, 1) data and (T, 1, 1) valid."""
    v = np.asarray(values, dtype=np.float32)
    data = np.repeat(v[:, None, None, None], bands, axis=1)
    ok = np.ones(len(v), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    return data, ok[:, None, None]


def test_date_grid():
    start = dt.date(2017, 1, 1)
    assert date_grid(start, dt.date(2017, 1, 31), 10) == [start + dt.timedelta(days=d) for d in (0, 10, 20, 30)]
    assert date_grid(start, dt.date(2017, 1, 30), 10) == [start + dt.timedelta(days=d) for d in (0, 10, 20)]
    assert date_grid(start, start, 16) == [start]
    with pytest.raises(LandCoverError) as err:
        date_grid(start, dt.date(2017, 2, 1), 0)
    assert err.value.argument == "step_days"
    with pytest.raises(LandCoverError) as err:
        date_grid(start, dt.date(2016, 12, 31), 16)
    assert err.value.argument == "end"


def test_hand_computed_values_and_edge_hold():
    # valid on days 0, 10, 30 with values 0, 10, 50; day 20 is cloudy (its 999 must be ignored)
    data, valid = series([0, 10, 999, 50], [True, True, False, True])
    days = np.array([0, 10, 20, 30])
    targets = np.array([-10, 0, 5, 20, 25, 30, 45])
    out = interpolate_linear(data, valid, days, targets)
    assert out.shape == (7, 1, 1, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0, 0], [0, 0, 5, 30, 40, 50, 50])


def test_invalid_edges_hold_the_nearest_valid_value():
    data, valid = series([7, 1, 3, 9], [False, True, True, False])
    out = interpolate_linear(data, valid, np.array([0, 10, 20, 30]), np.array([0, 5, 15, 25, 30]))
    np.testing.assert_allclose(out[:, 0, 0, 0], [1, 1, 2, 3, 3])


def test_pixel_without_valid_observation_is_nan():
    data = np.arange(3 * 2 * 1 * 2, dtype=np.float32).reshape(3, 2, 1, 2)
    valid = np.ones((3, 1, 2), dtype=bool)
    valid[:, 0, 1] = False
    data[1, 1, 0, 0] = np.nan  # one band NaN makes that whole observation invalid
    out = interpolate_linear(data, valid, np.array([0, 1, 2]), np.array([0, 1, 2]))
    assert np.isnan(out[:, :, 0, 1]).all()
    # pixel 0, band 0: obs 1 dropped → interpolate between t=0 (0) and t=2 (8)
    np.testing.assert_allclose(out[:, 0, 0, 0], [0, 4, 8])
    np.testing.assert_allclose(out[:, 1, 0, 0], [2, 6, 10])


def test_same_day_observations_are_averaged():
    data, valid = series([0, 2, 4, 10], [True, True, True, True])
    days = np.array([0, 5, 5, 10])
    out = interpolate_linear(data, valid, days, np.array([5, 2.5]))
    np.testing.assert_allclose(out[:, 0, 0, 0], [3, 1.5])
    # a cloudy duplicate does not hide the clear one
    data, valid = series([0, 2, 4, 10], [True, False, True, True])
    np.testing.assert_allclose(interpolate_linear(data, valid, days, np.array([5]))[:, 0, 0, 0], [4])


def test_unsorted_days_give_the_same_result():
    rng = np.random.default_rng(3)
    data = rng.random((6, 2, 3, 4)).astype(np.float32)
    valid = rng.random((6, 3, 4)) > 0.3
    days = np.array([0, 3, 9, 12, 20, 31], dtype=float)
    targets = np.arange(-2, 35, 4, dtype=float)
    order = np.array([3, 0, 5, 1, 4, 2])
    np.testing.assert_array_equal(
        interpolate_linear(data, valid, days, targets), interpolate_linear(data[order], valid[order], days[order], targets)
    )


def reference_interp(values: np.ndarray, ok: np.ndarray, days: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """numpy.interp on one pixel's valid observations, same-day ones averaged."""
    if not ok.any():
        return np.full(targets.shape, np.nan)
    x, inverse = np.unique(days[ok], return_inverse=True)
    y = np.bincount(inverse, weights=values[ok].astype(np.float64)) / np.bincount(inverse)
    return np.interp(targets, x, y)


@pytest.fixture(scope="module")
def ndvi_series(testpatch):
    eop = testpatch / "TestEOPatch"
    ndvi = np.moveaxis(np.load(eop / "data" / "NDVI.npy", allow_pickle=False), -1, 1).astype(np.float32)
    valid = np.load(eop / "mask" / "IS_VALID.npy", allow_pickle=False)[..., 0].astype(bool)
    stamps = json.loads((eop / "timestamps.json").read_text())
    dates = [dt.date.fromisoformat(s[:10]) for s in stamps]
    return ndvi, valid, dates


def test_real_ndvi_equals_numpy_interp(ndvi_series, monkeypatch):
    ndvi, valid, dates = ndvi_series
    assert len(set(dates)) == len(dates) - 1  # two acquisitions on 2015-12-08
    days = np.array([d.toordinal() for d in dates], dtype=float)
    grid_dates = date_grid(dates[0], dates[-1], 16)
    targets = np.array([d.toordinal() for d in grid_dates], dtype=float)
    progress: list[float] = []
    monkeypatch.setattr(interpolate_module, "_BLOCK_ELEMENTS", 68 * 100 * 7)  # 7-row blocks: block edges are exercised
    out = interpolate_linear(ndvi, valid, days, targets, monitor=Monitor(progress.append))
    assert out.shape == (len(targets), 1, 101, 100)
    assert len(progress) > 10 and progress[-1] == pytest.approx(100.0)
    assert not np.isnan(out).any()  # every pixel has 37–44 valid observations

    rng = np.random.default_rng(0)
    pixels = [(r, c) for r, c in zip(rng.integers(0, 101, 300), rng.integers(0, 100, 300))]
    pixels += [(0, 0), (100, 99), (6, 0), (7, 0)]
    for r, c in pixels:
        expected = reference_interp(ndvi[:, 0, r, c], valid[:, r, c], days, targets)
        np.testing.assert_allclose(out[:, 0, r, c], expected, rtol=0, atol=1e-5, err_msg=f"pixel {(r, c)}")

    monkeypatch.setattr(interpolate_module, "_BLOCK_ELEMENTS", 1 << 25)
    np.testing.assert_allclose(interpolate_linear(ndvi, valid, days, targets), out, rtol=0, atol=1e-7)


def test_cancel(ndvi_series):
    ndvi, valid, dates = ndvi_series
    days = np.array([d.toordinal() for d in dates], dtype=float)
    with pytest.raises(Cancelled):
        interpolate_linear(ndvi, valid, days, days[:3], monitor=Monitor(is_cancelled=lambda: True))


# --- file level ---------------------------------------------------------------------------------


def write_inputs(tmp_path, ndvi, valid, dates, with_scl=True):
    n = len(dates)
    bands = ["NDVI", "SCL"] if with_scl else ["NDVI"]
    data = ndvi if not with_scl else np.concatenate([ndvi, np.where(valid, 4, 9)[:, None].astype(np.float32)], axis=1)
    stack, mask = tmp_path / "stack.tif", tmp_path / "clm.tif"
    write_stack(str(stack), TimeStack(np.ascontiguousarray(data), dates, bands, patch_grid(), {"FILTER_MIN_VALID": "0.8"}))
    clm = np.where(valid, 0, 1).astype(np.uint8)[:, None]
    clm[:, 0, 0, :3] = 255  # no data counts as not valid too
    write_stack(str(mask), TimeStack(clm, dates, ["CLM"], patch_grid()), kind="cloudmask", nodata=255)
    assert n == len(clm)
    return str(stack), str(mask)


def test_interpolate_file_round_trip(ndvi_series, tmp_path):
    ndvi, valid, dates = ndvi_series
    stack, mask = write_inputs(tmp_path, ndvi, valid, dates)
    messages: list[str] = []
    start, end = dt.date(2016, 1, 1), dt.date(2016, 12, 31)
    out_dates = interpolate_file(stack, str(tmp_path / "out.tif"), mask_path=mask, step_days=10, start=start, end=end,
                                 monitor=Monitor(log=messages.append)).dates
    assert out_dates == date_grid(start, end, 10) and out_dates[-1] == dt.date(2016, 12, 26)
    out = read_stack(str(tmp_path / "out.tif"))
    assert out.dates == out_dates and out.bands == ["NDVI"]  # SCL dropped
    assert out.tags["INTERPOLATION"] == "linear" and out.tags["STEP_DAYS"] == "10" and out.tags["LC_KIND"] == "interpolated"
    assert out.tags["FILTER_MIN_VALID"] == "0.8"
    assert out.grid.transform == patch_grid().transform and out.grid.crs == CRS.from_epsg(32633)

    used_valid = valid.copy()
    used_valid[:, 0, :3] = False
    days = np.array([d.toordinal() for d in dates], dtype=float)
    targets = np.array([d.toordinal() for d in out_dates], dtype=float)
    np.testing.assert_array_equal(out.data, interpolate_linear(ndvi, used_valid, days, targets))
    for r, c in [(0, 0), (0, 5), (50, 50)]:
        np.testing.assert_allclose(out.data[:, 0, r, c], reference_interp(ndvi[:, 0, r, c], used_valid[:, r, c], days, targets),
                                   rtol=0, atol=1e-5)
    assert not messages  # inside the observed period: no edge-hold note


def test_interpolate_file_defaults_and_no_mask(ndvi_series, tmp_path):
    ndvi, valid, dates = ndvi_series
    stack, _ = write_inputs(tmp_path, np.where(valid[:, None], ndvi, np.nan), valid, dates, with_scl=False)
    messages: list[str] = []
    out_dates = interpolate_file(
        stack, str(tmp_path / "out.tif"), start=dt.date(2015, 7, 1), monitor=Monitor(log=messages.append)
    ).dates
    assert out_dates[0] == dt.date(2015, 7, 1) and out_dates[-1] <= dates[-1] and out_dates[1] == dt.date(2015, 7, 17)
    assert any("nearest observation" in m for m in messages)  # 2015-07-01 is before the first date
    out = read_stack(str(tmp_path / "out.tif"))
    # No mask: NaN pixels are the invalid ones, so the result equals the masked interpolation.
    days = np.array([d.toordinal() for d in dates], dtype=float)
    targets = np.array([d.toordinal() for d in out_dates], dtype=float)
    np.testing.assert_array_equal(out.data, interpolate_linear(ndvi, valid, days, targets))
    assert out.tags["INTERPOLATION_MASKED"] == "no"


def test_interpolate_file_errors(tmp_path):
    dates = [dt.date(2020, 1, 1), dt.date(2020, 1, 11)]
    data = np.ones((2, 1, 4, 4), dtype=np.float32)
    stack = tmp_path / "s.tif"
    write_stack(str(stack), TimeStack(data, dates, ["B04"], patch_grid(4, 4)))
    out = str(tmp_path / "o.tif")
    with pytest.raises(LandCoverError) as err:
        interpolate_file(str(stack), out, step_days=0)
    assert err.value.argument == "step_days"
    with pytest.raises(LandCoverError) as err:
        interpolate_file(str(stack), out, start=dt.date(2020, 2, 1), end=dt.date(2020, 1, 1))
    assert err.value.argument == "end"

    misaligned = tmp_path / "m.tif"
    write_stack(str(misaligned), TimeStack(np.zeros((2, 1, 4, 4), np.uint8), dates, ["CLM"], patch_grid(4, 4, x0=0.0)),
                kind="cloudmask", nodata=255)
    with pytest.raises(LandCoverError) as err:
        interpolate_file(str(stack), out, mask_path=str(misaligned))
    assert err.value.argument == "mask_path"
    wrong_dates = tmp_path / "w.tif"
    write_stack(str(wrong_dates), TimeStack(np.zeros((1, 1, 4, 4), np.uint8), dates[:1], ["CLM"], patch_grid(4, 4)),
                kind="cloudmask", nodata=255)
    with pytest.raises(LandCoverError) as err:
        interpolate_file(str(stack), out, mask_path=str(wrong_dates))
    assert err.value.argument == "mask_path"

    cloudy = tmp_path / "c.tif"
    write_stack(str(cloudy), TimeStack(np.ones((2, 1, 4, 4), np.uint8), dates, ["CLM"], patch_grid(4, 4)),
                kind="cloudmask", nodata=255)
    with pytest.raises(LandCoverError) as err:
        interpolate_file(str(stack), out, mask_path=str(cloudy))
    assert err.value.argument == "stack_path" and "all pixels are cloudy or no data" in str(err.value)
    with pytest.raises(LandCoverError) as err:
        interpolate_file(str(stack), str(stack))
    assert err.value.argument == "out_path"
    assert not (tmp_path / "o.tif").exists()


def test_take_dates_and_all_finite_are_numpys():
    """The interpolation's fast gather and finiteness test give numpy's own results, on views too."""
    rng = np.random.default_rng(5)
    data = rng.random((7, 3, 10, 12)).astype(np.float32)
    data[2, 1, 3, 4] = np.nan
    data[5, 0, :, 2] = np.inf
    index = rng.integers(0, 7, (6, 12))
    for view in (data[:, :, 2:8], data[::-1, :, 2:8], data[:, ::2, 2:8, ::-1]):  # rows of a window, reversed axes
        np.testing.assert_array_equal(take_dates(view, index), np.take_along_axis(view, index[None, None], axis=0)[0])
        np.testing.assert_array_equal(all_finite(view), np.isfinite(view).all(axis=1))
