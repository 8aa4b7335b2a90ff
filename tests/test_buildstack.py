"""Time stacks from rasters made by other tools: per-band GeoTIFFs of the real Earth Search products
(tests/data/s2-l2a-timeseries) named as such tools name them, through cloud masks, interpolation,
training and classification."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine

from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import Grid, read_stack, read_stack_info
from lc_plugin.sources.buildstack import build_stack, collect_layers, parse_date_text

TIMESERIES = Path(__file__).resolve().parent / "data" / "s2-l2a-timeseries"
DAYS = ["20230810", "20230813", "20230815", "20230818", "20230820"]


def product(day: str) -> Path:
    return next(TIMESERIES.glob(f"S2?_33TWM_{day}_0_L2A"))


def to_gtiff(src_path: Path, out: Path, **extra) -> Path:
    """The real JPEG2000 band as a plain GeoTIFF (what SCP, sen2r or an Earth Engine export hands over)."""
    with rasterio.open(src_path) as src:
        profile = {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1, "dtype": src.dtypes[0],
                   "crs": src.crs, "transform": src.transform, "nodata": 0, **extra}
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(src.read(1), 1)
    return out


@pytest.fixture(scope="module")
def per_band_files(tmp_path_factory) -> list[str]:
    """T33TWM_<date>_<band>.tif for 5 dates × B02, B03, B04, B08, SCL (25 GeoTIFFs, uint16 DN / uint8 classes)."""
    folder = tmp_path_factory.mktemp("per-band")
    return [str(to_gtiff(product(day) / f"{band}.tif", folder / f"T33TWM_{day}_{band}.tif")) for day in DAYS for band in ["B02", "B03", "B04", "B08", "SCL"]]


def test_dates_and_bands_come_from_the_file_names(per_band_files, tmp_path):
    out = str(tmp_path / "stack.tif")
    result = build_stack(per_band_files, out)
    stack = read_stack(out)
    assert [d.strftime("%Y%m%d") for d in stack.dates] == DAYS and stack.bands == ["B02", "B03", "B04", "B08", "SCL"]
    assert result.bands == stack.bands
    for t, day in enumerate(DAYS):
        with rasterio.open(product(day) / "B04.tif") as src:
            dn = src.read(1).astype(np.float64)
        with rasterio.open(product(day) / "SCL.tif") as src:
            scl = src.read(1)
        np.testing.assert_allclose(stack.band("B04")[t], np.where(dn > 0, dn * 1e-4, np.nan), atol=1e-6)  # uint16 → × 0.0001
        np.testing.assert_array_equal(stack.band("SCL")[t], scl)  # classes as they are
    with rasterio.open(out) as src:
        assert src.descriptions[0] == "2023-08-10 B02" and src.dtypes[0] == "float32"
    assert json.loads(stack.tags["ITEM_IDS"])[0] == [f"T33TWM_20230810_{b}.tif" for b in ["B02", "B03", "B04", "B08", "SCL"]]


def test_a_stack_from_other_files_runs_through_the_whole_chain(per_band_files, tmp_path):
    """SCL cloud masks → interpolation → LightGBM training → classification on a built stack."""
    pytest.importorskip("lightgbm")
    pytest.importorskip("onnxruntime")
    from lc_plugin.core.classes import ClassTable, LandCoverClass
    from lc_plugin.io.rasters import write_class_raster
    from lc_plugin.ml.classify import classify_file
    from lc_plugin.ml.train import train_classifier
    from lc_plugin.timeseries.clouds import cloud_masks_file
    from lc_plugin.timeseries.interpolate import interpolate_file

    stack = str(tmp_path / "stack.tif")
    build_stack(per_band_files, stack)
    clm = str(tmp_path / "clm.tif")
    assert cloud_masks_file(stack, clm, method="auto").method == "scl"
    masks = read_stack(clm)
    scl = read_stack(stack).band("SCL")
    np.testing.assert_array_equal(masks.data[:, 0], np.isin(scl, [3, 8, 9, 10]).astype(np.uint8))
    interpolated = str(tmp_path / "interp.tif")
    dates = interpolate_file(stack, interpolated, mask_path=clm, step_days=5).dates
    assert dates == [date(2023, 8, 10), date(2023, 8, 15), date(2023, 8, 20)]
    values = read_stack(interpolated)
    assert values.bands == ["B02", "B03", "B04", "B08"] and np.isfinite(values.data).all()
    # Reference: the brighter and the darker half of the mean NIR (two classes the pixels can tell apart).
    nir = values.band("B08").mean(axis=0)
    labels = np.where(nir > np.median(nir), 1, 2).astype(np.uint8)
    reference = str(tmp_path / "reference.tif")
    classes = ClassTable([LandCoverClass(1, "bright", "#00aa00"), LandCoverClass(2, "dark", "#005500")])
    write_class_raster(reference, labels, values.grid, classes)
    model = str(tmp_path / "model.onnx")
    summary = train_classifier([interpolated], [reference], model, samples_per_class=300, n_estimators=20, seed=1)
    assert summary
    out = str(tmp_path / "map.tif")
    classify_file(model, interpolated, out)
    with rasterio.open(out) as src:
        mapped = src.read(1)
    assert (mapped == labels).mean() > 0.9


def test_dates_from_a_list_or_a_pattern_and_bands_from_a_list(tmp_path):
    """Four-band files with no date in their names: dates from DATES; then from a pattern on other names."""
    grid = Grid(CRS.from_epsg(32633), Affine(10, 0, 500000, 0, -10, 5100000), 4, 3)
    data = np.arange(4 * 3 * 4, dtype=np.float32).reshape(4, 3, 4) / 100
    paths = []
    for i in range(2):
        path = tmp_path / (f"scene_{i}.tif" if i == 0 else "FORCE_2023213_LEVEL2_BOA.tif")
        with rasterio.open(path, "w", driver="GTiff", width=4, height=3, count=4, dtype="float32", crs=grid.crs, transform=grid.transform) as dst:
            dst.write(data + i)
        paths.append(str(path))
    out = str(tmp_path / "a.tif")
    build_stack(paths, out, dates=["2023-07-01", "20230801"], bands=["B02", "B03", "B04", "B08"])
    stack = read_stack(out)
    assert stack.dates == [date(2023, 7, 1), date(2023, 8, 1)]
    np.testing.assert_allclose(stack.data[1], data + 1)  # float files are reflectance already
    layers = collect_layers(paths[1:], date_pattern=r"FORCE_(\d{7})_", bands=["B02", "B03", "B04", "B08"])
    assert {la.date for la in layers} == {date(2023, 8, 1)}  # day 213 of 2023
    with pytest.raises(LandCoverError) as err:
        build_stack(paths, str(tmp_path / "b.tif"))
    assert err.value.argument == "dates" and "scene_0.tif" in str(err.value)
    with pytest.raises(LandCoverError) as err:
        build_stack(paths[1:], str(tmp_path / "c.tif"), date_pattern=r"(\d{7})", bands=["B02", "B03"])
    assert err.value.argument == "bands" and "4 band(s)" in str(err.value)
    assert not (tmp_path / "b.tif").exists() and not (tmp_path / "c.tif").exists()


def test_other_grids_are_warped_onto_the_first(per_band_files, tmp_path):
    """A 120 m file and the same pixels cut to 240 m in another CRS end up on one grid."""
    b04 = [p for p in per_band_files if p.endswith("20230813_B04.tif")][0]
    moved = tmp_path / "T33TWM_20230815_B04.tif"
    with rasterio.open(b04) as src:
        left, top = src.transform.c, src.transform.f
    from osgeo import gdal

    gdal.Warp(str(moved), b04, dstSRS="EPSG:3035", xRes=240, yRes=240)
    out = str(tmp_path / "grid.tif")
    build_stack([b04, str(moved)], out)
    _, bands, grid, _ = read_stack_info(out)
    assert (grid.width, grid.height, grid.transform.c, grid.transform.f, grid.crs.to_epsg()) == (40, 40, left, top, 32633)
    stack = read_stack(out)
    assert np.isfinite(stack.data[1, 0, 5:-5, 5:-5]).all()
    assert abs(np.nanmean(stack.data[1]) - np.nanmean(stack.data[0])) < 0.01


@pytest.mark.parametrize("text", ["2023-08-13", "20230813", "2023_08_13", "2023225"])
def test_date_forms(text):
    assert parse_date_text(text, "DATES") == date(2023, 8, 13)
