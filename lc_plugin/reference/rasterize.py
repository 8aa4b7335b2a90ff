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
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..core.atomic import check_not_input
from ..core.classes import NODATA_CLASS, ClassTable
from ..core.errors import DataError, InputError
from ..core.legends import builtin_legend, read_legend_file
from ..core.monitor import Monitor, ensure_monitor
from ..io.rasters import Grid, write_class_raster
from .class_values import build_class_table, class_ids_of, zero_named_nodata
from .layers import check_field, field_kind, field_names, guess_name_field, open_layer, raw_value, valid_colors

ZERO_CHOICES = ("refuse", "shift", "nodata")  # ClassOptions.zero, in the order of the ZERO_ID enum


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


def _fmt_extent(ext) -> str:
    return "({:.2f}, {:.2f}, {:.2f}, {:.2f})".format(*ext)


@dataclass(frozen=True)
class ClassOptions:
    """How a reference layer's class field becomes class ids, names and colours (see ``class_ids_of``)."""

    name_field: str | None = None
    color_field: str | None = None
    legend: str | None = None  # a key of legends.builtin_legends(), or None/"none"
    legend_file: str | None = None
    zero: str = "refuse"  # a class id 0 in the field: "refuse", "shift" (every id + 1) or "nodata"


@dataclass(frozen=True)
class BurntReference:
    labels: np.ndarray
    table: ClassTable
    values: dict  # field value → class id
    how: str  # how the ids were made, for the log and the raster's tags
    names_from: str


def rasterize_reference(
    vector_path: str,
    class_field: str,
    grid: Grid,
    *,
    layer: str | None = None,
    name_field: str | None = None,
    erosion_px: int = 0,
    options: ClassOptions | None = None,
) -> tuple[np.ndarray, ClassTable]:
    """Burn the polygons' classes onto ``grid``; returns (H, W) uint8 labels and the table (see ``burn_reference``)."""
    burnt = burn_reference(vector_path, class_field, grid, layer=layer, erosion_px=erosion_px, options=options or ClassOptions(name_field=name_field))
    return burnt.labels, burnt.table


@dataclass(frozen=True)
class _ClassField:
    """Where a feature's class value, name and colour are read (field indices, -1 = none) and how."""

    name: str
    index: int
    kind: str  # "int", "real" or "text" (see ``field_kind``)
    name_index: int
    color_index: int


def burn_reference(
    vector_path: str,
    class_field: str,
    grid: Grid,
    *,
    layer: str | None = None,
    erosion_px: int = 0,
    options: ClassOptions | None = None,
) -> BurntReference:
    """Burn the polygons' classes (integer ids or text, see ``class_ids_of``) onto ``grid``.

    Pixels outside every polygon are 0 (no data); later features overwrite earlier ones where
    polygons overlap; features with a NULL or empty class are skipped. The ids and the class table
    come from every feature of the layer, not only those on this patch, so all patches of one layer
    share one numbering.
    """
    options = _checked_options(erosion_px, options)
    legend = builtin_legend(options.legend)
    legend_file = read_legend_file(options.legend_file) if options.legend_file else None
    ds, lyr = open_layer(vector_path, layer)
    field = _class_field(lyr, class_field, options)
    to_raster, to_layer = _transforms(lyr, vector_path, grid)
    names, colors = _class_values(lyr, field)
    if not names:
        raise DataError(f"The field '{class_field}' holds no class (every value is NULL or empty) in {vector_path}.", argument="class_field")
    zero = "nodata" if options.zero == "refuse" and field.kind != "text" and zero_named_nodata(names) else options.zero
    ids, how = class_ids_of(set(names), is_text=field.kind == "text", class_field=class_field, legend=legend, zero=zero)
    if zero == "nodata" and options.zero == "refuse":
        how += " (the layer's name field leaves every id-0 polygon unnamed or names it no data)"
    per_id_names: dict[int, Counter] = {}
    per_id_colors: dict[int, Counter] = {}
    for value, cid in ids.items():
        if cid == NODATA_CLASS:
            continue
        per_id_names.setdefault(cid, Counter()).update(names[value])
        per_id_colors.setdefault(cid, Counter()).update(valid_colors(colors[value], options.color_field))
    table, names_from = build_class_table(
        ids, per_id_names, per_id_colors, is_text=field.kind == "text", legend=legend, legend_file=legend_file, explicit_names=bool(options.name_field)
    )
    shapes = _shapes_near(lyr, field, ids, grid, to_raster, to_layer, vector_path)
    labels = _burn(shapes, grid, vector_path)
    if not np.any(labels != NODATA_CLASS):
        raise DataError(_nothing_burnt(lyr, grid, to_raster, bool(shapes)), argument="vector_path")
    del ds
    if erosion_px > 0:
        labels = erode_classes(labels, erosion_px)
    return BurntReference(labels, table, ids, how, names_from)


def _checked_options(erosion_px: int, options: ClassOptions | None) -> ClassOptions:
    if erosion_px < 0:
        raise InputError(f"The erosion radius must be 0 or more pixels, got {erosion_px}.", argument="erosion_px")
    options = options or ClassOptions()
    if options.zero not in ZERO_CHOICES:
        raise InputError(f"Unknown handling of class id 0 '{options.zero}'; choose one of {', '.join(ZERO_CHOICES)}.", argument="zero")
    return options


def _class_field(lyr: Any, class_field: str, options: ClassOptions) -> _ClassField:
    """The class, name and colour fields, checked to exist (the name field guessed when none is given)."""
    fields = field_names(lyr)
    check_field(fields, class_field, "class_field")
    check_field(fields, options.name_field, "name_field")
    check_field(fields, options.color_field, "color_field")
    defn = lyr.GetLayerDefn()
    index = defn.GetFieldIndex(class_field)
    name_field = options.name_field or guess_name_field(class_field, fields)
    return _ClassField(
        name=class_field,
        index=index,
        kind=field_kind(defn, index, class_field),
        name_index=defn.GetFieldIndex(name_field) if name_field else -1,
        color_index=defn.GetFieldIndex(options.color_field) if options.color_field else -1,
    )


def _transforms(lyr: Any, vector_path: str, grid: Grid) -> tuple[Any, Any]:
    """Layer → raster and raster → layer coordinate transformations (None, None when the CRSs are the same);
    refuses an empty layer or one without a CRS."""
    from osgeo import osr

    if lyr.GetFeatureCount() == 0:
        raise DataError(f"The reference layer {lyr.GetName()} in {vector_path} has no features.", argument="vector_path")
    layer_srs = lyr.GetSpatialRef()
    # GeoPackages without a CRS report GDAL's placeholders "Undefined geographic/Cartesian SRS".
    if layer_srs is None or (layer_srs.GetName() or "").startswith("Undefined "):
        raise InputError(
            f"The reference layer {lyr.GetName()} in {vector_path} has no coordinate reference system; "
            "assign one (e.g. with 'Assign projection') and try again.",
            argument="vector_path",
        )
    raster_srs = osr.SpatialReference()
    raster_srs.ImportFromWkt(grid.crs.to_wkt())
    for srs in (layer_srs, raster_srs):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    if layer_srs.IsSame(raster_srs):
        return None, None
    to_raster = osr.CoordinateTransformation(layer_srs, raster_srs)
    try:
        return to_raster, osr.CoordinateTransformation(raster_srs, layer_srs)
    except (RuntimeError, AttributeError):
        return to_raster, None  # no spatial filter then: every feature is reprojected and checked


def _class_values(lyr: Any, field: _ClassField) -> tuple[dict, dict]:
    """Pass 1 (no geometries): every class value of the layer with counts of its names and colours, for one shared table."""
    names: dict = {}
    colors: dict = {}
    lyr.SetIgnoredFields(["OGR_GEOMETRY", "OGR_STYLE"])
    lyr.ResetReading()
    for feature in lyr:
        value = raw_value(feature, field.index, field.kind, field.name)
        if value is None:
            continue
        for index, store in ((field.name_index, names), (field.color_index, colors)):
            counter = store.setdefault(value, Counter())
            if index >= 0 and feature.IsFieldSetAndNotNull(index):
                text = feature.GetFieldAsString(index).strip()
                if text:
                    counter[text] += 1
    lyr.SetIgnoredFields([])
    return names, colors


def _shapes_near(lyr: Any, field: _ClassField, ids: dict, grid: Grid, to_raster: Any, to_layer: Any, vector_path: str) -> list[tuple[dict, int]]:
    """Pass 2: the geometries near the grid, reprojected to the raster CRS, with their class ids, in layer order."""
    xmin, ymin, xmax, ymax = grid.bounds
    if to_raster is None:
        lyr.SetSpatialFilterRect(xmin, ymin, xmax, ymax)
    else:
        try:
            lyr.SetSpatialFilterRect(*to_layer.TransformBounds(xmin, ymin, xmax, ymax, 21))
        except (RuntimeError, AttributeError):
            lyr.SetSpatialFilter(None)
    shapes = []
    lyr.ResetReading()
    for feature in lyr:
        value = raw_value(feature, field.index, field.kind, field.name)
        geom = feature.GetGeometryRef()
        if value is None or geom is None or geom.IsEmpty():
            continue
        geom = geom.GetLinearGeometry() if geom.HasCurveGeometry() else geom.Clone()
        if to_raster is not None:
            try:
                geom.Transform(to_raster)
            except RuntimeError as exc:
                raise DataError(
                    f"Feature {feature.GetFID()} of {vector_path} cannot be reprojected to the patch CRS {grid.crs.to_string()} ({exc}).",
                    argument="vector_path",
                ) from exc
        gx0, gx1, gy0, gy1 = geom.GetEnvelope()
        if gx1 < xmin or gx0 > xmax or gy1 < ymin or gy0 > ymax:
            continue
        shapes.append((json.loads(geom.ExportToJson()), ids[value]))
    lyr.SetSpatialFilter(None)
    return shapes


def _burn(shapes: list[tuple[dict, int]], grid: Grid, vector_path: str) -> np.ndarray:
    """(H, W) uint8 class ids of the pixels whose centre lies in a shape (later shapes win), 0 elsewhere."""
    from rasterio.features import rasterize

    if not shapes:
        return np.zeros((grid.height, grid.width), dtype=np.uint8)
    try:
        return rasterize(shapes, out_shape=(grid.height, grid.width), transform=grid.transform, fill=NODATA_CLASS, dtype="uint8", all_touched=False)
    except ValueError as exc:
        raise DataError(f"Could not burn the reference geometries of {vector_path}: {exc}", argument="vector_path") from exc


def _nothing_burnt(lyr: Any, grid: Grid, to_raster: Any, near: bool) -> str:
    """Why nothing was burnt, with both extents in the patch CRS so the user sees where the polygons are."""
    ext = lyr.GetExtent()  # (xmin, xmax, ymin, ymax) in the layer CRS
    vec = (ext[0], ext[2], ext[1], ext[3])
    if to_raster is not None:
        try:
            vec = to_raster.TransformBounds(*vec, 21)
        except (RuntimeError, AttributeError):
            pass
    where = "overlaps the patch but covers no pixel centre" if near else "lies outside the patch"
    return (
        f"Nothing was burnt: the reference layer {where}. Reference extent {_fmt_extent(vec)}, "
        f"patch extent {_fmt_extent(grid.bounds)} (both in {grid.crs.to_string()}). "
        "Choose the reference polygons that cover this patch."
    )


def rasterize_reference_file(
    vector_path: str,
    class_field: str,
    like_path: str,
    out_path: str,
    *,
    layer: str | None = None,
    name_field: str | None = None,
    erosion_px: int = 0,
    options: ClassOptions | None = None,
    monitor: Monitor | None = None,
) -> ClassTable:
    """Burn the reference polygons onto the grid of ``like_path`` (e.g. a time stack) and write a class raster.

    The raster's tags say where the classes came from (``CLASS_FIELD``, ``CLASS_IDS`` = how the ids
    were made, ``CLASS_VALUES`` = field value → id when they differ, ``CLASS_NAMES_FROM``), so a
    renumbering is never silent.
    """
    monitor = ensure_monitor(monitor)
    options = options or ClassOptions(name_field=name_field)
    check_not_input(out_path, [p for p in (vector_path, like_path, options.legend_file) if p], "out_path")
    try:
        grid = Grid.of(like_path)
    except Exception as exc:  # rasterio raises its own RasterioIOError
        raise InputError(f"Could not read the grid of {like_path}: {exc}", argument="like_path") from exc
    if grid.crs is None:
        raise InputError(f"{like_path} has no coordinate reference system.", argument="like_path")
    monitor.update(0.05)
    burnt = burn_reference(vector_path, class_field, grid, layer=layer, erosion_px=erosion_px, options=options)
    labels, table = burnt.labels, burnt.table
    monitor.update(0.8)
    monitor.info(f"Classes: {burnt.how}; names from {burnt.names_from}.")
    if burnt.names_from == "none":
        monitor.info("The classes have no names: give a name field or a legend file, or choose a legend.")
    counts = np.bincount(labels.ravel(), minlength=256)
    summary = ", ".join(f"{c.id} {c.name}: {int(counts[c.id])}" for c in table)
    monitor.info(f"Reference pixels per class: {summary}; no data: {int(counts[0])}.")
    tags = {
        "SOURCE": os.path.basename(vector_path),
        "CLASS_FIELD": class_field,
        "CLASS_IDS": burnt.how,
        "CLASS_NAMES_FROM": burnt.names_from,
        "EROSION_PX": str(int(erosion_px)),
    }
    if any(str(v) != str(i) for v, i in burnt.values.items()):
        tags["CLASS_VALUES"] = json.dumps({str(v): i for v, i in sorted(burnt.values.items(), key=lambda kv: kv[1])}, ensure_ascii=False)
    monitor.update(1.0)  # last cancel check before writing
    write_class_raster(out_path, labels, grid, table, tags=tags)
    return table
