"""A class raster's legend in files any GIS reads, so a map opened by hand shows class names and colours.

The colour table is in the GeoTIFF itself; GeoTIFF has no place for class names, so they go where GDAL
keeps them for every format, its ``.aux.xml`` sidecar (category names and a thematic raster attribute
table, read by GDAL, QGIS and ArcGIS), and a QGIS style ``<name>.qml`` next to the raster, which QGIS
applies when the raster is opened (paletted, one legend entry per class instead of 256 unnamed
colours). A VRT carries the same names and table in its own XML.
"""

from __future__ import annotations

import os
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

from ..core.atomic import atomic_output
from ..core.classes import NODATA_CLASS, ClassTable

# Raster attribute table columns: name, GDAL field type and usage (gdal.h GDALRATFieldType / GDALRATFieldUsage:
# GFT_Integer 0, GFT_String 2; GFU_Name 2, GFU_MinMax 5, GFU_Red 6, GFU_Green 7, GFU_Blue 8)
_RAT_FIELDS = (("Value", 0, 5), ("Class", 2, 2), ("Red", 0, 6), ("Green", 0, 7), ("Blue", 0, 8))


def category_names(classes: ClassTable) -> list[str]:
    """GDAL category names: entry i names pixel value i (empty for values no class uses, "no data" for 0)."""
    names = [""] * (max(classes.ids) + 1)
    names[NODATA_CLASS] = "no data"
    for c in classes:
        names[c.id] = c.name
    return names


def pam_xml(classes: ClassTable) -> str:
    """The ``.aux.xml`` GDAL reads next to a raster: band 1's category names and attribute table, as GDAL
    itself serialises them (taken from an in-memory VRT band given the legend)."""
    from osgeo import gdal

    vrt = gdal.GetDriverByName("VRT").Create("", 1, 1, 1, gdal.GDT_Byte)
    set_band_legend(vrt.GetRasterBand(1), classes)
    band = ElementTree.fromstring(vrt.GetMetadata("xml:VRT")[0]).find("VRTRasterBand")
    assert band is not None, "GDAL's VRT XML always has the band it was created with"
    pam = ElementTree.Element("PAMDataset")
    pam_band = ElementTree.SubElement(pam, "PAMRasterBand", band="1")
    pam_band.extend(child for child in band if child.tag in ("CategoryNames", "GDALRasterAttributeTable"))
    return ElementTree.tostring(pam, encoding="unicode") + "\n"


def qml_text(classes: ClassTable) -> str:
    """A QGIS paletted style of the classes (what the plugin's styling applies in the dialog)."""
    entries = "\n".join(
        f"        <paletteEntry value=\"{c.id}\" color=\"{c.color}\" alpha=\"255\" label={quoteattr(c.name)}/>" for c in classes
    )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.22.0" styleCategories="Symbology">\n'
        "  <pipe>\n"
        '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1">\n'
        "      <rasterTransparency/>\n"
        f"      <colorPalette>\n{entries}\n      </colorPalette>\n"
        "    </rasterrenderer>\n"
        "  </pipe>\n"
        "</qgis>\n"
    )


def qml_path(raster: str) -> str:
    """Where QGIS looks for a raster's default style: same folder and name, extension .qml."""
    return os.path.splitext(raster)[0] + ".qml"


def _write_text(path: str, text: str) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def write_legend_files(raster: str, classes: ClassTable, pam: bool = True) -> None:
    """Write the sidecars of a finished class raster: ``.qml`` always, ``.aux.xml`` unless the format holds
    the names itself (``pam=False`` for a VRT, see ``set_band_legend``)."""
    if pam:
        _write_text(raster + ".aux.xml", pam_xml(classes))
    _write_text(qml_path(raster), qml_text(classes))


def set_band_legend(band, classes: ClassTable) -> None:
    """Category names and attribute table on an open GDAL band (a VRT keeps them in its XML)."""
    from osgeo import gdal

    band.SetCategoryNames(category_names(classes))
    rat = gdal.RasterAttributeTable()
    rat.SetTableType(gdal.GRTT_THEMATIC)
    for name, kind, usage in _RAT_FIELDS:
        rat.CreateColumn(name, kind, usage)
    for row, c in enumerate(classes):
        for col, value in enumerate((c.id, c.name, *c.rgb())):
            (rat.SetValueAsString if isinstance(value, str) else rat.SetValueAsInt)(row, col, value)
    band.SetDefaultRAT(rat)
