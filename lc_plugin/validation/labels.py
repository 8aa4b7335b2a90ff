"""Class labels as the reports read them: a class raster, or a reference (raster or vector) on a map's grid.

Every report compares class ids pixel by pixel, so everything is read as uint8 ids with 0 = no data
(the raster's own nodata value and non-finite values included), and a reference is brought onto the
map's grid: a raster must already be on it, a vector layer is rasterized there. Errors name the
caller's argument (``argument``), since the same reader serves the map, the reference and the
sample design's map.
"""

from __future__ import annotations

import os

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from ..core.classes import NODATA_CLASS, ClassTable
from ..core.errors import InputError, LandCoverError
from ..io.gdal_errors import gdal_errors
from ..io.rasters import TAG_CLASSES, Grid

# rasterize_reference's arguments (and, until the reference package names them, its parameter ids)
# as the report's caller knows them.
_REFERENCE_ARGUMENTS = {
    "vector_path": "reference_path",
    "REFERENCE": "reference_path",
    "class_field": "reference_field",
    "FIELD": "reference_field",
    "layer": "reference_layer",
}


def describe_grid(grid: Grid) -> str:
    """'W×H px, CRS, origin (x, y), pixel size a×b': enough to see why two grids differ."""
    t = grid.transform
    crs = grid.crs.to_string() if grid.crs else "no CRS"
    return f"{grid.width}×{grid.height} px, {crs}, origin ({t.c:.3f}, {t.f:.3f}), pixel size {t.a:g}×{-t.e:g}"


def read_label_raster(path: str, argument: str, what: str) -> tuple[np.ndarray, ClassTable | None, Grid]:
    """Band 1 as uint8 class ids (0 = no data, including the raster's own nodata value), its class table and grid.

    ``argument`` is the caller's argument that named ``path``; ``what`` names the raster in messages.
    """
    try:
        with rasterio.open(path) as src:
            data = src.read(1)
            nodata = src.nodata
            text = src.tags().get(TAG_CLASSES)
            grid = Grid(src.crs, src.transform, src.width, src.height)
    except RasterioIOError as exc:
        raise InputError(f"Cannot read the {what} raster {path}: {exc}", argument) from exc
    table = None
    if text:
        try:
            table = ClassTable.from_json(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"The {TAG_CLASSES} metadata of {path} is not a valid class table: {exc}", argument) from exc
    valid = np.ones(data.shape, dtype=bool)
    if nodata is not None:
        valid &= ~(np.isnan(data) if np.isnan(nodata) else data == nodata)
    if data.dtype.kind == "f":
        valid &= np.isfinite(data)
        if np.any(data[valid] != np.round(data[valid])):
            raise InputError(f"The {what} raster {path} holds fractional values; expected integer class ids 1–255 (0 = no data).", argument)
    if data.dtype != np.uint8:
        bad = valid & ((data < 0) | (data > 255))
        if bad.any():
            raise InputError(
                f"The {what} raster {path} holds values outside 0–255 (e.g. {data[bad].flat[0]}); expected a class raster with ids 1–255 and 0 = no data.",
                argument,
            )
    labels = np.where(valid, data, NODATA_CLASS).astype(np.uint8)
    return labels, table, grid


def _is_raster(path: str) -> bool:
    try:
        with rasterio.open(path) as src:
            return src.count > 0
    except RasterioIOError:
        return False


def _is_vector(path: str) -> bool:
    from osgeo import gdal

    with gdal_errors():
        try:
            ds = gdal.OpenEx(path, gdal.OF_VECTOR)
        except RuntimeError:  # when the host enabled GDAL exceptions
            ds = None
    return ds is not None and ds.GetLayerCount() > 0


def _is_point_layer(path: str, layer: str | None) -> bool:
    """True for a layer of points (e.g. Sample design's), which the report reads as a stratified sample."""
    from osgeo import ogr

    ds = ogr.Open(path)
    lyr = ds.GetLayerByName(layer) if layer else ds.GetLayer(0)
    return lyr is not None and ogr.GT_Flatten(lyr.GetGeomType()) in (ogr.wkbPoint, ogr.wkbMultiPoint)


def read_reference(path: str, grid: Grid, reference_field: str | None, reference_layer: str | None) -> tuple[np.ndarray, ClassTable | None, str]:
    """Reference ids on ``grid``, their class table and the kind of reference: "raster", "vector" or "points"."""
    if not path or (not path.startswith("/vsi") and not os.path.exists(path)):
        raise InputError(f"The reference {path!r} does not exist; choose a class raster or a polygon layer.", "reference_path")
    if _is_raster(path):
        ref, table, ref_grid = read_label_raster(path, "reference_path", "reference")
        if not ref_grid.same_as(grid):
            raise InputError(
                f"The reference raster is on another grid than the classification: reference {describe_grid(ref_grid)}; "
                f"classification {describe_grid(grid)}. Use a reference raster made for this map's grid "
                "(e.g. with the Reference raster step) or give the reference polygons instead.",
                "reference_path",
            )
        return ref, table, "raster"
    if _is_vector(path):
        if not reference_field:
            raise InputError(f"The reference {path} is a vector layer: choose the field that holds the integer class ids.", "reference_field")
        from ..reference.rasterize import rasterize_reference

        try:
            ref, vector_table = rasterize_reference(path, reference_field, grid, layer=reference_layer)
        except LandCoverError as exc:
            exc.argument = _REFERENCE_ARGUMENTS.get(exc.argument or "", exc.argument)
            raise
        return ref, vector_table, "points" if _is_point_layer(path, reference_layer) else "vector"
    raise InputError(f"The reference {path} is neither a raster nor a vector layer that GDAL can read.", "reference_path")
