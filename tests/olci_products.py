"""Small Sentinel-3 OLCI EFR products with the real layout, for the OLCI tests.

The manifest is a real product's (tests/data/olci, with its start time replaced); the NetCDF files
have the real names, variables, dimensions, types and CF attributes (written with GDAL's netCDF
driver), at a small size. The swath is an exact 300 m grid in UTM 33N rotated by ``ANGLE`` degrees,
so the product pixel nearest to any point is known analytically (``SwathGeometry.pixel_at``).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import zipfile
from dataclasses import dataclass

import numpy as np
from osgeo import gdal
from rasterio.warp import transform

MANIFEST = os.path.join(os.path.dirname(__file__), "data", "olci", "xfdumanifest.xml")
REAL_START = "2021-10-21T07:38:27.254946Z"
CRS = "EPSG:32633"
ROWS, COLUMNS, AC_STEP, AL_STEP, DETECTORS = 40, 129, 64, 1, 3700
SCALES = [0.0134 + 0.0005 * k for k in range(21)]  # radiance scale_factor per band (real ones are ~0.01–0.02)
FILL_U16 = 65535


@dataclass
class SwathGeometry:
    """Product pixel (r, c) centre at UTM (x0, y0) + c·300·(cos a, −sin a) + r·300·(−sin a, −cos a)."""

    x0: float = 455_000.0
    y0: float = 5_088_000.0
    angle: float = 10.0
    spacing: float = 300.0

    def xy(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = math.radians(self.angle)
        x = self.x0 + self.spacing * (cols * math.cos(a) - rows * math.sin(a))
        y = self.y0 - self.spacing * (cols * math.sin(a) + rows * math.cos(a))
        return x, y

    def pixel_at(self, x: float, y: float) -> tuple[int, int]:
        """The product pixel whose centre is nearest to (x, y)."""
        a = math.radians(self.angle)
        dx, dy = (x - self.x0) / self.spacing, (y - self.y0) / self.spacing
        col = dx * math.cos(a) - dy * math.sin(a)
        row = -dx * math.sin(a) - dy * math.cos(a)
        return int(round(row)), int(round(col))


def raw_radiance(band: int) -> np.ndarray:
    """The stored uint16 counts of band ``band`` (0-based): distinct per pixel, a few fill values."""
    rows, cols = np.mgrid[0:ROWS, 0:COLUMNS]
    raw = (1000 + rows * COLUMNS + cols + 100 * band).astype(np.uint16)
    raw[5, 7] = FILL_U16
    return raw


def detector_index() -> np.ndarray:
    rows, cols = np.mgrid[0:ROWS, 0:COLUMNS]
    det = ((cols * 23 + rows) % DETECTORS).astype(np.int16)
    det[9, 11] = -1
    return det


def quality_flags() -> np.ndarray:
    """uint32 flags: land (bit 31) everywhere, invalid (bit 25) on pixel (12, 70)."""
    flags = np.full((ROWS, COLUMNS), 1 << 31, dtype=np.uint32)
    flags[12, 70] |= 1 << 25
    return flags


def solar_flux() -> np.ndarray:
    """(bands, detectors) F0 in mW m-2 nm-1, varying by detector as the real ones do (slightly)."""
    return (1500.0 + 40.0 * np.arange(21)[:, None] - 0.01 * np.arange(DETECTORS)[None, :]).astype(np.float32)


def sza_tie() -> np.ndarray:
    """(tie_rows, tie_columns) sun zenith angle in degrees."""
    tie_cols = (COLUMNS - 1) // AC_STEP + 1
    r, c = np.mgrid[0:ROWS, 0:tie_cols]
    return 40.0 + 0.05 * r + 3.0 * c


def _attr(obj, name: str, value) -> None:
    if isinstance(value, str):
        obj.CreateAttribute(name, [], gdal.ExtendedDataType.CreateString()).Write(value)
    else:
        obj.CreateAttribute(name, [], gdal.ExtendedDataType.Create(gdal.GDT_Int32)).Write(int(value))


def _netcdf(path: str, title: str, dims: dict[str, int], variables: list[tuple]) -> None:
    """One NetCDF-4 file: global attributes as in the real product, variables (name, dims, type, data, scale, fill)."""
    ds = gdal.GetDriverByName("netCDF").CreateMultiDimensional(path)
    root = ds.GetRootGroup()
    for name, value in (("title", title), ("product_name", "test.SEN3"), ("ac_subsampling_factor", AC_STEP), ("al_subsampling_factor", AL_STEP)):
        _attr(root, name, value)
    made = {name: root.CreateDimension(name, None, None, size) for name, size in dims.items()}
    for name, var_dims, gdal_type, data, scale, fill in variables:
        var = root.CreateMDArray(name, [made[d] for d in var_dims], gdal.ExtendedDataType.Create(gdal_type))
        if scale is not None:
            var.SetScale(scale)
            var.SetOffset(0.0)
        if fill is not None:
            var.SetNoDataValueDouble(fill)
        var.Write(np.ascontiguousarray(data))
    del root, ds


def write_product(folder: str, start: dt.datetime, geometry: SwathGeometry | None = None, bands: range = range(21)) -> str:
    """Write ``<folder>/<name>.SEN3`` for an acquisition starting at ``start``; returns its path."""
    geometry = geometry or SwathGeometry()
    name = f"S3A_OL_1_EFR____{start:%Y%m%dT%H%M%S}_{start:%Y%m%dT%H%M%S}_{start:%Y%m%dT%H%M%S}_0164_077_334_4320_LN1_O_NR_002.SEN3"
    path = os.path.join(folder, name)
    os.makedirs(path)
    with open(MANIFEST, encoding="utf-8") as f:
        manifest = f.read().replace(REAL_START, start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    with open(os.path.join(path, "xfdumanifest.xml"), "w", encoding="utf-8") as f:
        f.write(manifest)
    rows, cols = np.mgrid[0:ROWS, 0:COLUMNS]
    x, y = geometry.xy(rows.astype(float), cols.astype(float))
    lon, lat = transform(CRS, "EPSG:4326", x.ravel().tolist(), y.ravel().tolist())
    lat_i = np.round(np.reshape(lat, x.shape) * 1e6).astype(np.int32)
    lon_i = np.round(np.reshape(lon, x.shape) * 1e6).astype(np.int32)
    image = {"rows": ROWS, "columns": COLUMNS}
    _netcdf(os.path.join(path, "geo_coordinates.nc"), "OLCI Level 1b Product, Geo Coordinates Data Set", image, [
        ("latitude", ["rows", "columns"], gdal.GDT_Int32, lat_i, 1e-6, -2147483648),
        ("longitude", ["rows", "columns"], gdal.GDT_Int32, lon_i, 1e-6, -2147483648),
    ])
    tie = sza_tie()
    _netcdf(os.path.join(path, "tie_geometries.nc"), "OLCI Level 1b Product, Tie-Point Geometries Data Set",
            {"tie_rows": tie.shape[0], "tie_columns": tie.shape[1]},
            [("SZA", ["tie_rows", "tie_columns"], gdal.GDT_UInt32, np.round(tie * 1e6).astype(np.uint32), 1e-6, None)])
    _netcdf(os.path.join(path, "instrument_data.nc"), "OLCI Level 1b Product, Instrument Data Set",
            {"bands": 21, "detectors": DETECTORS, **image}, [
                ("solar_flux", ["bands", "detectors"], gdal.GDT_Float32, solar_flux(), None, None),
                ("detector_index", ["rows", "columns"], gdal.GDT_Int16, detector_index(), None, -1),
            ])
    _netcdf(os.path.join(path, "qualityFlags.nc"), "OLCI Level 1b Product, Quality Flags Data Set", image,
            [("quality_flags", ["rows", "columns"], gdal.GDT_UInt32, quality_flags(), None, None)])
    for k in bands:
        band = f"Oa{k + 1:02d}"
        _netcdf(os.path.join(path, f"{band}_radiance.nc"), f"OLCI Level 1b Product, Radiance {band} Data Set", image,
                [(f"{band}_radiance", ["rows", "columns"], gdal.GDT_UInt16, raw_radiance(k), SCALES[k], FILL_U16)])
    return path


def zip_product(product: str) -> str:
    """``<product without .SEN3>.zip`` holding the ``.SEN3`` folder, as the data hubs deliver it."""
    target = product[:-5] + ".zip"
    with zipfile.ZipFile(target, "w") as zf:
        for name in sorted(os.listdir(product)):
            zf.write(os.path.join(product, name), f"{os.path.basename(product)}/{name}")
    return target


def expected_reflectance(band: int, row: int, col: int) -> float:
    """ρ = π·L/(F0·cos θs) for product pixel (row, col), computed from the written values by hand."""
    raw = int(raw_radiance(band)[row, col])
    det = int(detector_index()[row, col])
    if raw == FILL_U16 or det < 0 or quality_flags()[row, col] & (1 << 25):
        return float("nan")
    radiance = raw * SCALES[band]
    tie = sza_tie()
    j = col / AC_STEP
    j0 = min(int(j), tie.shape[1] - 2)
    sza = tie[row, j0] + (j - j0) * (tie[row, j0 + 1] - tie[row, j0])
    return math.pi * radiance / (float(solar_flux()[band, det]) * math.cos(math.radians(sza)))
