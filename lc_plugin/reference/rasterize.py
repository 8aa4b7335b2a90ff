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
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..core.atomic import check_not_input
from ..core.classes import NODATA_CLASS, ClassTable, LandCoverClass, default_color
from ..core.errors import LandCoverError
from ..core.legends import Legend, builtin_legend, read_legend_file
from ..core.monitor import ensure_monitor
from ..io.rasters import Grid, write_class_raster

MAX_CLASS_ID = 255
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


def _raw_value(feature, index: int, kind: str, class_field: str):
    """The feature's class value: int for numeric fields, stripped text for text ones; None for NULL/empty."""
    if not feature.IsFieldSetAndNotNull(index):
        return None
    if kind == "int":
        return feature.GetFieldAsInteger64(index)
    if kind == "text":
        text = feature.GetFieldAsString(index).strip()
        return text or None
    real = feature.GetFieldAsDouble(index)
    if not np.isfinite(real) or real != round(real):
        raise LandCoverError(
            f"The class field '{class_field}' must hold whole-number class ids or text, but feature {feature.GetFID()} has {real}.",
            "FIELD",
        )
    return int(round(real))


def _field_kind(defn, index: int, class_field: str) -> str:
    from osgeo import ogr

    ftype = defn.GetFieldDefn(index).GetType()
    if ftype in (ogr.OFTInteger, ogr.OFTInteger64):
        return "int"
    if ftype == ogr.OFTReal:
        return "real"
    if ftype == ogr.OFTString:
        return "text"
    raise LandCoverError(
        f"The class field '{class_field}' is of type {defn.GetFieldDefn(index).GetTypeName()}; "
        "it must hold integer class ids (1–255, 0 = no data) or class names (text).",
        "FIELD",
    )


def class_ids_of(values: set, *, is_text: bool, class_field: str, legend: Legend | None = None, zero: str = "refuse") -> tuple[dict, str]:
    """Field value → class id (1–255) for every value of the layer, and a sentence saying how.

    - With a built-in legend, its ids and aliases (CLC's "311" → 23) decide; a value it lacks is an error.
    - Whole numbers (numeric fields, or text fields holding only digits) are the ids themselves.
      0 means no data in a class raster, so a field holding 0 (QGIS's "Add unique value index
      field" numbers from 0) is refused (``zero="refuse"``), or every id is shifted up by one
      (``"shift"``), or 0 is burnt as no data (``"nodata"``, eo-learn's LULC convention).
    - Other text is numbered 1..n in sorted order (stable for one layer whatever the patch), the
      text becoming the class name.
    """
    if legend is not None:
        mapping = {v: legend.id_of(v) for v in values}
        unknown = sorted(str(v) for v, i in mapping.items() if i is None)
        if unknown:
            raise LandCoverError(
                f"The class field '{class_field}' holds value(s) {', '.join(unknown[:10])} that the {legend.title} legend "
                f"does not have; choose the field with its codes or another legend (LEGEND).",
                "LEGEND",
            )
        return mapping, f"class ids from the {legend.title} legend"
    if is_text and not all(str(v).isdigit() for v in values):
        ordered = sorted(values, key=lambda v: (v.casefold(), v))
        if len(ordered) > MAX_CLASS_ID:
            raise LandCoverError(
                f"The class field '{class_field}' holds {len(ordered)} different texts; at most {MAX_CLASS_ID} classes fit a class raster.", "FIELD"
            )
        return {v: i for i, v in enumerate(ordered, start=1)}, f"text classes numbered 1–{len(ordered)} in sorted order"
    numbers = {v: int(v) for v in values}
    how = "class ids from the field"
    if numbers and min(numbers.values()) == 0:
        if zero == "refuse":
            raise LandCoverError(
                f"The class field '{class_field}' holds the id 0, but 0 means no data in a class raster: "
                "those polygons would silently vanish (QGIS's 'Add unique value index field' numbers classes from 0). "
                "Set ZERO_ID to shift every id up by one (0 → 1, 1 → 2, …), or to burn 0 as no data if that is what it means, "
                "or recode the field to 1–255.",
                "FIELD",
            )
        if zero == "shift":
            numbers = {v: n + 1 for v, n in numbers.items()}
            how = "class ids from the field shifted up by one (ZERO_ID: 0 → 1)"
        else:
            how = "class ids from the field; 0 burnt as no data"
    bad = sorted(n for n in numbers.values() if not 0 <= n <= MAX_CLASS_ID)
    if bad:
        raise LandCoverError(
            f"Class ids in '{class_field}' must be 1–{MAX_CLASS_ID}, but it holds {bad[0] if bad[0] < 1 else bad[-1]}. "
            "Recode the classes to 1–255, or choose the legend they belong to (LEGEND, e.g. CORINE codes 111–523).",
            "FIELD",
        )
    return numbers, how


NODATA_NAMES = ("no data", "nodata", "no_data", "none", "unlabelled", "unlabeled", "unknown", "unclassified")


def _zero_named_nodata(names: dict) -> bool:
    """True when the layer's own name field says id 0 is no data: its polygons unnamed or named so,
    while other classes have names (eo-learn's LULC: id 0, empty LULC_NAME)."""
    zero = names.get(0)
    if zero is None or not any(counter for value, counter in names.items() if value != 0):
        return False
    return all(name.casefold() in NODATA_NAMES for name in zero)


def _most_common(counter: Counter | None) -> str:
    return counter.most_common(1)[0][0] if counter else ""


def build_class_table(
    ids: dict,
    names: dict[int, Counter],
    colors: dict[int, Counter],
    *,
    is_text: bool,
    legend: Legend | None,
    legend_file: dict[str, tuple[str, str]] | None,
    explicit_names: bool,
) -> tuple[ClassTable, str]:
    """Names and colours per id, from (in order) an explicit name/colour field, the legend file, the
    built-in legend, a guessed name field, the field's text, else "class <id>" and a meaningful or
    palette colour. Returns the table and where the names came from."""
    by_name = {name.casefold(): (name, color) for name, color in (legend_file or {}).values() if name}
    text_of = {i: str(v) for v, i in ids.items()} if is_text else {}
    classes, sources = [], set()
    for cid in sorted(set(ids.values()) - {NODATA_CLASS}):
        raw = [str(v) for v, i in ids.items() if i == cid]
        from_file = next((legend_file[r] for r in raw if legend_file and r in legend_file), None)
        if from_file is None and legend_file and str(cid) in legend_file:
            from_file = legend_file[str(cid)]
        if from_file is None and cid in text_of:
            from_file = by_name.get(text_of[cid].casefold())
        from_legend = legend.entries.get(cid) if legend else None
        field_name = _most_common(names.get(cid))
        candidates = [
            (field_name if explicit_names else "", "the name field"),
            (from_file[0] if from_file else "", "the legend file"),
            (from_legend[0] if from_legend else "", "the legend"),
            (field_name, "the name field"),
            (text_of.get(cid, ""), "the class field's text"),
        ]
        name, source = next(((n, s) for n, s in candidates if n), (f"class {cid}", "none"))
        sources.add(source)
        color = _most_common(colors.get(cid)) or (from_file[1] if from_file else "") or (from_legend[1] if from_legend else "")
        classes.append(LandCoverClass(int(cid), name, color or default_color(int(cid), name)))
    return ClassTable(classes), ", ".join(sorted(sources))


def _fmt_extent(ext) -> str:
    return "({:.2f}, {:.2f}, {:.2f}, {:.2f})".format(*ext)


@dataclass(frozen=True)
class ClassOptions:
    """How a reference layer's class field becomes class ids, names and colours (see ``class_ids_of``)."""

    name_field: str | None = None
    color_field: str | None = None
    legend: str | None = None  # a key of legends.BUILTIN, or None/"none"
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


def _check_field(fields: list[str], name: str | None, parameter: str) -> None:
    if name and name not in fields:
        raise LandCoverError(f"The reference layer has no field '{name}'; available fields: {', '.join(fields) or '(none)'}.", parameter)


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
    from osgeo import osr
    from rasterio.features import rasterize

    if erosion_px < 0:
        raise LandCoverError(f"The erosion radius must be 0 or more pixels, got {erosion_px}.", "EROSION")
    options = options or ClassOptions()
    if options.zero not in ZERO_CHOICES:
        raise LandCoverError(f"Unknown handling of class id 0 '{options.zero}'; choose one of {', '.join(ZERO_CHOICES)}.", "ZERO_ID")
    legend = builtin_legend(options.legend)
    legend_file = read_legend_file(options.legend_file) if options.legend_file else None
    ds, lyr = _open_layer(vector_path, layer)
    fields = _field_names(lyr)
    _check_field(fields, class_field, "FIELD")
    _check_field(fields, options.name_field, "NAME_FIELD")
    _check_field(fields, options.color_field, "COLOR_FIELD")
    defn = lyr.GetLayerDefn()
    class_index = defn.GetFieldIndex(class_field)
    kind = _field_kind(defn, class_index, class_field)
    name_field = options.name_field or _guess_name_field(class_field, fields)
    name_index = defn.GetFieldIndex(name_field) if name_field else -1
    color_index = defn.GetFieldIndex(options.color_field) if options.color_field else -1

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

    # Pass 1 (no geometries): every class value of the layer with its names and colours, for one shared table.
    names: dict = {}
    colors: dict = {}
    lyr.SetIgnoredFields(["OGR_GEOMETRY", "OGR_STYLE"])
    lyr.ResetReading()
    for feature in lyr:
        value = _raw_value(feature, class_index, kind, class_field)
        if value is None:
            continue
        for index, store in ((name_index, names), (color_index, colors)):
            counter = store.setdefault(value, Counter())
            if index >= 0 and feature.IsFieldSetAndNotNull(index):
                text = feature.GetFieldAsString(index).strip()
                if text:
                    counter[text] += 1
    lyr.SetIgnoredFields([])
    if not names:
        raise LandCoverError(f"The field '{class_field}' holds no class (every value is NULL or empty) in {vector_path}.", "FIELD")
    zero = options.zero
    if zero == "refuse" and kind != "text" and _zero_named_nodata(names):
        zero = "nodata"
    ids, how = class_ids_of(set(names), is_text=kind == "text", class_field=class_field, legend=legend, zero=zero)
    if zero == "nodata" and options.zero == "refuse":
        how += " (the layer's name field leaves every id-0 polygon unnamed or names it no data)"
    per_id_names: dict[int, Counter] = {}
    per_id_colors: dict[int, Counter] = {}
    for value, cid in ids.items():
        if cid == NODATA_CLASS:
            continue
        per_id_names.setdefault(cid, Counter()).update(names[value])
        per_id_colors.setdefault(cid, Counter()).update(_valid_colors(colors[value], options.color_field))
    table, names_from = build_class_table(
        ids, per_id_names, per_id_colors, is_text=kind == "text", legend=legend, legend_file=legend_file, explicit_names=bool(options.name_field)
    )

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
        value = _raw_value(feature, class_index, kind, class_field)
        geom = feature.GetGeometryRef()
        if value is None or geom is None or geom.IsEmpty():
            continue
        value = ids[value]
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
    return BurntReference(labels, table, ids, how, names_from)


def _valid_colors(counter: Counter, color_field: str | None) -> Counter:
    """The colour field's values as #rrggbb (a colour that is not one is an error naming COLOR_FIELD)."""
    out = Counter()
    for text, n in counter.items():
        m = re.match(r"^#?([0-9a-fA-F]{6})$", text)
        if not m:
            raise LandCoverError(f"The colour field '{color_field}' holds {text!r}; expected colours as #rrggbb.", "COLOR_FIELD")
        out["#" + m.group(1).lower()] += n
    return out


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
    monitor=None,
) -> ClassTable:
    """Burn the reference polygons onto the grid of ``like_path`` (e.g. a time stack) and write a class raster.

    The raster's tags say where the classes came from (``CLASS_FIELD``, ``CLASS_IDS`` = how the ids
    were made, ``CLASS_VALUES`` = field value → id when they differ, ``CLASS_NAMES_FROM``), so a
    renumbering is never silent.
    """
    monitor = ensure_monitor(monitor)
    options = options or ClassOptions(name_field=name_field)
    check_not_input(out_path, [p for p in (vector_path, like_path, options.legend_file) if p], "OUTPUT")
    try:
        grid = Grid.of(like_path)
    except Exception as exc:  # rasterio raises its own RasterioIOError
        raise LandCoverError(f"Could not read the grid of {like_path}: {exc}", "GRID") from exc
    if grid.crs is None:
        raise LandCoverError(f"{like_path} has no coordinate reference system.", "GRID")
    monitor.update(0.05)
    burnt = burn_reference(vector_path, class_field, grid, layer=layer, erosion_px=erosion_px, options=options)
    labels, table = burnt.labels, burnt.table
    monitor.update(0.8)
    monitor.info(f"Classes: {burnt.how}; names from {burnt.names_from}.")
    if burnt.names_from == "none":
        monitor.info("The classes have no names: give a name field (NAME_FIELD), a legend file (LEGEND_FILE) or choose a legend (LEGEND).")
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
