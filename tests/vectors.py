"""Small vector files for tests, written with OGR."""

from __future__ import annotations

from osgeo import ogr, osr


def write_polygon(path: str, wkt: str, epsg: int = 32633, layer_name: str = "aoi") -> str:
    """A GeoPackage with one polygon feature (e.g. an AOI); returns the path."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = ds.CreateLayer(layer_name, srs=srs, geom_type=ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
    layer.CreateFeature(feature)
    ds = None
    return path
