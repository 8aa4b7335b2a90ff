"""Sentinel-3 OLCI Level-1B full-resolution (OL_1_EFR) products → a 300 m time stack on a patch's CRS.

A product is a SAFE folder ``<name>.SEN3`` (or a .zip holding one) with, as ESA's products carry them:

- ``xfdumanifest.xml``: ``sentinel-safe:acquisitionPeriod/startTime`` (the date), ``sentinel3:productType``;
- ``Oa01_radiance.nc`` … ``Oa21_radiance.nc``: ``OaNN_radiance(rows, columns)`` uint16 with
  ``scale_factor``/``add_offset``/``_FillValue`` (mW m⁻² sr⁻¹ nm⁻¹);
- ``geo_coordinates.nc``: ``latitude``/``longitude(rows, columns)`` int32 scaled by 1e-6;
- ``tie_geometries.nc``: ``SZA(tie_rows, tie_columns)``, a tie point every ``al_subsampling_factor``
  rows and ``ac_subsampling_factor`` columns (1 and 64 in EFR products; global attributes);
- ``instrument_data.nc``: ``solar_flux(bands, detectors)`` and ``detector_index(rows, columns)``;
- ``qualityFlags.nc``: ``quality_flags(rows, columns)`` uint32, bit 25 = invalid (as ESA's SNAP toolbox reads it):
  such pixels are no data.

Top-of-atmosphere reflectance is ρ = π·L / (F0 · cos θs), with F0 the solar flux of the detector that
saw the pixel and θs the sun zenith angle interpolated from the tie points (the OLCI product
documentation's definition). The swath is georeferenced through its own per-pixel latitude/longitude:
every output pixel (300 m, in the patch's CRS, covering the patch) takes the reflectance of the nearest
product pixel, and stays NaN where no product pixel's footprint holds the output pixel's centre (outside the swath).
NetCDF is read with GDAL's multidimensional API (GDAL's netCDF driver), so no extra package is needed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.transform import Affine

from ..core.errors import DataError, InputError
from ..core.monitor import Monitor, ensure_monitor
from ..io.gdal_errors import gdal_errors
from ..io.rasters import Grid, TimeStack, write_stack

OLCI_BANDS = [f"Oa{i:02d}" for i in range(1, 22)]
OLCI_RESOLUTION = 300.0  # metres: the full-resolution product's nominal pixel at nadir
PRODUCT_TYPE = "OL_1_EFR___"
_NS = {"sentinel-safe": "http://www.esa.int/safe/sentinel/1.1", "sentinel3": "http://www.esa.int/safe/sentinel/sentinel-3/1.0"}
_SCAN_STEP = 16  # rows/columns between the geolocation samples that locate the patch in the swath
INVALID_BIT = 25  # of quality_flags
NEEDED_FILES = ["xfdumanifest.xml", "geo_coordinates.nc", "tie_geometries.nc", "instrument_data.nc", "qualityFlags.nc"] + [
    f"{b}_radiance.nc" for b in OLCI_BANDS
]


@dataclass
class OlciProduct:
    """A product folder (extracted when it came as a .zip) and what its manifest says."""

    name: str
    folder: str
    start: dt.datetime
    product_type: str

    @property
    def date(self) -> dt.date:
        return self.start.date()


# --- product files -----------------------------------------------------------------------------


def _manifest_info(path: str, label: str) -> tuple[dt.datetime, str]:
    """Start time and product type from ``xfdumanifest.xml``."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise InputError(f"{label}: cannot read its xfdumanifest.xml ({exc}).", "product_paths") from exc
    start = root.findtext(".//sentinel-safe:acquisitionPeriod/sentinel-safe:startTime", namespaces=_NS)
    ptype = root.findtext(".//sentinel3:generalProductInformation/sentinel3:productType", namespaces=_NS)
    if not start:
        raise InputError(f"{label}: xfdumanifest.xml has no acquisitionPeriod/startTime.", "product_paths")
    return dt.datetime.fromisoformat(start.rstrip("Z")[:26]), (ptype or "").strip()


def _check_folder(folder: str, label: str) -> None:
    missing = [f for f in NEEDED_FILES if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise InputError(
            f"{label} is not a complete Sentinel-3 OLCI EFR product: it lacks {', '.join(missing[:4])}"
            + (f" and {len(missing) - 4} more" if len(missing) > 4 else "") + ".",
            "product_paths",
        )


def open_product(path: str, workdir: str) -> OlciProduct:
    """A ``.SEN3`` folder as it is, or a .zip's ``.SEN3`` folder extracted (only the files used) into ``workdir``."""
    label = os.path.basename(os.path.normpath(path))
    if os.path.isdir(path):
        folder = path
    elif zipfile.is_zipfile(path):
        folder = _extract_zip(path, workdir, label)
    else:
        raise InputError(f"{path} is neither a .SEN3 product folder nor a .zip of one.", "product_paths")
    _check_folder(folder, label)
    start, ptype = _manifest_info(os.path.join(folder, "xfdumanifest.xml"), label)
    if ptype and ptype != PRODUCT_TYPE:
        wanted = PRODUCT_TYPE.strip("_")
        raise InputError(f"{label} is a {ptype.strip('_')} product; this step reads OLCI Level-1B full resolution ({wanted}).", "product_paths")
    name = os.path.basename(os.path.normpath(folder))
    return OlciProduct(name[:-5] if name.endswith(".SEN3") else name, folder, start, ptype or PRODUCT_TYPE)


def _extract_zip(path: str, workdir: str, label: str) -> str:
    with zipfile.ZipFile(path) as zf:
        manifests = [n for n in zf.namelist() if n.endswith("xfdumanifest.xml")]
        if len(manifests) != 1:
            raise InputError(f"{label} must hold exactly one .SEN3 product (found {len(manifests)} manifests).", "product_paths")
        prefix = manifests[0][: -len("xfdumanifest.xml")]
        if ".." in prefix.split("/"):
            raise InputError(f"{label} has an unsafe path inside ({manifests[0]}).", "product_paths")
        target = os.path.join(workdir, os.path.splitext(label)[0])
        for member in NEEDED_FILES:
            if prefix + member in zf.namelist():
                zf.extract(prefix + member, target)
    return os.path.join(target, prefix.rstrip("/")) if prefix else target


def find_products(paths: Sequence[str]) -> list[str]:
    """The products named, or inside the folders named (``*.SEN3`` folders and ``*.zip`` files), sorted."""
    found = []
    for path in paths:
        if not os.path.exists(path):
            raise InputError(f"{path} does not exist.", "product_paths")
        if path.rstrip("/\\").endswith(".SEN3") or os.path.isfile(path):
            found.append(path)
            continue
        inside = sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith((".SEN3", ".zip")))
        if not inside:
            raise InputError(f"The folder {path} holds no .SEN3 product folder or .zip.", "product_paths")
        found.extend(inside)
    return sorted(found, key=os.path.basename)


class _NetCDF:
    """One NetCDF file through GDAL's multidimensional API: scaled variables (fill → NaN) and global attributes.

    GDAL's failures are collected (``gdal_errors``) and become an error naming the file, whether or not
    the host turned on GDAL's Python exceptions.
    """

    def __init__(self, path: str) -> None:
        from osgeo import gdal

        self.path = path
        ds = self._gdal(lambda: gdal.OpenEx(path, gdal.OF_MULTIDIM_RASTER), "as NetCDF")
        self._ds, self._root = ds, self._gdal(ds.GetRootGroup, "as NetCDF")

    def _gdal(self, call: Callable[[], Any], what: str) -> Any:
        """``call()``'s result (a GDAL object, untyped); an error that quotes GDAL when it fails or gives nothing."""
        with gdal_errors() as errors:
            try:
                result = call()
            except RuntimeError as exc:  # a host that called gdal.UseExceptions()
                errors.append(str(exc))
                result = None
        if result is None:
            raise InputError(f"Cannot read {self.path} {what} ({'; '.join(errors) or 'GDAL gave nothing'}).", "product_paths")
        return result

    def _array(self, name: str):
        if name not in (self._root.GetMDArrayNames() or []):
            raise InputError(f"{self.path} has no variable {name}.", "product_paths")
        return self._gdal(lambda: self._root.OpenMDArray(name), f"variable {name}")

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(d.GetSize()) for d in self._array(name).GetDimensions())

    def read_raw(self, name: str, start: Sequence[int] | None = None, count: Sequence[int] | None = None, step: Sequence[int] | None = None):
        """The stored values as they are (e.g. flag bits), and the variable."""
        arr = self._array(name)
        kwargs = {k: list(v) for k, v in (("array_start_idx", start), ("count", count), ("array_step", step)) if v is not None}
        return self._gdal(lambda: arr.ReadAsArray(**kwargs), f"variable {name}"), arr

    def read(self, name: str, start: Sequence[int] | None = None, count: Sequence[int] | None = None, step: Sequence[int] | None = None) -> np.ndarray:
        """float64 values with ``scale_factor``/``add_offset`` applied and ``_FillValue`` as NaN."""
        raw, arr = self.read_raw(name, start, count, step)
        values = raw.astype(np.float64)
        nodata = arr.GetNoDataValueAsDouble()
        if nodata is not None and not np.isnan(nodata):
            values[raw == nodata] = np.nan
        return values * (arr.GetScale() or 1.0) + (arr.GetOffset() or 0.0)

    def attribute(self, name: str):
        attr = self._gdal(lambda: self._root.GetAttribute(name), f"global attribute {name}")
        return self._gdal(attr.Read, f"global attribute {name}")


# --- radiometry --------------------------------------------------------------------------------


def interpolate_tie_points(tie: np.ndarray, al_step: int, ac_step: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a tie-point grid (tie point (i, j) sits on image row i·al_step, column
    j·ac_step) at image ``rows`` × ``cols``; (len(rows), len(cols))."""
    from scipy.interpolate import RegularGridInterpolator

    tie_rows = np.arange(tie.shape[0]) * float(al_step)
    tie_cols = np.arange(tie.shape[1]) * float(ac_step)
    if tie.shape[0] == 1:  # one tie row: constant along track
        tie, tie_rows = np.vstack([tie, tie]), np.array([0.0, max(1.0, float(rows.max()))])
    interp = RegularGridInterpolator((tie_rows, tie_cols), tie, bounds_error=False, fill_value=None)
    rr, cc = np.meshgrid(rows.astype(float), cols.astype(float), indexing="ij")
    return interp(np.stack([rr.ravel(), cc.ravel()], axis=1)).reshape(rr.shape)


def toa_reflectance(radiance: np.ndarray, solar_flux: np.ndarray, detector_index: np.ndarray, sza_deg: np.ndarray) -> np.ndarray:
    """ρ = π·L / (F0[detector] · cos θs) for one band; NaN where the radiance or detector index is missing.

    ``solar_flux`` is that band's row of ``solar_flux(bands, detectors)``.
    """
    det = np.nan_to_num(detector_index, nan=-1).astype(np.int64)
    ok = (det >= 0) & (det < solar_flux.size) & np.isfinite(radiance)
    f0 = np.where(ok, solar_flux[np.clip(det, 0, solar_flux.size - 1)], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.pi * radiance / (f0 * np.cos(np.radians(sza_deg)))
    return np.where(ok, rho, np.nan)


# --- georeferencing ----------------------------------------------------------------------------


def olci_grid(patch: Grid, resolution: float = OLCI_RESOLUTION) -> Grid:
    """The ``resolution`` grid in the patch's CRS from its top-left corner, covering the whole patch."""
    x0, y0, x1, y1 = patch.bounds
    width, height = math.ceil((x1 - x0) / resolution - 1e-9), math.ceil((y1 - y0) / resolution - 1e-9)
    return Grid(patch.crs, Affine(resolution, 0.0, x0, 0.0, -resolution, y1), width, height)


def _lonlat_bounds(grid: Grid, margin_deg: float) -> tuple[float, float, float, float]:
    from rasterio.warp import transform_bounds

    w, s, e, n = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
    return w - margin_deg, s - margin_deg, e + margin_deg, n + margin_deg


def _swath_window(geo: _NetCDF, grid: Grid) -> tuple[int, int, int, int] | None:
    """(row0, col0, rows, cols) of the product part around the patch, found from every 16th geolocation sample."""
    n_rows, n_cols = geo.shape("latitude")
    step = [min(_SCAN_STEP, n_rows), min(_SCAN_STEP, n_cols)]
    count = [-(-n_rows // step[0]), -(-n_cols // step[1])]
    lat = geo.read("latitude", [0, 0], count, step)
    lon = geo.read("longitude", [0, 0], count, step)
    margin = 2.0 * _SCAN_STEP * OLCI_RESOLUTION / 111_000.0 + 0.01
    w, s, e, n = _lonlat_bounds(grid, margin)
    inside = (lat >= s) & (lat <= n) & (lon >= w) & (lon <= e)
    if not inside.any():
        return None
    rows, cols = np.nonzero(inside)
    r0 = max(0, (rows.min() - 1) * step[0])
    c0 = max(0, (cols.min() - 1) * step[1])
    r1 = min(n_rows, (rows.max() + 2) * step[0])
    c1 = min(n_cols, (cols.max() + 2) * step[1])
    return int(r0), int(c0), int(r1 - r0), int(c1 - c0)


def swath_meets(folder: str, grid: Grid) -> bool:
    """Whether the product's swath (its ``geo_coordinates.nc``, sampled every 16th pixel) comes near ``grid``:
    checked before the other files of a downloaded product are fetched."""
    return _swath_window(_NetCDF(os.path.join(folder, "geo_coordinates.nc")), grid) is not None


def nearest_indices(x_src: np.ndarray, y_src: np.ndarray, grid: Grid) -> np.ndarray:
    """Flat index of the source pixel whose footprint holds each output pixel centre (H, W), -1 where none does.

    The nearest source pixel centre is found with a k-d tree; the centre lies in that pixel's footprint when
    its offset, in the pixel's own along-row and along-column steps (from the neighbouring centres), is at
    most half a step each way, so the swath's edge is where the product's pixels end, not further.
    """
    from scipy.spatial import cKDTree

    finite = np.isfinite(x_src) & np.isfinite(y_src)
    out = np.full((grid.height, grid.width), -1, dtype=np.int64)
    if finite.sum() < 2 or min(x_src.shape) < 2:
        return out
    steps = [(np.gradient(x_src, axis=a), np.gradient(y_src, axis=a)) for a in (1, 0)]  # along columns, along rows
    spacing = max(float(np.nanmedian(np.hypot(*s))) for s in steps)
    flat = np.flatnonzero(finite)
    tree = cKDTree(np.stack([x_src.ravel()[flat], y_src.ravel()[flat]], axis=1))
    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    xs, ys = grid.transform * (cols.ravel(), rows.ravel())
    dist, idx = tree.query(np.stack([xs, ys], axis=1), distance_upper_bound=spacing)
    found = np.flatnonzero(np.isfinite(dist))
    src = flat[idx[found]]
    (ux, uy), (vx, vy) = [(sx.ravel()[src], sy.ravel()[src]) for sx, sy in steps]
    dx, dy = xs[found] - x_src.ravel()[src], ys[found] - y_src.ravel()[src]
    det = ux * vy - uy * vx
    with np.errstate(invalid="ignore", divide="ignore"):
        along_cols, along_rows = (dx * vy - dy * vx) / det, (ux * dy - uy * dx) / det
    inside = (np.abs(along_cols) <= 0.5 + 1e-6) & (np.abs(along_rows) <= 0.5 + 1e-6)
    out.ravel()[found[inside]] = src[inside]
    return out


def product_reflectance(product: OlciProduct, grid: Grid, bands: Sequence[str] = OLCI_BANDS, monitor: Monitor | None = None) -> np.ndarray | None:
    """(B, H, W) float32 TOA reflectance of ``product`` on ``grid`` (NaN outside the swath); None if the swath misses it."""
    from rasterio.warp import transform

    monitor = ensure_monitor(monitor)
    geo = _NetCDF(os.path.join(product.folder, "geo_coordinates.nc"))
    window = _swath_window(geo, grid)
    if window is None:
        return None
    r0, c0, nr, nc = window
    lat = geo.read("latitude", [r0, c0], [nr, nc])
    lon = geo.read("longitude", [r0, c0], [nr, nc])
    finite = np.isfinite(lat) & np.isfinite(lon)
    x = np.full(lat.shape, np.nan)
    y = np.full(lat.shape, np.nan)
    if finite.any():
        xs, ys = transform("EPSG:4326", grid.crs, lon[finite].tolist(), lat[finite].tolist())
        x[finite], y[finite] = xs, ys
    nearest = nearest_indices(x, y, grid)
    if (nearest < 0).all():
        return None
    hit = nearest >= 0
    src = nearest[hit]

    tie = _NetCDF(os.path.join(product.folder, "tie_geometries.nc"))
    al, ac = int(np.ravel(tie.attribute("al_subsampling_factor"))[0]), int(np.ravel(tie.attribute("ac_subsampling_factor"))[0])
    sza = interpolate_tie_points(tie.read("SZA"), al, ac, np.arange(r0, r0 + nr), np.arange(c0, c0 + nc)).ravel()[src]
    inst = _NetCDF(os.path.join(product.folder, "instrument_data.nc"))
    detector = inst.read("detector_index", [r0, c0], [nr, nc]).ravel()[src]
    flux = inst.read("solar_flux")
    flags, _ = _NetCDF(os.path.join(product.folder, "qualityFlags.nc")).read_raw("quality_flags", [r0, c0], [nr, nc])
    detector[((flags.ravel()[src].astype(np.uint64) >> INVALID_BIT) & 1).astype(bool)] = np.nan  # invalid pixels: no data
    out = np.full((len(bands), grid.height, grid.width), np.nan, dtype=np.float32)
    for i, band in enumerate(bands):
        radiance = _NetCDF(os.path.join(product.folder, f"{band}_radiance.nc")).read(f"{band}_radiance", [r0, c0], [nr, nc]).ravel()[src]
        out[i][hit] = toa_reflectance(radiance, flux[OLCI_BANDS.index(band)], detector, sza)
        monitor.update((i + 1) / len(bands))
    return out


# --- the step ----------------------------------------------------------------------------------


def olci_stack(
    product_paths: Sequence[str],
    patch: Grid,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    resolution: float = OLCI_RESOLUTION,
    monitor: Monitor | None = None,
) -> TimeStack:
    """Every product in [start, end] that covers the patch, as one date each (products of one day merged,
    earliest first, later ones filling what is still NaN), on ``olci_grid(patch, resolution)``."""
    grid = olci_grid(patch, check_resolution(resolution))
    with tempfile.TemporaryDirectory(prefix="lc_olci_") as workdir:
        products = [open_product(p, workdir) for p in find_products(product_paths)]
        products = sorted((p for p in products if (start is None or p.date >= start) and (end is None or p.date <= end)), key=lambda p: p.start)
        if not products:
            raise DataError("No OLCI product lies between the start and end dates.", "product_paths")
        return merge_products(products, len(products), grid, "local products", monitor)


def check_resolution(resolution: float) -> float:
    """``resolution`` when it is a usable pixel size (metres above 0)."""
    if not resolution > 0:
        raise InputError(f"The resolution must be above 0 m, got {resolution}.", "resolution")
    return resolution


def merge_products(products: Iterable[OlciProduct], count: int, grid: Grid, source: str, monitor: Monitor | None = None) -> TimeStack:
    """The time stack of ``products`` (earliest first; ``count`` of them, for progress) on ``grid``.

    ``products`` may be a generator that fetches each product only when it is reached and removes it
    once the next is asked for, so a year of downloaded products never sits on disk at once.
    """
    monitor = ensure_monitor(monitor)
    frames: dict[dt.date, np.ndarray] = {}
    used: list[str] = []
    for k, product in enumerate(products):
        refl = product_reflectance(product, grid, monitor=monitor.sub(k / count, (k + 1) / count))
        if refl is None:
            monitor.info(f"{product.name}: its swath misses the patch; skipped.")
            continue
        monitor.info(f"{product.name}: {np.isfinite(refl[0]).mean():.0%} of the patch covered.")
        used.append(product.name)
        frame = frames.setdefault(product.date, np.full_like(refl, np.nan))
        np.copyto(frame, refl, where=np.isnan(frame))
    if not frames:
        raise DataError("None of the OLCI products covers the patch.", "product_paths")
    dates = sorted(frames)
    tags = {"SOURCE": f"Sentinel-3 OLCI L1B EFR ({source})", "ITEM_IDS": json.dumps(used), "RESOLUTION": str(grid.transform.a),
            "REFLECTANCE": "TOA, pi*L/(F0*cos(SZA))"}
    return TimeStack(np.stack([frames[d] for d in dates]), dates, list(OLCI_BANDS), grid, tags)


def olci_stack_file(
    product_paths: Sequence[str], grid_raster: str, out_path: str, *, start: dt.date | None = None, end: dt.date | None = None,
    resolution: float = OLCI_RESOLUTION, monitor: Monitor | None = None,
) -> TimeStack:
    """File-level entry point of landcover:downloadolci: products + a raster of the patch → the OLCI time stack."""
    from ..core.atomic import check_not_input

    check_not_input(out_path, [grid_raster, *product_paths], "out_path")
    stack = olci_stack(product_paths, patch_grid(grid_raster), start=start, end=end, resolution=resolution, monitor=monitor)
    write_stack(out_path, stack)
    return stack


def patch_grid(grid_raster: str) -> Grid:
    """The grid of the patch raster ``grid_raster`` (the OLCI stack covers it)."""
    if not os.path.isfile(grid_raster):
        raise InputError(f"The patch raster {grid_raster} does not exist.", "grid_raster")
    return Grid.of(grid_raster)

