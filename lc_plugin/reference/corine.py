"""CORINE Land Cover (CLC) as reference: the official 44-class legend, its aggregation to levels 2 and 1,
and the burning of a CLC vector's code field (text "311" or integer 311) onto a patch grid.

The table is the EEA's ``clc_legend.csv`` that comes with every CLC download (GRID_CODE, CLC_CODE,
LABEL1, LABEL2, LABEL3, RGB). Class ids are UInt8 like every class raster here: level 3 keeps the EEA
raster product's own GRID_CODE (1–44), levels 2 and 1 number their groups in code order (1–15, 1–5). The
EEA legend gives colours to level-3 classes only; a level-2 or level-1 class takes the colour of its first
level-3 class (e.g. "Forests" the colour of 311), as the customary CLC level-1 map colours do.

CLC codes 990, 995 and 999 (unclassified land, unclassified water, no data) are burnt as no data.
"""

from __future__ import annotations

import os
import uuid

import numpy as np

from ..core.atomic import check_not_input
from ..core.classes import ClassTable, LandCoverClass
from ..core.errors import DataError, InputError
from ..core.monitor import Monitor, ensure_monitor
from ..io.rasters import Grid, write_class_raster
from .layers import open_layer

# (CLC_CODE, LABEL1, LABEL2, LABEL3, RGB) in GRID_CODE order (GRID_CODE = position + 1), from EEA's clc_legend.csv.
_A, _G, _F, _W, _B = "Artificial surfaces", "Agricultural areas", "Forest and semi natural areas", "Wetlands", "Water bodies"
_ICT, _MDC, _ANV = "Industrial, commercial and transport units", "Mine, dump and construction sites", "Artificial, non-agricultural vegetated areas"
_HET, _SHV, _OPEN = "Heterogeneous agricultural areas", "Scrub and/or herbaceous vegetation associations", "Open spaces with little or no vegetation"
CLC_LEGEND: list[tuple[int, str, str, str, tuple[int, int, int]]] = [
    (111, _A, "Urban fabric", "Continuous urban fabric", (230, 0, 77)),
    (112, _A, "Urban fabric", "Discontinuous urban fabric", (255, 0, 0)),
    (121, _A, _ICT, "Industrial or commercial units", (204, 77, 242)),
    (122, _A, _ICT, "Road and rail networks and associated land", (204, 0, 0)),
    (123, _A, _ICT, "Port areas", (230, 204, 204)),
    (124, _A, _ICT, "Airports", (230, 204, 230)),
    (131, _A, _MDC, "Mineral extraction sites", (166, 0, 204)),
    (132, _A, _MDC, "Dump sites", (166, 77, 0)),
    (133, _A, _MDC, "Construction sites", (255, 77, 255)),
    (141, _A, _ANV, "Green urban areas", (255, 166, 255)),
    (142, _A, _ANV, "Sport and leisure facilities", (255, 230, 255)),
    (211, _G, "Arable land", "Non-irrigated arable land", (255, 255, 168)),
    (212, _G, "Arable land", "Permanently irrigated land", (255, 255, 0)),
    (213, _G, "Arable land", "Rice fields", (230, 230, 0)),
    (221, _G, "Permanent crops", "Vineyards", (230, 128, 0)),
    (222, _G, "Permanent crops", "Fruit trees and berry plantations", (242, 166, 77)),
    (223, _G, "Permanent crops", "Olive groves", (230, 166, 0)),
    (231, _G, "Pastures", "Pastures", (230, 230, 77)),
    (241, _G, _HET, "Annual crops associated with permanent crops", (255, 230, 166)),
    (242, _G, _HET, "Complex cultivation patterns", (255, 230, 77)),
    (243, _G, _HET, "Land principally occupied by agriculture, with significant areas of natural vegetation", (230, 204, 77)),
    (244, _G, _HET, "Agro-forestry areas", (242, 204, 166)),
    (311, _F, "Forests", "Broad-leaved forest", (128, 255, 0)),
    (312, _F, "Forests", "Coniferous forest", (0, 166, 0)),
    (313, _F, "Forests", "Mixed forest", (77, 255, 0)),
    (321, _F, _SHV, "Natural grasslands", (204, 242, 77)),
    (322, _F, _SHV, "Moors and heathland", (166, 255, 128)),
    (323, _F, _SHV, "Sclerophyllous vegetation", (166, 230, 77)),
    (324, _F, _SHV, "Transitional woodland-shrub", (166, 242, 0)),
    (331, _F, _OPEN, "Beaches, dunes, sands", (230, 230, 230)),
    (332, _F, _OPEN, "Bare rocks", (204, 204, 204)),
    (333, _F, _OPEN, "Sparsely vegetated areas", (204, 255, 204)),
    (334, _F, _OPEN, "Burnt areas", (0, 0, 0)),
    (335, _F, _OPEN, "Glaciers and perpetual snow", (166, 230, 204)),
    (411, _W, "Inland wetlands", "Inland marshes", (166, 166, 255)),
    (412, _W, "Inland wetlands", "Peat bogs", (77, 77, 255)),
    (421, _W, "Maritime wetlands", "Salt marshes", (204, 204, 255)),
    (422, _W, "Maritime wetlands", "Salines", (230, 230, 255)),
    (423, _W, "Maritime wetlands", "Intertidal flats", (166, 166, 230)),
    (511, _B, "Inland waters", "Water courses", (0, 204, 242)),
    (512, _B, "Inland waters", "Water bodies", (128, 242, 230)),
    (521, _B, "Marine waters", "Coastal lagoons", (0, 255, 166)),
    (522, _B, "Marine waters", "Estuaries", (166, 255, 230)),
    (523, _B, "Marine waters", "Sea and ocean", (230, 242, 255)),
]
NO_DATA_CODES = {990, 995, 999}  # unclassified land surface, unclassified water bodies, no data
# Vegetated level-3 classes: agricultural areas (2xx), forests (31x), scrub and herbaceous vegetation (32x).
VEGETATION_CODES = [c[0] for c in CLC_LEGEND if c[0] // 100 == 2 or c[0] // 10 in (31, 32)]
LEVELS = ("3", "2", "1", "vegetation")


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def clc_recode(level: str = "3") -> tuple[dict[int, int], ClassTable]:
    """CLC level-3 code → class id at ``level`` (3, 2, 1 or "vegetation"), and that level's class table."""
    if level not in LEVELS:
        raise InputError(f"Unknown CORINE level '{level}'; use one of {', '.join(LEVELS)}.", argument="level")
    codes: dict[int, int] = {}
    classes: dict[int, tuple[int, str, str]] = {}
    for grid_code, (code, label1, label2, label3, rgb) in enumerate(CLC_LEGEND, start=1):
        if level in ("3", "vegetation"):
            if level == "vegetation" and code not in VEGETATION_CODES:
                continue
            key, name = code, label3
            class_id = grid_code
        else:
            key = code // 10 if level == "2" else code // 100
            name = label2 if level == "2" else label1
            class_id = classes[key][0] if key in classes else len(classes) + 1
        classes.setdefault(key, (class_id, name, _hex(rgb)))
        codes[code] = classes[key][0]
    return codes, ClassTable(LandCoverClass(i, n, c) for i, n, c in classes.values())


def parse_code(value) -> int | None:
    """A CLC code from a text ("311", "311.0") or numeric field value; None for empty or no-data codes."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        code = int(float(text))
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a CORINE code") from exc
    return None if code in NO_DATA_CODES else code


def _recoded_layer(vector_path: str, code_field: str, layer: str | None, grid: Grid, codes: dict[int, int]) -> tuple[str, int]:
    """The features near the patch, with an integer ``lc_clc`` field of class ids, in an in-memory GeoPackage,
    and how many of them have a class at this level."""
    from osgeo import gdal, ogr, osr

    ds, lyr = open_layer(vector_path, layer)
    defn = lyr.GetLayerDefn()
    index = defn.GetFieldIndex(code_field)
    if index < 0:
        names = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
        raise InputError(f"The CORINE layer has no field '{code_field}'; available fields: {', '.join(names)}.", argument="code_field")
    srs = lyr.GetSpatialRef()
    if srs is not None:
        target = osr.SpatialReference()
        target.ImportFromWkt(grid.crs.to_wkt())
        for s in (srs, target):
            s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        x0, y0, x1, y1 = osr.CoordinateTransformation(target, srs).TransformBounds(*grid.bounds, 21)
        lyr.SetSpatialFilterRect(x0, y0, x1, y1)
    path = f"/vsimem/lc_clc_{uuid.uuid4().hex}.gpkg"
    out_ds = gdal.GetDriverByName("GPKG").Create(path, 0, 0, 0, gdal.GDT_Unknown)
    out = out_ds.CreateLayer("clc", srs, ogr.wkbUnknown)
    out.CreateField(ogr.FieldDefn("lc_clc", ogr.OFTInteger))
    out.StartTransaction()
    n_classed = 0
    for feature in lyr:
        raw = feature.GetField(index) if feature.IsFieldSetAndNotNull(index) else None
        try:
            code = parse_code(raw)
        except ValueError as exc:
            raise InputError(f"Feature {feature.GetFID()}: {exc} (expected level-3 codes such as 311 in '{code_field}').", argument="code_field") from exc
        if code is not None and code not in {c[0] for c in CLC_LEGEND}:
            raise InputError(
                f"Feature {feature.GetFID()} has the code {code} in '{code_field}', which is not a CORINE level-3 code (111–523).", argument="code_field"
            )
        geom = feature.GetGeometryRef()
        if geom is None:
            continue
        new = ogr.Feature(out.GetLayerDefn())
        new.SetGeometry(geom)
        if code in codes:
            new.SetField("lc_clc", codes[code])
            n_classed += 1
        out.CreateFeature(new)
    out.CommitTransaction()
    del out, out_ds, ds
    return path, n_classed


def rasterize_clc(
    vector_path: str, code_field: str, grid: Grid, *, level: str = "3", layer: str | None = None, erosion_px: int = 0
) -> tuple[np.ndarray, ClassTable]:
    """(H, W) uint8 class ids at ``level`` and that level's full class table (names, official colours)."""
    from osgeo import gdal

    from .rasterize import rasterize_reference

    codes, table = clc_recode(level)
    path, n_classed = _recoded_layer(vector_path, code_field, layer, grid, codes)
    try:
        if n_classed == 0:
            raise DataError(
                f"No CORINE polygon of {vector_path} near the patch has a class at level {level}; check the patch and the code field.", argument="vector_path"
            )
        labels, _ = rasterize_reference(path, "lc_clc", grid, erosion_px=erosion_px)
    finally:
        gdal.Unlink(path)
    return labels, table


def rasterize_clc_file(
    vector_path: str, code_field: str, like_path: str, out_path: str, *, level: str = "3", layer: str | None = None,
    erosion_px: int = 0, monitor: Monitor | None = None,
) -> ClassTable:
    """File-level entry point: the CLC polygons burnt onto the grid of ``like_path``, written as a class raster."""
    monitor = ensure_monitor(monitor)
    check_not_input(out_path, [vector_path, like_path], "out_path")
    grid = Grid.of(like_path)
    labels, table = rasterize_clc(vector_path, code_field, grid, level=level, layer=layer, erosion_px=erosion_px)
    monitor.update(0.9)
    tags = {"SOURCE": os.path.basename(vector_path), "CLASS_FIELD": code_field, "LEGEND": f"CORINE Land Cover level {level}",
            "EROSION_PX": str(int(erosion_px))}
    write_class_raster(out_path, labels, grid, table, tags=tags)
    return table
