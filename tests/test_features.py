"""Feature layout and values, and class-balanced sampling, checked by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from lc_plugin.reference.sampling import allocate_quotas, sample_with_quotas
from lc_plugin.timeseries.features import INDICES, describe_layout_difference, feature_block, feature_layout, iter_feature_windows

D1, D2 = dt.date(2017, 5, 1), dt.date(2017, 6, 1)


def test_layout_is_date_major_bands_then_indices():
    names = feature_layout([D1, D2], ["B03", "B04", "B08", "B11", "SCL"])
    per_date = ["B03", "B04", "B08", "B11", "NDVI", "NDWI", "NDBI"]
    assert names == [f"2017-05-01_{n}" for n in per_date] + [f"2017-06-01_{n}" for n in per_date]


def test_layout_only_has_indices_whose_bands_exist():
    assert feature_layout([D1], ["B04", "B08"]) == ["2017-05-01_B04", "2017-05-01_B08", "2017-05-01_NDVI"]
    assert feature_layout([D1], ["B02"]) == ["2017-05-01_B02"]
    assert set(INDICES) == {"NDVI", "NDWI", "NDBI"}


def test_feature_values_by_hand():
    bands = ["B04", "B08", "SCL"]
    data = np.zeros((2, 3, 1, 2), np.float32)  # (T, B, h, w): 2 pixels
    data[0, 0] = [0.1, 0.2]  # B04, date 1
    data[0, 1] = [0.3, 0.2]  # B08, date 1
    data[1, 0] = [0.0, np.nan]  # date 2: zero denominator and missing value
    data[1, 1] = [0.0, 0.5]
    data[:, 2] = 4  # SCL is not a feature
    feats = feature_block(data, bands)
    assert feats.dtype == np.float32 and feats.shape == (2, 6)
    assert feature_layout([D1, D2], bands) == [
        "2017-05-01_B04", "2017-05-01_B08", "2017-05-01_NDVI", "2017-06-01_B04", "2017-06-01_B08", "2017-06-01_NDVI",
    ]
    np.testing.assert_allclose(feats[0, :3], [0.1, 0.3, 0.5], rtol=1e-6)  # (0.3-0.1)/(0.3+0.1)
    np.testing.assert_allclose(feats[1, :3], [0.2, 0.2, 0.0], atol=1e-7)
    assert feats[0, 3] == 0 and feats[0, 4] == 0 and np.isnan(feats[0, 5])  # 0/0 → NaN
    assert np.isnan(feats[1, 3]) and feats[1, 4] == np.float32(0.5) and np.isnan(feats[1, 5])  # NaN propagates


def test_feature_block_pixel_order_is_row_major():
    data = np.arange(2 * 1 * 2 * 3, dtype=np.float32).reshape(2, 1, 2, 3)
    feats = feature_block(data, ["B02"])
    # pixel (r, c) → row r*3+c; columns: date 1, date 2
    np.testing.assert_array_equal(feats[:, 0], data[0, 0].ravel())
    np.testing.assert_array_equal(feats[:, 1], data[1, 0].ravel())


def test_ndwi_and_ndbi_formulas():
    bands = ["B03", "B08", "B11"]
    data = np.array([0.2, 0.1, 0.3], np.float32).reshape(1, 3, 1, 1)
    feats = feature_block(data, bands)
    names = feature_layout([D1], bands)
    got = dict(zip(names, feats[0]))
    assert got["2017-05-01_NDWI"] == pytest.approx((0.2 - 0.1) / 0.3)
    assert got["2017-05-01_NDBI"] == pytest.approx((0.3 - 0.1) / 0.4)


def test_feature_block_rejects_wrong_shape():
    with pytest.raises(ValueError):
        feature_block(np.zeros((1, 2, 1, 1), np.float32), ["B04"])


def test_quotas_are_proportional_to_usable_pixels_and_never_exceed_them():
    # class a: 40 usable pixels, 20 wanted → 10/40 and 30/40 of 20; class b: only 5 exist → all of them
    np.testing.assert_array_equal(allocate_quotas([[10, 0], [30, 5]], 20), [[5, 0], [15, 5]])
    # thirds: 2/3 each, the two leftover pixels go to the first patches (ties by order)
    np.testing.assert_array_equal(allocate_quotas([[1], [1], [1]], 2), [[1], [1], [0]])
    # 0.495 vs 49.5: the larger remainder takes the last pixel; 1 + 100 usable, 50 wanted
    np.testing.assert_array_equal(allocate_quotas([[1], [100]], 50), [[0], [50]])
    # a patch that is already full cannot take a leftover pixel
    np.testing.assert_array_equal(allocate_quotas([[1], [3]], 4), [[1], [3]])
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 500, size=(30, 6))
    for per_class in (1, 7, 100, 10_000):
        q = allocate_quotas(counts, per_class)
        np.testing.assert_array_equal(q.sum(axis=0), np.minimum(counts.sum(axis=0), per_class))
        assert (q >= 0).all() and (q <= counts).all()


def test_sampling_patch_by_patch_draws_each_quota():
    labels = np.array([[1, 1, 2, 2, 0], [1, 3, 2, 2, 1]], np.uint8)
    usable = labels > 0
    usable[1, 4] = False
    idx = sample_with_quotas(labels, usable, np.array([2, 3, 0]), np.array([1, 2, 3]), np.random.default_rng(0))
    drawn = labels.ravel()[idx]
    assert np.count_nonzero(drawn == 1) == 2 and np.count_nonzero(drawn == 2) == 3 and not np.any(drawn == 3)
    assert usable.ravel()[idx].all() and np.all(np.diff(idx) > 0)
    # quota = usable count: the whole class, in order (the three usable class-1 pixels)
    whole = sample_with_quotas(labels, usable, np.array([3]), np.array([1]), np.random.default_rng(0))
    np.testing.assert_array_equal(whole, [0, 1, 5])


def test_describe_layout_difference():
    dates = [dt.date(2017, m, 1) for m in range(1, 8)]
    other = dates[:2] + [dt.date(2017, 3, 5)] + dates[3:]
    msgs = describe_layout_difference(dates, ["B04", "B08"], other, ["B04"])
    text = "; ".join(msgs)
    assert "B08" in text and "#3: 2017-03-01 vs 2017-03-05" in text
    msgs = describe_layout_difference(dates, ["B04"], dates[:5], ["B04", "B11"])
    assert msgs == [
        "the model has 7 dates, the stack has 5",
        "the model covers 2017-01-01 … 2017-07-01, the stack covers 2017-01-01 … 2017-05-01",
    ]
    assert describe_layout_difference(dates, ["B04"], dates, ["B11", "B04"]) == []
    assert "extra band(s) B11" in describe_layout_difference(dates, ["B04"], dates, ["B11", "B04"], exact_bands=True)[0]


@pytest.mark.parametrize(
    ("height", "width", "n_features", "block_rows", "budget"),
    [(30, 40, 21, 7, 1 << 28), (1000, 10980, 884, 256, 256 << 20), (600, 700, 5000, 1000, 64 << 20), (5, 3, 1, 1, 1)],
)
def test_feature_windows_cover_the_raster_once_within_budget(height, width, n_features, block_rows, budget):
    seen = np.zeros((height, width), np.int32)
    for win in iter_feature_windows(height, width, n_features, block_rows, budget):
        seen[win.toslices()] += 1
        assert win.height <= block_rows
        assert win.height * win.width * n_features * 4 <= max(budget, n_features * 4 * win.height)
        if win.width < width and win.width >= 256 and win.col_off + win.width < width:
            assert win.width % 256 == 0  # tile-aligned column chunks
    assert np.all(seen == 1)
