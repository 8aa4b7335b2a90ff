"""Reading a reference vector layer with OGR: open it, find its fields, read each feature's class value.

Shared by the reference rasterizer (``rasterize``) and the CORINE recoder (``corine``). Errors name the
arguments of their entry points: ``vector_path`` (the file), ``class_field``, ``name_field``, ``color_field``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

import numpy as np

from ..core.errors import InputError


def open_layer(vector_path: str, layer: str | None) -> tuple[Any, Any]:
    """The OGR dataset and layer (the first one when ``layer`` is None); keep the dataset alive while using the layer."""
    from osgeo import gdal, ogr

    gdal.UseExceptions()
    ogr.UseExceptions()
    if not os.path.exists(vector_path) and "://" not in vector_path and not vector_path.startswith("/vsi"):
        raise InputError(f"The reference vector {vector_path} does not exist.", argument="vector_path")
    try:
        ds = gdal.OpenEx(vector_path, gdal.OF_VECTOR | gdal.OF_READONLY)
    except RuntimeError as exc:
        raise InputError(f"Could not open the reference vector {vector_path}: {exc}", argument="vector_path") from exc
    if ds is None or ds.GetLayerCount() == 0:
        raise InputError(f"{vector_path} is not a vector file with a layer (polygons of land-cover classes).", argument="vector_path")
    if layer is None:
        lyr = ds.GetLayer(0)
    else:
        names = [ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())]
        if layer not in names:
            raise InputError(f"{vector_path} has no layer '{layer}'; its layers are: {', '.join(names)}.", argument="vector_path")
        lyr = ds.GetLayerByName(layer)
    return ds, lyr


def field_names(lyr: Any) -> list[str]:
    defn = lyr.GetLayerDefn()
    return [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]


def guess_name_field(class_field: str, fields: list[str]) -> str | None:
    """A field that likely names the classes (``LULC_NAME`` beside ``LULC_ID``, else ``name``), used when none is given."""
    lower = {f.lower(): f for f in fields}
    stem = class_field[:-3] if class_field.lower().endswith("_id") else class_field
    for candidate in (f"{stem}_NAME".lower(), "name"):
        if candidate in lower and lower[candidate] != class_field:
            return lower[candidate]
    return None


def raw_value(feature: Any, index: int, kind: str, class_field: str) -> int | str | None:
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
        raise InputError(
            f"The class field '{class_field}' must hold whole-number class ids or text, but feature {feature.GetFID()} has {real}.",
            argument="class_field",
        )
    return int(round(real))


def field_kind(defn: Any, index: int, class_field: str) -> str:
    """"int", "real" or "text": how ``raw_value`` reads the class field (other types cannot hold classes)."""
    from osgeo import ogr

    ftype = defn.GetFieldDefn(index).GetType()
    if ftype in (ogr.OFTInteger, ogr.OFTInteger64):
        return "int"
    if ftype == ogr.OFTReal:
        return "real"
    if ftype == ogr.OFTString:
        return "text"
    raise InputError(
        f"The class field '{class_field}' is of type {defn.GetFieldDefn(index).GetTypeName()}; "
        "it must hold integer class ids (1–255, 0 = no data) or class names (text).",
        argument="class_field",
    )


def check_field(fields: list[str], name: str | None, argument: str) -> None:
    """Refuse a field the layer lacks, listing those it has; ``argument`` is the one that named it."""
    if name and name not in fields:
        raise InputError(f"The reference layer has no field '{name}'; available fields: {', '.join(fields) or '(none)'}.", argument=argument)


def valid_colors(counter: Counter, color_field: str | None) -> Counter:
    """The colour field's values as #rrggbb (a colour that is not one is an error naming ``color_field``)."""
    out: Counter = Counter()
    for text, n in counter.items():
        m = re.match(r"^#?([0-9a-fA-F]{6})$", text)
        if not m:
            raise InputError(f"The colour field '{color_field}' holds {text!r}; expected colours as #rrggbb.", argument="color_field")
        out["#" + m.group(1).lower()] += n
    return out
