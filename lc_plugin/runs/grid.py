"""Split an area of interest into square patches aligned to a fixed grid in a projected CRS.

Why aligned to multiples of the patch size: a patch's id (``"<col>_<row>"``) and its pixel grid
then depend only on the CRS, the patch size and the resolution, never on the AOI, so patches
of overlapping runs (or a grown AOI) line up pixel for pixel and can be mosaicked or reused.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from osgeo import gdal, ogr, osr
from rasterio.crs import CRS
from rasterio.transform import Affine

from ..core.atomic import atomic_output, check_not_input
from ..core.errors import InputError
from ..core.monitor import Monitor, ensure_monitor
from ..io.rasters import Grid

GRID_LAYER = "patches"
DEFAULT_MAX_PATCHES = 10_000  # 10 km patches: 1 million km², a few large countries
_FIELDS = [
    ("patch_id", ogr.OFTString),
    ("col", ogr.OFTInteger),
    ("row", ogr.OFTInteger),
    ("crs", ogr.OFTString),
    ("resolution", ogr.OFTReal),
    ("width_px", ogr.OFTInteger),
    ("height_px", ogr.OFTInteger),
    ("buffer_px", ogr.OFTInteger),
]
_POLYGON_TYPES = (ogr.wkbPolygon, ogr.wkbMultiPolygon)
_CURVED_POLYGON_TYPES = (ogr.wkbCurvePolygon, ogr.wkbMultiSurface)


@dataclass
class Patch:
    """One square tile of the grid: its stable id and its pixel grid (buffer included)."""

    id: str
    grid: Grid


def utm_epsg_for_lonlat(lon: float, lat: float) -> int:
    """EPSG code of the standard UTM zone holding (lon, lat): 326xx north, 327xx south."""
    zone = _utm_zone(lon)
    return (32600 if lat >= 0 else 32700) + zone


def _utm_zone(lon: float) -> int:
    lon = ((lon + 180.0) % 360.0) - 180.0
    return min(max(int(math.floor((lon + 180.0) / 6.0)) + 1, 1), 60)


def _srs(text_or_srs: str | osr.SpatialReference) -> osr.SpatialReference:
    if isinstance(text_or_srs, osr.SpatialReference):
        srs = text_or_srs.Clone()
    else:
        srs = osr.SpatialReference()
        try:
            err = srs.SetFromUserInput(text_or_srs)
        except RuntimeError:
            err = 1
        if err != 0:
            raise InputError(f"Could not understand the CRS {text_or_srs!r}; give e.g. 'EPSG:32633' or a WKT string.", "crs")
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _wgs84() -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _crs_text(srs: osr.SpatialReference) -> str:
    """``EPSG:nnnn`` when the CRS has an EPSG code, otherwise its WKT."""
    clone = srs.Clone()
    if clone.GetAuthorityName(None) != "EPSG":
        try:
            clone.AutoIdentifyEPSG()
        except RuntimeError:
            pass
    if clone.GetAuthorityName(None) == "EPSG" and clone.GetAuthorityCode(None):
        candidate = osr.SpatialReference()
        candidate.ImportFromEPSG(int(clone.GetAuthorityCode(None)))
        if candidate.IsSame(srs):
            return f"EPSG:{clone.GetAuthorityCode(None)}"
    return srs.ExportToWkt()


def _open_vector(path: str, argument: str, what: str) -> gdal.Dataset:
    """Open the vector file ``path`` (the ``what`` the argument names), or say what is wrong with it."""
    if not path or not os.path.exists(path):
        raise InputError(f"The {what} file {path!r} does not exist.", argument)
    try:
        ds = gdal.OpenEx(path, gdal.OF_VECTOR)
    except RuntimeError:
        ds = None
    if ds is None or ds.GetLayerCount() == 0:
        raise InputError(f"Could not read {path} as a vector layer (GeoPackage, Shapefile, GeoJSON, ...).", argument)
    return ds


def _layer(ds: gdal.Dataset, path: str, name: str | None, argument: str, default: str | None = None) -> ogr.Layer:
    """The layer ``name`` of ``ds``, else ``default`` if it has one, else its first layer."""
    if name:
        layer = ds.GetLayerByName(name)
        if layer is None:
            names = [ds.GetLayerByIndex(i).GetName() for i in range(ds.GetLayerCount())]
            raise InputError(f"{path} has no layer {name!r}; its layers are {', '.join(names)}.", argument)
        return layer
    if default is not None and ds.GetLayerByName(default) is not None:
        return ds.GetLayerByName(default)
    return ds.GetLayerByIndex(0)


def _read_aoi(path: str, layer_name: str | None) -> tuple[ogr.Geometry, osr.SpatialReference]:
    """Union of all polygons of the layer, and the layer's CRS."""
    ds = _open_vector(path, "aoi_path", "AOI")
    layer = _layer(ds, path, layer_name, "aoi_layer")
    srs = layer.GetSpatialRef()
    if srs is None or (srs.GetName() or "").startswith("Undefined"):  # GeoPackage srs_id 0 / -1
        raise InputError(f"The AOI layer {layer.GetName()!r} of {path} has no CRS; assign one (e.g. in QGIS).", "aoi_path")
    srs = _srs(srs)
    parts = ogr.Geometry(ogr.wkbMultiPolygon)
    n_features = 0
    for feature in layer:
        n_features += 1
        geom = feature.GetGeometryRef()
        if geom is None or geom.IsEmpty():
            continue
        geom = geom.Clone()
        flat = ogr.GT_Flatten(geom.GetGeometryType())
        if flat in _CURVED_POLYGON_TYPES:
            geom = geom.GetLinearGeometry()
            flat = ogr.GT_Flatten(geom.GetGeometryType())
        if flat == ogr.wkbGeometryCollection:
            members = [geom.GetGeometryRef(i) for i in range(geom.GetGeometryCount())]
        else:
            members = [geom]
        for member in members:
            mflat = ogr.GT_Flatten(member.GetGeometryType())
            if mflat not in _POLYGON_TYPES:
                raise InputError(
                    f"The AOI must contain polygons, but {path} (layer {layer.GetName()!r}) has a "
                    f"{ogr.GeometryTypeToName(mflat)} geometry; draw or choose a polygon layer.",
                    "aoi_path",
                )
            member = member.Clone()
            member.FlattenTo2D()
            if mflat == ogr.wkbPolygon:
                parts.AddGeometry(member)
            else:
                for i in range(member.GetGeometryCount()):
                    parts.AddGeometry(member.GetGeometryRef(i))
    if n_features == 0:
        raise InputError(f"The AOI layer {layer.GetName()!r} of {path} has no features; draw at least one polygon.", "aoi_path")
    if parts.GetGeometryCount() == 0:
        raise InputError(f"All geometries of the AOI layer {layer.GetName()!r} of {path} are empty.", "aoi_path")
    union = _union(parts)
    if union is None or union.IsEmpty():
        raise InputError(f"The AOI polygons of {path} have no area.", "aoi_path")
    return union, srs


def _union(parts: ogr.Geometry) -> ogr.Geometry | None:
    """Dissolve the AOI polygons, repairing invalid ones (self-intersections) first."""
    gdal.PushErrorHandler("CPLQuietErrorHandler")  # GEOS validity warnings are expected here
    try:
        if not parts.IsValid():  # overlapping features or invalid rings
            fixed = ogr.Geometry(ogr.wkbMultiPolygon)
            for i in range(parts.GetGeometryCount()):
                poly = parts.GetGeometryRef(i)
                _add_polygons(fixed, poly if poly.IsValid() else _make_valid(poly))
            parts = fixed
        try:
            union = parts.UnionCascaded()
        except RuntimeError:
            union = None
        if union is not None and not union.IsValid():
            union = _make_valid(union)
        return union
    finally:
        gdal.PopErrorHandler()


def _make_valid(geom: ogr.Geometry) -> ogr.Geometry | None:
    try:
        return geom.MakeValid() if hasattr(geom, "MakeValid") else geom.Buffer(0)
    except RuntimeError:
        return None


def _add_polygons(target: ogr.Geometry, geom: ogr.Geometry | None) -> None:
    """Add the polygons of geom (polygon, multipolygon or collection) to a multipolygon."""
    if geom is None:
        return
    flat = ogr.GT_Flatten(geom.GetGeometryType())
    if flat == ogr.wkbPolygon:
        target.AddGeometry(geom)
    elif flat in (ogr.wkbMultiPolygon, ogr.wkbGeometryCollection):
        for i in range(geom.GetGeometryCount()):
            _add_polygons(target, geom.GetGeometryRef(i))


def _auto_utm(aoi: ogr.Geometry, srs: osr.SpatialReference) -> osr.SpatialReference:
    """UTM zone holding every AOI vertex; refuse AOIs that span several zones."""
    geom = aoi.Clone()
    wgs84 = _wgs84()
    if not srs.IsSame(wgs84):
        geom.Transform(osr.CoordinateTransformation(srs, wgs84))
    points = _vertices(geom)
    zones = sorted({_utm_zone(lon) for lon, _ in points})
    if len(zones) > 1:
        names = ", ".join(str(z) for z in zones)
        raise InputError(
            f"The AOI spans several UTM zones ({names}); choose a projected CRS explicitly in {{argument}} "
            f"(e.g. EPSG:326{zones[0]:02d}), or split the AOI.",
            "crs",
        )
    centroid = geom.Centroid()
    lat = centroid.GetY() if centroid is not None and not centroid.IsEmpty() else points[0][1]
    return _srs(f"EPSG:{utm_epsg_for_lonlat(points[0][0], lat)}")


def _vertices(geom: ogr.Geometry) -> list[tuple[float, float]]:
    if geom.GetGeometryCount() > 0:
        out: list[tuple[float, float]] = []
        for i in range(geom.GetGeometryCount()):
            out.extend(_vertices(geom.GetGeometryRef(i)))
        return out
    return [(p[0], p[1]) for p in geom.GetPoints() or []]


def _box(minx: float, miny: float, maxx: float, maxy: float) -> ogr.Geometry:
    ring = ogr.Geometry(ogr.wkbLinearRing)
    for x, y in ((minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy), (minx, miny)):
        ring.AddPoint_2D(x, y)
    poly = ogr.Geometry(ogr.wkbPolygon)
    poly.AddGeometry(ring)
    return poly


def _overlaps(cell: ogr.Geometry, geom: ogr.Geometry) -> bool:
    """True when the cell shares area with geom (touching along an edge does not count)."""
    return bool(geom is not None and not geom.IsEmpty() and cell.Intersects(geom) and not cell.Touches(geom))


@dataclass(frozen=True)
class PatchGrid:
    """A written patch grid: its GeoPackage and how many patches it holds."""

    path: str
    count: int


def create_grid(
    aoi_path: str,
    out_path: str,
    *,
    aoi_layer: str | None = None,
    crs: str | None = None,
    patch_px: int = 1000,
    resolution: float = 10.0,
    buffer_px: int = 0,
    max_patches: int = DEFAULT_MAX_PATCHES,
    monitor: Monitor | None = None,
) -> PatchGrid:
    """Write the patches covering the AOI to a GeoPackage (layer ``patches``).

    More than ``max_patches`` patches is refused before anything is written (a continent at 1 km
    patches would take hours and gigabytes), with the count it would have been.

    Patch (col, row) covers ``[col*size, (col+1)*size] x [row*size, (row+1)*size]`` in the
    target CRS (``size = patch_px * resolution``), grown by ``buffer_px`` pixels on every side.
    The stored polygon is the buffered extent, i.e. exactly the patch raster's footprint.
    """
    monitor = ensure_monitor(monitor)
    _check_sizes(patch_px, resolution, buffer_px)
    patch_px, buffer_px = int(patch_px), int(buffer_px)
    check_not_input(out_path, [aoi_path], "out_path")
    aoi, target = _aoi_in_target_crs(aoi_path, aoi_layer, crs)
    size = patch_px * resolution
    minx, maxx, miny, maxy = aoi.GetEnvelope()
    span = (math.floor(minx / size), math.floor(maxx / size), math.floor(miny / size), math.floor(maxy / size))
    if (span[1] - span[0] + 1) * (span[3] - span[2] + 1) > max_patches:  # the bounding box alone might be too many: count
        _check_patch_count(aoi, size, span, max_patches, monitor)
    width = patch_px + 2 * buffer_px
    fields = {"crs": _crs_text(target), "resolution": float(resolution), "width_px": width, "height_px": width, "buffer_px": buffer_px}
    with atomic_output(out_path) as tmp:
        count = _write_patches(tmp, out_path, target, aoi, size, buffer_px * resolution, span, fields, monitor)
        monitor.update(1.0)
    return PatchGrid(out_path, count)


def _check_sizes(patch_px: int, resolution: float, buffer_px: int) -> None:
    if int(patch_px) != patch_px or patch_px < 1:
        raise InputError(f"The patch size must be a whole number of pixels >= 1, got {patch_px}.", "patch_px")
    if not resolution or not math.isfinite(resolution) or resolution <= 0:
        raise InputError(f"The resolution must be a positive number of metres, got {resolution}.", "resolution")
    if int(buffer_px) != buffer_px or buffer_px < 0:
        raise InputError(f"The buffer must be a whole number of pixels >= 0, got {buffer_px}.", "buffer_px")


def _aoi_in_target_crs(aoi_path: str, aoi_layer: str | None, crs: str | None) -> tuple[ogr.Geometry, osr.SpatialReference]:
    """The AOI's dissolved polygons in the target CRS (``crs``, else the AOI's UTM zone), and that CRS."""
    aoi, aoi_srs = _read_aoi(aoi_path, aoi_layer)
    target = _auto_utm(aoi, aoi_srs) if not crs else _srs(crs)
    if not target.IsProjected():
        raise InputError(
            f"The CRS {crs or _crs_text(target)} is not projected; patches need metres: choose a projected CRS such as UTM.",
            "crs",
        )
    if abs(target.GetLinearUnits() - 1.0) > 1e-9:
        raise InputError(
            f"The CRS {crs} uses {target.GetLinearUnitsName()}, but the resolution is in metres; choose a CRS in metres.",
            "crs",
        )
    if not aoi_srs.IsSame(target):
        aoi = aoi.Clone()
        aoi.Transform(osr.CoordinateTransformation(aoi_srs, target))
    return aoi, target


def _write_patches(
    tmp: str,
    out_path: str,
    target: osr.SpatialReference,
    aoi: ogr.Geometry,
    size: float,
    buf: float,
    span: tuple[int, int, int, int],
    fields: dict[str, object],
    monitor: Monitor,
) -> int:
    """Write the patches of ``span`` (col0, col1, row0, row1) that overlap the AOI, north to south, to the
    GeoPackage ``tmp``; each has its id, col, row and the shared ``fields``. Returns how many."""
    col0, col1, row0, row1 = span
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(tmp)
    if ds is None:
        raise InputError(f"Could not create the GeoPackage {out_path}.", "out_path")
    layer = feature = defn = None
    try:
        layer = ds.CreateLayer(GRID_LAYER, srs=target, geom_type=ogr.wkbPolygon)
        for name, kind in _FIELDS:
            layer.CreateField(ogr.FieldDefn(name, kind))
        defn = layer.GetLayerDefn()
        count = 0
        n_rows = row1 - row0 + 1
        layer.StartTransaction()
        for i, row in enumerate(range(row1, row0 - 1, -1)):  # north to south
            monitor.update(i / n_rows)
            strip = aoi.Intersection(_box(col0 * size, row * size, (col1 + 1) * size, (row + 1) * size))
            if strip is None or strip.IsEmpty():
                continue
            for col in range(col0, col1 + 1):
                x0, y0 = col * size, row * size
                if not _overlaps(_box(x0, y0, x0 + size, y0 + size), strip):
                    continue
                feature = ogr.Feature(defn)
                for name, value in {"patch_id": f"{col}_{row}", "col": col, "row": row, **fields}.items():
                    feature.SetField(name, value)
                feature.SetGeometry(_box(x0 - buf, y0 - buf, x0 + size + buf, y0 + size + buf))
                layer.CreateFeature(feature)
                count += 1
        layer.CommitTransaction()
    finally:
        feature = layer = defn = None
        ds = None  # close (and on error roll back) before atomic_output renames or removes the file
    return count


def _check_patch_count(aoi: ogr.Geometry, size: float, span: tuple[int, int, int, int], max_patches: int, monitor: Monitor) -> None:
    """Refuse an AOI that needs more than ``max_patches`` patches, saying how many it would need.

    The AOI's area gives a lower bound at once (a continent is refused in a second); below that
    bound the patches are counted row by row, stopping past the limit.
    """
    advice = "raise {argument}, choose a larger patch size or a smaller AOI."
    at_least = math.ceil(aoi.GetArea() / (size * size))
    if at_least > max_patches:
        raise InputError(
            f"This AOI needs at least {at_least:,} patches of {size / 1000:g} km, more than {{argument}} = {max_patches:,}; {advice}",
            "max_patches",
        )
    col0, col1, row0, row1 = span
    count = 0
    for i, row in enumerate(range(row1, row0 - 1, -1)):
        monitor.check()
        strip = aoi.Intersection(_box(col0 * size, row * size, (col1 + 1) * size, (row + 1) * size))
        if strip is None or strip.IsEmpty():
            continue
        count += sum(_overlaps(_box(col * size, row * size, (col + 1) * size, (row + 1) * size), strip) for col in range(col0, col1 + 1))
        if count > max_patches:
            rows_left = row1 - row0 - i
            raise InputError(
                f"This AOI needs more than {count:,} patches of {size / 1000:g} km ({rows_left} of {row1 - row0 + 1} rows not yet counted), "
                f"more than {{argument}} = {max_patches:,}; {advice}",
                "max_patches",
            )


def read_patches(grid_path: str, patch_ids: list[str] | None = None, layer: str | None = None) -> list[Patch]:
    """The patches of a grid written by ``create_grid`` (all, or those named, in that order)."""
    ds = _open_vector(grid_path, "grid_path", "patch grid")
    lyr = _layer(ds, grid_path, layer, "layer", default=GRID_LAYER)
    names = {lyr.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(lyr.GetLayerDefn().GetFieldCount())}
    missing = [n for n, _ in _FIELDS if n not in names and n != "buffer_px"]
    if missing:
        raise InputError(
            f"{grid_path} is not a patch grid made by the Create grid step (missing fields: {', '.join(missing)}).", "grid_path"
        )
    patches: dict[str, Patch] = {}
    crs_cache: dict[str, CRS] = {}
    for feature in lyr:
        geom = feature.GetGeometryRef()
        if geom is None:
            continue
        pid = feature.GetField("patch_id")
        text = feature.GetField("crs")
        if text not in crs_cache:
            crs_cache[text] = CRS.from_user_input(text)
        res = float(feature.GetField("resolution"))
        minx, _maxx, _miny, maxy = geom.GetEnvelope()
        transform = Affine(res, 0.0, minx, 0.0, -res, maxy)
        grid = Grid(crs_cache[text], transform, int(feature.GetField("width_px")), int(feature.GetField("height_px")))
        patches[pid] = Patch(pid, grid)
    if patch_ids is None:
        return list(patches.values())
    unknown = [p for p in patch_ids if p not in patches]
    if unknown:
        some = ", ".join(list(patches)[:5]) or "none"
        raise InputError(
            f"Unknown patch id(s) {', '.join(unknown)} in {grid_path}; valid ids look like: {some} ({len(patches)} patches).",
            "patch_ids",
        )
    return [patches[p] for p in patch_ids]
