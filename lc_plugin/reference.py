"""Reference (training) rasters burnt from land-cover polygons onto a patch grid.

Polygons are reprojected to the raster CRS and burnt with the pixel-centre rule (a pixel gets a
class when its centre lies inside a polygon), which reproduces eo-learn's stored LULC raster of
its test patch exactly. The class table lists every class id of the whole layer, not only the
ones inside this patch, so all patches of one layer share one table. Optional erosion (as in
eo-learn's ``ErosionTask``) removes mixed pixels along class borders before training.
"""

from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np
from scipy import ndimage

from .atomic import check_not_input
from .classes import NODATA_CLASS, ClassTable, make_class_table
from .errors import LandCoverError
from .monitor import ensure_monitor
from .rasters import Grid, write_class_raster

MAX_CLASS_ID = 255


def disk(radius: int) -> np.ndarray:
    """Boolean disk footprint like ``skimage.morphology.disk`` (radius 1 = 3×3 cross)."""
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (xx * xx + yy * yy) <= r * r


def erode_classes(labels: np.ndarray, radius: int, nodata: int = NODATA_CLASS) -> np.ndarray:
    """Erode every class separately with a disk; pixels eroded away become ``nodata``.

    Like eo-learn's ErosionTask (skimage ``binary_erosion``), the raster edge does not erode:
    a class is assumed to continue beyond the patch.
    """
    if radius <= 0:
        return labels.copy()
    footprint = disk(radius)
    keep = np.zeros(labels.shape, dtype=bool)
    for class_id in np.unique(labels):
        if class_id == nodata:
            continue
        keep |= ndimage.binary_erosion(labels == class_id, structure=footprint, border_value=1)
    out = labels.copy()
    out[~keep] = nodata
    return out


def _open_layer(vector_path: str, layer: str | None):
    from osgeo import gdal, ogr

    gdal.UseExceptions()
    ogr.UseExceptions()
    if not os.path.exists(vector_path) and "://" not in vector_path and not vector_path.startswith("/vsi"):
        raise LandCoverError(f"The reference vector {vector_path} does not exist.", "REFERENCE")
    try:
        ds = gdal.OpenEx(vector_path, gdal.OF_VECTOR | gdal.OF_READONLY)
    except RuntimeError as exc:
        raise LandCoverError(f"Could not open the reference vector {vector_path}: {exc}", "REFERENCE") from exc
    if ds is None or ds.GetLayerCount() == 0:
        raise LandCoverError(f"{vector_path} is not a vector file with a layer (polygons of land-cover classes).", "REFERENCE")
    if layer is None:
        lyr = ds.GetLayer(0)
    else:
        names = [ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())]
        if layer not in names:
            raise LandCoverError(f"{vector_path} has no layer '{layer}'; its layers are: {', '.join(names)}.", "REFERENCE")
        lyr = ds.GetLayerByName(layer)
    return ds, lyr


def _field_names(lyr) -> list[str]:
    defn = lyr.GetLayerDefn()
    return [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]


def _guess_name_field(class_field: str, fields: list[str]) -> str | None:
    lower = {f.lower(): f for f in fields}
    stem = class_field[:-3] if class_field.lower().endswith("_id") else class_field
    for candidate in (f"{stem}_NAME".lower(), "name"):
        if candidate in lower and lower[candidate] != class_field:
            return lower[candidate]
    return None


def _class_value(feature, index: int, is_int: bool, class_field: str):
    """The feature's class id as int, None for a NULL value; LandCoverError when not an integer."""
    if not feature.IsFieldSetAndNotNull(index):
        return None
    if is_int:
        value = feature.GetFieldAsInteger64(index)
    else:
        real = feature.GetFieldAsDouble(index)
        if not np.isfinite(real) or real != round(real):
            raise LandCoverError(
                f"The class field '{class_field}' must hold whole-number class ids, but feature {feature.GetFID()} has {real}.",
                "FIELD",
            )
        value = int(round(real))
    if not 0 <= value <= MAX_CLASS_ID:
        raise LandCoverError(
            f"Class ids in '{class_field}' must be 0–{MAX_CLASS_ID} (0 = no data), but feature {feature.GetFID()} has {value}. "
            "Recode the classes to 1–255 first.",
            "FIELD",
        )
    return value


def _fmt_extent(ext) -> str:
    return "({:.2f}, {:.2f}, {:.2f}, {:.2f})".format(*ext)


def rasterize_reference(
    vector_path: str,
    class_field: str,
    grid: Grid,
    *,
    layer: str | None = None,
    name_field: str | None = None,
    erosion_px: int = 0,
) -> tuple[np.ndarray, ClassTable]:
    """Burn the polygons' integer class ids onto ``grid``; returns (H, W) uint8 labels and the table.

    Pixels outside every polygon are 0 (no data); later features overwrite earlier ones where
    polygons overlap (a class-0 feature thus masks what lies under it); features with a NULL
    class are skipped.
    """
    from osgeo import ogr, osr
    from rasterio.features import rasterize

    if erosion_px < 0:
        raise LandCoverError(f"The erosion radius must be 0 or more pixels, got {erosion_px}.", "EROSION")
    ds, lyr = _open_layer(vector_path, layer)
    fields = _field_names(lyr)
    if class_field not in fields:
        raise LandCoverError(
            f"The reference layer has no field '{class_field}'; available fields: {', '.join(fields) or '(none)'}.",
            "FIELD",
        )
    defn = lyr.GetLayerDefn()
    class_index = defn.GetFieldIndex(class_field)
    ftype = defn.GetFieldDefn(class_index).GetType()
    if ftype in (ogr.OFTInteger, ogr.OFTInteger64):
        is_int = True
    elif ftype == ogr.OFTReal:
        is_int = False
    else:
        raise LandCoverError(
            f"The class field '{class_field}' is of type {defn.GetFieldDefn(class_index).GetTypeName()}; "
            "it must hold integer class ids (1–255, 0 = no data). Choose the numeric id field, not the name.",
            "FIELD",
        )
    if name_field is None:
        name_field = _guess_name_field(class_field, fields)
    elif name_field not in fields:
        raise LandCoverError(
            f"The reference layer has no field '{name_field}'; available fields: {', '.join(fields)}.", "NAME_FIELD"
        )
    name_index = defn.GetFieldIndex(name_field) if name_field else -1

    if lyr.GetFeatureCount() == 0:
        raise LandCoverError(f"The reference layer {lyr.GetName()} in {vector_path} has no features.", "REFERENCE")
    layer_srs = lyr.GetSpatialRef()
    # GeoPackages without a CRS report GDAL's placeholders "Undefined geographic/Cartesian SRS".
    if layer_srs is None or (layer_srs.GetName() or "").startswith("Undefined "):
        raise LandCoverError(
            f"The reference layer {lyr.GetName()} in {vector_path} has no coordinate reference system; "
            "assign one (e.g. with 'Assign projection') and try again.",
            "REFERENCE",
        )

    raster_srs = osr.SpatialReference()
    raster_srs.ImportFromWkt(grid.crs.to_wkt())
    for srs in (layer_srs, raster_srs):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_raster = None if layer_srs.IsSame(raster_srs) else osr.CoordinateTransformation(layer_srs, raster_srs)

    # Pass 1 (no geometries): every class id of the layer and its name, for one shared table.
    names: dict[int, Counter] = {}
    lyr.SetIgnoredFields(["OGR_GEOMETRY", "OGR_STYLE"])
    lyr.ResetReading()
    for feature in lyr:
        value = _class_value(feature, class_index, is_int, class_field)
        if value is None or value == NODATA_CLASS:
            continue
        counter = names.setdefault(value, Counter())
        if name_index >= 0 and feature.IsFieldSetAndNotNull(name_index):
            text = feature.GetFieldAsString(name_index).strip()
            if text:
                counter[text] += 1
    lyr.SetIgnoredFields([])
    if not names:
        raise LandCoverError(
            f"The field '{class_field}' holds no class ids other than 0/NULL (no data) in {vector_path}.", "FIELD"
        )
    table = make_class_table({cid: (c.most_common(1)[0][0] if c else "") for cid, c in sorted(names.items())})

    # Pass 2: the geometries near the grid, reprojected to the raster CRS, in layer order.
    xmin, ymin, xmax, ymax = grid.bounds
    if to_raster is not None:
        try:
            to_layer = osr.CoordinateTransformation(raster_srs, layer_srs)
            lx0, ly0, lx1, ly1 = to_layer.TransformBounds(xmin, ymin, xmax, ymax, 21)
            lyr.SetSpatialFilterRect(lx0, ly0, lx1, ly1)
        except (RuntimeError, AttributeError):
            lyr.SetSpatialFilter(None)
    else:
        lyr.SetSpatialFilterRect(xmin, ymin, xmax, ymax)
    shapes = []
    lyr.ResetReading()
    for feature in lyr:
        value = _class_value(feature, class_index, is_int, class_field)
        geom = feature.GetGeometryRef()
        if value is None or geom is None or geom.IsEmpty():
            continue
        geom = geom.GetLinearGeometry() if geom.HasCurveGeometry() else geom.Clone()
        if to_raster is not None:
            try:
                geom.Transform(to_raster)
            except RuntimeError as exc:
                raise LandCoverError(
                    f"Feature {feature.GetFID()} of {vector_path} cannot be reprojected to the patch CRS "
                    f"{grid.crs.to_string()} ({exc}).",
                    "REFERENCE",
                ) from exc
        gx0, gx1, gy0, gy1 = geom.GetEnvelope()
        if gx1 < xmin or gx0 > xmax or gy1 < ymin or gy0 > ymax:
            continue
        shapes.append((json.loads(geom.ExportToJson()), value))
    lyr.SetSpatialFilter(None)

    if shapes:
        try:
            labels = rasterize(
                shapes, out_shape=(grid.height, grid.width), transform=grid.transform, fill=NODATA_CLASS,
                dtype="uint8", all_touched=False,
            )
        except ValueError as exc:
            raise LandCoverError(f"Could not burn the reference geometries of {vector_path}: {exc}", "REFERENCE") from exc
    else:
        labels = np.zeros((grid.height, grid.width), dtype=np.uint8)
    if not np.any(labels != NODATA_CLASS):
        ext = lyr.GetExtent()  # (xmin, xmax, ymin, ymax) in the layer CRS
        vec = (ext[0], ext[2], ext[1], ext[3])
        if to_raster is not None:
            try:
                vec = to_raster.TransformBounds(*vec, 21)
            except (RuntimeError, AttributeError):
                pass
        where = "overlaps the patch but covers no pixel centre" if shapes else "lies outside the patch"
        raise LandCoverError(
            f"Nothing was burnt: the reference layer {where}. Reference extent {_fmt_extent(vec)}, "
            f"patch extent {_fmt_extent(grid.bounds)} (both in {grid.crs.to_string()}). "
            "Choose the reference polygons that cover this patch.",
            "REFERENCE",
        )
    del ds
    if erosion_px > 0:
        labels = erode_classes(labels, erosion_px)
    return labels, table


def rasterize_reference_file(
    vector_path: str,
    class_field: str,
    like_path: str,
    out_path: str,
    *,
    layer: str | None = None,
    name_field: str | None = None,
    erosion_px: int = 0,
    monitor=None,
) -> ClassTable:
    """Burn the reference polygons onto the grid of ``like_path`` (e.g. a time stack) and write a class raster."""
    monitor = ensure_monitor(monitor)
    check_not_input(out_path, [vector_path, like_path], "OUTPUT")
    try:
        grid = Grid.of(like_path)
    except Exception as exc:  # rasterio raises its own RasterioIOError
        raise LandCoverError(f"Could not read the grid of {like_path}: {exc}", "GRID") from exc
    if grid.crs is None:
        raise LandCoverError(f"{like_path} has no coordinate reference system.", "GRID")
    monitor.update(0.05)
    labels, table = rasterize_reference(
        vector_path, class_field, grid, layer=layer, name_field=name_field, erosion_px=erosion_px
    )
    monitor.update(0.8)
    counts = np.bincount(labels.ravel(), minlength=256)
    summary = ", ".join(f"{c.id} {c.name}: {int(counts[c.id])}" for c in table)
    monitor.info(f"Reference pixels per class: {summary}; no data: {int(counts[0])}.")
    tags = {"SOURCE": os.path.basename(vector_path), "CLASS_FIELD": class_field, "EROSION_PX": str(int(erosion_px))}
    monitor.update(1.0)  # last cancel check before writing
    write_class_raster(out_path, labels, grid, table, tags=tags)
    return table
