"""Sentinel-3 OLCI EFR products → 300 m TOA reflectance stacks (lc_plugin.sources.olci)."""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil

import numpy as np
import pytest
import rasterio
from osgeo import gdal
from rasterio.crs import CRS
from rasterio.transform import Affine

from lc_plugin.core.errors import InputError, LandCoverError
from lc_plugin.io.rasters import Grid, read_stack, write_raster
from lc_plugin.sources import olci
from tests import olci_products as op

START = dt.datetime(2019, 6, 1, 9, 50, 1, 123456)


def _patch(row: float = 20.0, col: float = 64.0, size_px: int = 300) -> Grid:
    """A 10 m patch grid of ``size_px`` pixels centred on product pixel (row, col)."""
    cx, cy = op.SwathGeometry().xy(np.array(row), np.array(col))
    half = size_px * 5.0
    return Grid(CRS.from_epsg(32633), Affine(10, 0, float(cx) - half, 0, -10, float(cy) + half), size_px, size_px)


def _expected(stack_grid: Grid, band: int) -> np.ndarray:
    """Reflectance of the product pixel nearest each output pixel centre, from the analytic swath geometry."""
    geometry = op.SwathGeometry()
    out = np.full((stack_grid.height, stack_grid.width), np.nan)
    for i in range(stack_grid.height):
        for j in range(stack_grid.width):
            x, y = stack_grid.transform * (j + 0.5, i + 0.5)
            r, c = geometry.pixel_at(x, y)
            if 0 <= r < op.ROWS and 0 <= c < op.COLUMNS:
                out[i, j] = op.expected_reflectance(band, r, c)
    return out


@pytest.fixture()
def product(tmp_path):
    return op.write_product(str(tmp_path / "products"), START)


def test_toa_reflectance_by_hand():
    # pi * 50 / (1500 * cos 60°) = 0.20944; detector 1 has F0 1000: pi * 30 / (1000 * cos 0°) = 0.094248
    rho = olci.toa_reflectance(np.array([50.0, 30.0, np.nan, 10.0]), np.array([1500.0, 1000.0]), np.array([0, 1, 0, -1]), np.array([60.0, 0.0, 0.0, 0.0]))
    assert rho[0] == pytest.approx(math.pi * 50 / 750, rel=1e-12)
    assert rho[1] == pytest.approx(0.0942477796, rel=1e-9)
    assert np.isnan(rho[2]) and np.isnan(rho[3])  # no radiance; no detector (fill value)


def test_tie_points_interpolate_linearly_between_every_64th_column():
    tie = np.array([[10.0, 74.0, 138.0], [20.0, 84.0, 148.0]])
    out = olci.interpolate_tie_points(tie, 1, 64, np.array([0, 1]), np.array([0, 32, 64, 100, 128]))
    np.testing.assert_allclose(out, [[10, 42, 74, 110, 138], [20, 52, 84, 120, 148]])


def test_manifest_of_the_real_product_gives_date_and_type(tmp_path):
    start = dt.datetime(2021, 10, 21, 7, 38, 27, 254946)  # the real manifest's own start time, unchanged
    product = olci.open_product(op.write_product(str(tmp_path), start), str(tmp_path))
    assert product.start == start and product.date == dt.date(2021, 10, 21)
    assert product.product_type == "OL_1_EFR___"


def test_reflectance_and_reprojection_at_known_coordinates(product):
    stack = olci.olci_stack([os.path.dirname(product)], _patch())
    assert stack.dates == [START.date()] and stack.bands == olci.OLCI_BANDS
    assert stack.data.shape == (1, 21, 10, 10)  # 3 km at 300 m, not resampled to 10 m
    assert stack.grid.transform.a == 300 and stack.grid.transform.e == -300
    assert (stack.grid.transform.c, stack.grid.transform.f) == (_patch().transform.c, _patch().transform.f)
    for band in (0, 7, 20):
        np.testing.assert_allclose(stack.data[0, band], _expected(stack.grid, band), rtol=2e-6)


def test_fill_values_and_invalid_pixels_become_nan_and_outside_the_swath_stays_nan(product):
    geometry = op.SwathGeometry()
    # Output pixel centred on product pixel (5, 7), whose radiance is the fill value, and a patch half off the swath.
    x, y = geometry.xy(np.array(5.0), np.array(7.0))
    patch = Grid(CRS.from_epsg(32633), Affine(10, 0, float(x) - 150, 0, -10, float(y) + 150), 30, 30)
    stack = olci.olci_stack([product], patch)
    assert stack.data.shape == (1, 21, 1, 1) and np.isnan(stack.data).all()
    x, y = geometry.xy(np.array(12.0), np.array(70.0))  # quality_flags marks product pixel (12, 70) invalid (bit 25)
    invalid = olci.olci_stack([product], Grid(CRS.from_epsg(32633), Affine(10, 0, float(x) - 150, 0, -10, float(y) + 150), 30, 30))
    x, y = geometry.xy(np.array(12.0), np.array(71.0))
    valid = olci.olci_stack([product], Grid(CRS.from_epsg(32633), Affine(10, 0, float(x) - 150, 0, -10, float(y) + 150), 30, 30))
    assert np.isnan(invalid.data).all() and np.isfinite(valid.data).all()
    edge = _patch(row=0.0, col=64.0, size_px=600)
    stack = olci.olci_stack([product], edge)
    finite = np.isfinite(stack.data[0, 0])
    assert 0.2 < finite.mean() < 0.8  # the swath's first row crosses the patch
    np.testing.assert_allclose(stack.data[0, 0], _expected(stack.grid, 0), rtol=2e-6)


def test_zip_gives_the_same_stack_and_dates_are_merged_and_filtered(tmp_path, product):
    folder = os.path.dirname(product)
    zipped = op.zip_product(product)
    from_zip = olci.olci_stack([zipped], _patch())
    from_folder = olci.olci_stack([product], _patch())
    np.testing.assert_array_equal(from_zip.data, from_folder.data)
    shutil.rmtree(product)
    op.write_product(folder, START + dt.timedelta(hours=1), op.SwathGeometry(x0=470_000.0))  # same day, another swath
    op.write_product(folder, START + dt.timedelta(days=3))
    stack = olci.olci_stack([folder], _patch(size_px=600))
    assert stack.dates == [START.date(), START.date() + dt.timedelta(days=3)]
    assert set(stack.tags) >= {"SOURCE", "ITEM_IDS", "RESOLUTION"}
    assert np.isfinite(stack.data[0, 0]).sum() >= np.isfinite(from_folder.data[0, 0]).sum()
    only_first = olci.olci_stack([folder], _patch(), start=START.date(), end=START.date())
    assert only_first.dates == [START.date()]


def test_stack_file_has_dates_bands_and_descriptions(tmp_path, product):
    grid_raster = str(tmp_path / "patch.tif")
    patch = _patch()
    write_raster(grid_raster, np.zeros((patch.height, patch.width), np.uint8), patch)
    out = str(tmp_path / "olci.tif")
    olci.olci_stack_file([product], grid_raster, out)
    stack = read_stack(out)
    assert stack.bands == olci.OLCI_BANDS and stack.dates == [START.date()]
    with rasterio.open(out) as src:
        assert src.descriptions[0] == "2019-06-01 Oa01" and src.descriptions[20] == "2019-06-01 Oa21"
        assert src.res == (300.0, 300.0) and src.crs == patch.crs


def test_bad_products_are_refused_naming_products(tmp_path, product):
    os.remove(os.path.join(product, "Oa17_radiance.nc"))
    with pytest.raises(LandCoverError, match="lacks Oa17_radiance.nc") as err:
        olci.olci_stack([product], _patch())
    assert err.value.argument == "product_paths"
    other = op.write_product(str(tmp_path / "l2"), START)
    manifest = os.path.join(other, "xfdumanifest.xml")
    with open(manifest, encoding="utf-8") as f:
        text = f.read().replace("<sentinel3:productType>OL_1_EFR___", "<sentinel3:productType>OL_2_LFR___")
    with open(manifest, "w", encoding="utf-8") as f:
        f.write(text)
    with pytest.raises(LandCoverError, match="OL_2_LFR product"):
        olci.olci_stack([other], _patch())
    far = Grid(CRS.from_epsg(32633), Affine(10, 0, 600_000, 0, -10, 5_000_000), 100, 100)
    fresh = op.write_product(str(tmp_path / "fresh"), START)
    with pytest.raises(LandCoverError, match="covers the patch"):
        olci.olci_stack([fresh], far)
    with pytest.raises(LandCoverError, match="between the start and end"):
        olci.olci_stack([fresh], _patch(), start=dt.date(2020, 1, 1))


def test_a_damaged_netcdf_is_refused_quoting_gdal_and_leaves_gdal_as_it_was(tmp_path, product):
    """GDAL's failure becomes an error naming the file (not a traceback or stderr noise), and reading
    OLCI does not switch GDAL's Python exceptions on for the whole process (it once did)."""
    with open(os.path.join(product, "tie_geometries.nc"), "wb") as f:
        f.write(b"not a netcdf file")
    before = gdal.GetUseExceptions()
    with pytest.raises(InputError, match=r"Cannot read .*tie_geometries.nc as NetCDF \(.+\)") as err:
        olci.olci_stack([product], _patch())
    assert err.value.argument == "product_paths" and gdal.GetUseExceptions() == before


def test_olci_stack_goes_into_the_tile_store_at_300_m(tmp_path, product):
    pytest.importorskip("zarr")
    from lc_plugin.core.classes import make_class_table
    from lc_plugin.io.rasters import TimeStack, write_class_raster, write_stack
    from lc_plugin.reference.dataset import export_tiles, open_tile_store

    patch = _patch(size_px=120)
    s2, ref, s3 = (str(tmp_path / name) for name in ("s2.tif", "ref.tif", "olci.tif"))
    write_stack(s2, TimeStack(np.ones((1, 1, 120, 120), np.float32), [START.date()], ["B04"], patch))
    write_class_raster(ref, np.ones((120, 120), np.uint8), patch, make_class_table({1: "forest"}))
    olci.olci_stack_file([product], s2, s3)
    store = open_tile_store(str(export_tiles([s2], [ref], str(tmp_path / "t.zarr"), tile_size=60, n_folds=2, extra_stacks={"S3OLCI": [s3]}).path))
    stack = read_stack(s3)
    assert store.inputs("S3OLCI").shape == (4, 1, 21, 2, 2) and store.sensor_resolution("S3OLCI") == 300
    for i, (row, col) in enumerate(store.offsets.tolist()):
        np.testing.assert_array_equal(store.inputs("S3OLCI")[i], stack.data[:, :, row // 30:row // 30 + 2, col // 30:col // 30 + 2])


def _gdal_geolocation_warp(values: np.ndarray, lat: np.ndarray, lon: np.ndarray, grid: Grid) -> np.ndarray:
    """GDAL's own geolocation-array warp (nearest) of ``values`` onto ``grid``: an independent implementation; -1 = nothing."""
    from osgeo import gdal, osr

    for name, arr in (("lon", lon), ("lat", lat)):
        ds = gdal.GetDriverByName("GTiff").Create(f"/vsimem/olci_{name}.tif", arr.shape[1], arr.shape[0], 1, gdal.GDT_Float64)
        ds.GetRasterBand(1).WriteArray(arr)
        ds = None
    src = gdal.GetDriverByName("MEM").Create("", values.shape[1], values.shape[0], 1, gdal.GDT_Float64)
    src.GetRasterBand(1).WriteArray(values)
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    src.SetMetadata({"X_DATASET": "/vsimem/olci_lon.tif", "X_BAND": "1", "Y_DATASET": "/vsimem/olci_lat.tif", "Y_BAND": "1", "PIXEL_OFFSET": "0",
                     "LINE_OFFSET": "0", "PIXEL_STEP": "1", "LINE_STEP": "1", "SRS": wgs84.ExportToWkt(), "GEOREFERENCING_CONVENTION": "PIXEL_CENTER"},
                    "GEOLOCATION")
    dst = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, gdal.GDT_Float64)
    dst.SetGeoTransform(grid.transform.to_gdal())
    dst.SetProjection(grid.crs.to_wkt())
    dst.GetRasterBand(1).Fill(-1)
    gdal.Warp(dst, src, resampleAlg="near", geoloc=True)
    for name in ("lon", "lat"):
        gdal.Unlink(f"/vsimem/olci_{name}.tif")
    return dst.GetRasterBand(1).ReadAsArray()


@pytest.mark.parametrize(("row", "col", "size_px"), [(20.0, 64.0, 600), (0.0, 64.0, 600), (3.0, 1.0, 900)])
def test_georeferencing_agrees_with_gdal_geolocation_warp(product, row, col, size_px):
    from rasterio.warp import transform

    geo = olci._NetCDF(os.path.join(product, "geo_coordinates.nc"))
    lat, lon = geo.read("latitude"), geo.read("longitude")
    grid = olci.olci_grid(_patch(row, col, size_px))
    x, y = transform("EPSG:4326", grid.crs, lon.ravel().tolist(), lat.ravel().tolist())
    ours = olci.nearest_indices(np.reshape(x, lat.shape), np.reshape(y, lat.shape), grid)
    theirs = _gdal_geolocation_warp(np.arange(lat.size, dtype=np.float64).reshape(lat.shape), lat, lon, grid)
    both = (ours >= 0) & (theirs >= 0)
    assert both.sum() >= 200 and (ours[both] == theirs[both]).all()  # the same product pixel wherever both have one
    assert ((ours >= 0) != (theirs >= 0)).sum() <= 0.01 * ours.size  # footprints differ at most at a corner of the swath
