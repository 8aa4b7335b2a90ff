"""The fast paths equal their references on real data (speed itself is measured only in bench/).

- cloud probabilities through the numba tree kernel and through onnxruntime vs s2cloudless's own
  detector on the real L1C scene, and the fallback when numba is missing;
- windowed / threaded interpolation vs the whole-array computation, and eo-learn's edge rule;
- the window-by-window StackWriter vs write_stack, and the windowed scene filter;
- ONNX class labels vs LightGBM's own predict on real spectra.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.io.rasters import Grid, StackWriter, TimeStack, file_windows, read_stack, write_stack
from lc_plugin.timeseries.interpolate import date_grid, interpolate_file, interpolate_linear
from lc_plugin.timeseries.scenes import filter_scenes_file

S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]


def grid_of(width: int, height: int) -> Grid:
    return Grid(CRS.from_epsg(32633), from_origin(465180.0, 5080250.0, 10.0, 10.0), width, height)


@pytest.fixture(scope="module")
def scene_crop(s2cloudless_scene):
    """Three 'dates' of the real L1C scene (shifted crops), s2cloudless's ten bands."""
    from lc_plugin.timeseries.clouds import S2CLOUDLESS_BANDS

    im = np.load(s2cloudless_scene)["s2_im"][0][..., [S2_BANDS.index(b) for b in S2CLOUDLESS_BANDS]]
    return np.stack([im[0:192, 0:160], im[300:492, 100:260], im[600:792, 300:460]]).astype(np.float32)


@pytest.fixture(scope="module")
def cloud_cache(tmp_path_factory):
    """The converted model is cached in a test folder, not the user's cache."""
    import os

    from lc_plugin.timeseries import clouds

    folder = tmp_path_factory.mktemp("lc-cache")
    old = os.environ.get("LC_PLUGIN_CACHE")
    os.environ["LC_PLUGIN_CACHE"] = str(folder)
    clouds._onnx_cloud_session.cache_clear()
    yield folder
    clouds._onnx_cloud_session.cache_clear()
    if old is None:
        os.environ.pop("LC_PLUGIN_CACHE", None)
    else:
        os.environ["LC_PLUGIN_CACHE"] = old


def test_onnx_cloud_probabilities_equal_s2cloudless(scene_crop, cloud_cache):
    pytest.importorskip("s2cloudless")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxmltools")
    from s2cloudless import S2PixelCloudDetector

    from lc_plugin.timeseries.clouds import s2cloudless_masks, s2cloudless_probabilities

    detector = S2PixelCloudDetector(threshold=0.4, average_over=4, dilation_size=2, all_bands=False)
    ref_probs = detector.get_cloud_probability_maps(scene_crop)
    ref_masks = detector.get_cloud_masks(scene_crop)

    probs = s2cloudless_probabilities(scene_crop, engine="onnxruntime")
    assert probs.dtype == np.float32 and probs.shape == ref_probs.shape
    np.testing.assert_allclose(probs, ref_probs, rtol=0, atol=1e-4)
    masks = s2cloudless_masks(probs, 0.4, 4, 2)
    assert 0.05 < ref_masks.mean() < 0.95  # the crops have clouds and clear sky
    assert (masks == ref_masks).mean() >= 0.999
    assert list(cloud_cache.glob("s2cloudless-*.onnx")), "the converted model is cached"

    # s2cloudless's booster with all threads is the same model, bit for bit.
    np.testing.assert_array_equal(s2cloudless_probabilities(scene_crop, engine="lightgbm"), ref_probs)


def test_numba_cloud_probabilities_equal_s2cloudless_bit_for_bit(scene_crop):
    pytest.importorskip("s2cloudless")
    pytest.importorskip("numba")
    from s2cloudless import S2PixelCloudDetector

    from lc_plugin.timeseries.clouds import _choose_engine, s2cloudless_masks, s2cloudless_probabilities

    detector = S2PixelCloudDetector(threshold=0.4, average_over=4, dilation_size=2, all_bands=False)
    ref_probs = detector.get_cloud_probability_maps(scene_crop)
    ref_masks = detector.get_cloud_masks(scene_crop)
    assert _choose_engine("auto") == "numba"

    probs = s2cloudless_probabilities(scene_crop, engine="numba")
    assert probs.dtype == np.float32 and probs.shape == ref_probs.shape
    np.testing.assert_array_equal(probs, ref_probs)
    assert 0.05 < ref_masks.mean() < 0.95
    np.testing.assert_array_equal(s2cloudless_masks(probs, 0.4, 4, 2), ref_masks)

    # NaN pixels are skipped (a gathered, non-contiguous subset goes through the kernel).
    holes = scene_crop.copy()
    holes[:, ::3, ::5, 2] = np.nan
    with_holes = s2cloudless_probabilities(holes, engine="numba")
    assert np.isnan(with_holes[:, ::3, ::5]).all()
    keep = ~np.isnan(with_holes)
    np.testing.assert_array_equal(with_holes[keep], ref_probs[keep])


def test_cloud_engine_falls_back_without_numba(scene_crop, cloud_cache, monkeypatch):
    """Without numba (a QGIS Python without it), "auto" uses onnxruntime, then LightGBM."""
    pytest.importorskip("s2cloudless")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxmltools")
    from lc_plugin.core.errors import LandCoverError
    from lc_plugin.timeseries import clouds, trees

    def missing(module):
        if module.startswith(("numba", "onnx")):
            raise LandCoverError(f"no {module}")
        return __import__(module)

    monkeypatch.setattr(clouds, "trees_available", lambda: False)
    assert clouds._choose_engine("auto") == "onnxruntime"
    crop = scene_crop[:, :40, :40]
    np.testing.assert_allclose(clouds.s2cloudless_probabilities(crop, engine="auto"), clouds.s2cloudless_probabilities(crop, engine="lightgbm"), atol=1e-4)

    monkeypatch.setattr(trees, "require", missing)
    assert not trees.available()
    monkeypatch.setattr(clouds, "trees_available", trees.available)
    monkeypatch.setattr(clouds, "require", missing)
    assert clouds._choose_engine("auto") == "lightgbm"


def test_cloud_engine_is_checked(scene_crop):
    from lc_plugin.core.errors import LandCoverError
    from lc_plugin.timeseries.clouds import s2cloudless_probabilities

    with pytest.raises(LandCoverError) as err:
        s2cloudless_probabilities(scene_crop[:, :2, :2], engine="gpu")
    assert err.value.argument == "engine"


@pytest.fixture(scope="module")
def big_ndvi(testpatch):
    """The real NDVI series tiled to 300×520 px (more than one 256-px window each way)."""
    eop = testpatch / "TestEOPatch"
    ndvi = np.moveaxis(np.load(eop / "data" / "NDVI.npy", allow_pickle=False), -1, 1).astype(np.float32)
    valid = np.load(eop / "mask" / "IS_VALID.npy", allow_pickle=False)[..., 0].astype(bool)
    dates = [dt.date.fromisoformat(s[:10]) for s in json.loads((eop / "timestamps.json").read_text())]
    ndvi = np.tile(ndvi, (1, 1, 3, 6))[:, :, :300, :520]
    valid = np.tile(valid, (1, 3, 6))[:, :300, :520].copy()
    valid[:, 250:, 400:] = False  # a corner with no valid observation at all
    return ndvi, valid, dates


def test_threaded_blocks_equal_one_block(big_ndvi):
    ndvi, valid, dates = big_ndvi
    days = np.array([d.toordinal() for d in dates], dtype=float)
    targets = np.array([d.toordinal() for d in date_grid(dates[0], dates[-1], 16)], dtype=float)
    serial = interpolate_linear(ndvi, valid, days, targets, threads=1)
    threaded = interpolate_linear(ndvi, valid, days, targets, threads=4)
    np.testing.assert_array_equal(threaded, serial)
    assert np.isnan(serial[:, :, 250:, 400:]).all() and not np.isnan(serial[:, :, :250]).any()


def test_edges_nan_is_eolearn_rule(big_ndvi):
    """eo-learn's LinearInterpolationTask: numpy.interp, NaN outside the pixel's valid span."""
    ndvi, valid, dates = big_ndvi
    ndvi, valid = ndvi[:, :, :40, :40], valid[:, :40, :40].copy()
    valid[:20] &= np.arange(40)[np.newaxis, :, np.newaxis] > 10  # late starts for some rows
    days = np.array([d.toordinal() for d in dates], dtype=float)
    targets = np.arange(days[0] - 20, days[-1] + 40, 16.0)
    out = interpolate_linear(ndvi, valid, days, targets, edges="nan")
    for r, c in [(0, 0), (5, 7), (15, 30), (39, 39), (11, 3)]:
        ok = valid[:, r, c]
        x, y = days[ok], ndvi[ok, 0, r, c].astype(np.float64)
        ux, inverse = np.unique(x, return_inverse=True)
        uy = np.bincount(inverse, weights=y) / np.bincount(inverse)
        expected = np.interp(targets, ux, uy, left=np.nan, right=np.nan)
        np.testing.assert_allclose(out[:, 0, r, c], expected, rtol=0, atol=1e-5, err_msg=str((r, c)))


def test_windowed_interpolate_file_equals_arrays(big_ndvi, tmp_path):
    ndvi, valid, dates = big_ndvi
    grid = grid_of(520, 300)
    write_stack(str(tmp_path / "s.tif"), TimeStack(ndvi, dates, ["NDVI"], grid))
    clm = np.where(valid, 0, 1).astype(np.uint8)[:, np.newaxis]
    write_stack(str(tmp_path / "m.tif"), TimeStack(clm, dates, ["CLM"], grid), kind="cloudmask", nodata=255)
    assert len(file_windows(300, 520, 4 * 68)) == 2
    targets = interpolate_file(str(tmp_path / "s.tif"), str(tmp_path / "o.tif"), mask_path=str(tmp_path / "m.tif")).dates
    out = read_stack(str(tmp_path / "o.tif"))
    days = np.array([d.toordinal() for d in dates], dtype=float)
    expected = interpolate_linear(ndvi, valid, days, np.array([d.toordinal() for d in targets], dtype=float))
    np.testing.assert_array_equal(out.data, expected)
    assert out.dates == targets and out.bands == ["NDVI"]


def test_file_windows_are_tile_aligned_and_bounded():
    windows = file_windows(1000, 2000, 70 * 13 * 4, budget_bytes=256 * 1024 * 1024)
    covered = np.zeros((1000, 2000), dtype=np.int32)
    for w in windows:
        assert w.row_off % 256 == 0 and w.col_off % 256 == 0
        assert w.height * w.width * 70 * 13 * 4 <= 256 * 1024 * 1024
        covered[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
    assert (covered == 1).all()


def test_stack_writer_equals_write_stack(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.random((4, 2, 300, 270)).astype(np.float32)
    data[1, 0, :5, :5] = np.nan
    dates = [dt.date(2017, 5, 1) + dt.timedelta(days=10 * i) for i in range(4)]
    grid = grid_of(270, 300)
    write_stack(str(tmp_path / "a.tif"), TimeStack(data, dates, ["B04", "B08"], grid, {"X": "1"}))
    with StackWriter(str(tmp_path / "b.tif"), dates, ["B04", "B08"], grid, {"X": "1"}) as dst:
        for w in file_windows(300, 270, 1, budget_bytes=256 * 256):
            dst.write(data[:, :, w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width], w)
    a, b = read_stack(str(tmp_path / "a.tif")), read_stack(str(tmp_path / "b.tif"))
    np.testing.assert_array_equal(a.data, b.data)
    assert (a.dates, a.bands) == (b.dates, b.bands) and b.tags["X"] == "1"
    with rasterio.open(tmp_path / "a.tif") as ra, rasterio.open(tmp_path / "b.tif") as rb:
        assert ra.descriptions == rb.descriptions

    with pytest.raises(RuntimeError):
        with StackWriter(str(tmp_path / "c.tif"), dates, ["B04", "B08"], grid) as dst:
            dst.write(data[:2], dates=slice(0, 2))
            raise RuntimeError("stop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif"]


def test_windowed_filter_keeps_exact_pixels(tmp_path):
    rng = np.random.default_rng(4)
    data = rng.random((5, 3, 300, 280)).astype(np.float32)
    dates = [dt.date(2017, 6, 1) + dt.timedelta(days=5 * i) for i in range(5)]
    clm = np.zeros((5, 1, 300, 280), dtype=np.uint8)
    clm[1] = 1  # date 2 fully cloudy
    clm[3, 0, :200] = 1  # date 4 two-thirds cloudy
    grid = grid_of(280, 300)
    write_stack(str(tmp_path / "s.tif"), TimeStack(data, dates, ["B02", "B03", "B04"], grid))
    write_stack(str(tmp_path / "m.tif"), TimeStack(clm, dates, ["CLM"], grid), kind="cloudmask", nodata=255)
    filtered = filter_scenes_file(str(tmp_path / "s.tif"), str(tmp_path / "m.tif"), str(tmp_path / "fs.tif"), str(tmp_path / "fm.tif"), min_valid_fraction=0.5)
    assert filtered.dates == [dates[0], dates[2], dates[4]]
    out = read_stack(str(tmp_path / "fs.tif"))
    np.testing.assert_array_equal(out.data, data[[0, 2, 4]])
    np.testing.assert_array_equal(read_stack(str(tmp_path / "fm.tif")).data, clm[[0, 2, 4]])


def test_onnx_labels_equal_lightgbm(testpatch, tmp_path):
    """classify_file (onnxruntime) gives LightGBM's own labels on real 13-band spectra."""
    pytest.importorskip("lightgbm")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxmltools")
    import onnx

    from lc_plugin.core.classes import make_class_table
    from lc_plugin.io.rasters import read_class_raster
    from lc_plugin.ml.boosting import fit_lightgbm, model_to_onnx
    from lc_plugin.ml.classify import classify_file
    from lc_plugin.timeseries.features import feature_block, feature_layout

    scenes = np.load(testpatch / "REFERENCE_SCENES.npy", allow_pickle=False)  # (5, 101, 100, 13)
    data = np.ascontiguousarray(np.moveaxis(scenes, -1, 1))
    lulc = np.load(testpatch / "TestEOPatch" / "mask_timeless" / "LULC.npy", allow_pickle=False)[..., 0]
    dates = [dt.date(2017, 7, 1) + dt.timedelta(days=10 * i) for i in range(5)]
    x = feature_block(data, S2_BANDS)
    y = lulc.reshape(-1).astype(np.int64)
    train = (y > 0) & np.isfinite(x).all(axis=1)
    model = fit_lightgbm(x[train], y[train], n_estimators=40)
    classes = sorted(set(y[train].tolist()))
    meta = {
        "lc_model_type": "lightgbm-pixel",
        "lc_classes": make_class_table({c: "" for c in classes}).to_json(),
        "lc_feature_names": json.dumps(feature_layout(dates, S2_BANDS)),
        "lc_dates": json.dumps([d.isoformat() for d in dates]),
        "lc_bands": json.dumps(S2_BANDS),
    }
    onnx.save(model_to_onnx(model, x.shape[1], meta), str(tmp_path / "m.onnx"))
    write_stack(str(tmp_path / "s.tif"), TimeStack(data, dates, S2_BANDS, grid_of(100, 101), {"LC_CLOUD_MASKED": "synthetic"}))
    classify_file(str(tmp_path / "m.onnx"), str(tmp_path / "s.tif"), str(tmp_path / "c.tif"), block_rows=40)
    labels, _, _ = read_class_raster(str(tmp_path / "c.tif"))
    native = np.asarray(classes)[np.argmax(model.booster_.predict(x, num_threads=2), axis=1)]
    np.testing.assert_array_equal(labels.reshape(-1), native)
    assert len(np.unique(native)) > 1
