"""Sentinel-2 SAFE products for tests: the real product XML (tests/data/s2-metadata) in the real SAFE layout,
with small generated JPEG2000 bands at the paths the XML lists.

Bands are written lossless (JP2OpenJPEG, REVERSIBLE=YES) so the DN read back are the DN written, and
georeferenced at a chosen corner in the tile's UTM zone; a test then knows every pixel's reflectance
by hand: (DN + offset) / quantification.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
from osgeo import gdal, osr

METADATA = Path(__file__).resolve().parent / "data" / "s2-metadata"
# native resolution of each band in L1C products (their IMAGE_FILE names carry none)
L1C_RESOLUTION = {"B01": 60, "B09": 60, "B10": 60, "B05": 20, "B06": 20, "B07": 20, "B8A": 20, "B11": 20, "B12": 20}
_ENTRY = re.compile(r"<IMAGE_FILE>([^<]*_(B\d\d|B8A|SCL)(?:_(\d\d)m)?)</IMAGE_FILE>")


def metadata_xml(folder: str) -> Path:
    """The product XML of ``tests/data/s2-metadata/<folder>``."""
    return next((METADATA / folder).glob("*.SAFE/MTD_MSIL*.xml"))


def write_jp2(path: str, data: np.ndarray, ulx: float, uly: float, res: float, epsg: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mem = gdal.GetDriverByName("MEM").Create("", data.shape[1], data.shape[0], 1, gdal.GDT_UInt16 if data.dtype != np.uint8 else gdal.GDT_Byte)
    mem.SetGeoTransform((ulx, res, 0.0, uly, 0.0, -res))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    mem.SetProjection(srs.ExportToWkt())
    mem.GetRasterBand(1).WriteArray(data)
    gdal.GetDriverByName("JP2OpenJPEG").CreateCopy(path, mem, options=["REVERSIBLE=YES", "QUALITY=100"])
    mem = None


def build_safe(
    root: str,
    folder: str,
    bands: dict[str, callable],
    *,
    ul: tuple[float, float],
    epsg: int,
    size_10m: int = 24,
    edit=None,
) -> str:
    """Write ``<root>/<SAFE name>/`` from the real XML of ``folder`` with the listed ``bands``: each a
    function (rows, cols at the band's resolution) -> DN array. ``edit`` changes the XML text (e.g. a
    second tile of the same day). Returns the SAFE folder."""
    xml_path = metadata_xml(folder)
    text = xml_path.read_text(encoding="utf-8")
    name = xml_path.parent.name
    if edit is not None:
        text, name = edit(text), edit(name)
    safe = os.path.join(root, name)
    os.makedirs(safe, exist_ok=True)
    Path(safe, xml_path.name).write_text(text, encoding="utf-8")
    for entry, band, res in _ENTRY.findall(text):
        if band not in bands:
            continue
        resolution = int(res) if res else L1C_RESOLUTION.get(band, 10)
        if band == "SCL" and resolution != 20:
            continue
        n = size_10m * 10 // resolution
        rows, cols = np.mgrid[0:n, 0:n]
        dn = np.asarray(bands[band](rows, cols, resolution))
        write_jp2(os.path.join(safe, entry + ".jp2"), dn.astype(np.uint8 if band == "SCL" else np.uint16), ul[0], ul[1], resolution, epsg)
    return safe


def zip_safe(safe: str, out: str) -> str:
    """Zip a SAFE folder as the Copernicus Browser does (the .SAFE folder at the zip's top)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for dirpath, _, filenames in os.walk(safe):
            for fname in filenames:
                full = os.path.join(dirpath, fname)
                zf.write(full, os.path.relpath(full, os.path.dirname(safe)))
    shutil.rmtree(safe)
    return out
