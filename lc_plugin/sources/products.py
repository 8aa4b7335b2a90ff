"""Sentinel-2 products as ESA delivers them: SAFE folders and their .zip, Level-1C and Level-2A, any baseline.

Why the product XML decides the scaling: since processing baseline 04.00 (25 January 2022) the DN
carry a +1000 shift, undone by a per-band offset the product states itself (``RADIO_ADD_OFFSET`` in
``MTD_MSIL1C.xml``, ``BOA_ADD_OFFSET`` in ``MTD_MSIL2A.xml``); older products state none. So
``reflectance = (DN + offset) / QUANTIFICATION_VALUE`` with the product's own numbers is right for
every baseline without a table of baselines. DN 0 is no data; SCL is a class, never scaled.

Bands are read through GDAL's JPEG2000 driver, from the folder or straight out of the zip
(``/vsizip/``), so a downloaded product never has to be unpacked.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from ..core.bands import CATEGORICAL_BANDS
from ..core.errors import InputError
from ..io.rasters import parse_date

METADATA_FILES = ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml")
#: Sentinel-2 bands in their usual order; SCL (L2A only) last.
S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12", "SCL"]
_BAND_IN_NAME = re.compile(r"_(B\d\d|B8A|SCL)(?:_(\d\d)m)?$")


@dataclass
class SafeProduct:
    """What the importer needs from one product: when, what level, how to scale, where each band is."""

    name: str  # the SAFE folder name (PRODUCT_URI)
    path: str  # the folder or .zip the user gave
    level: str  # "L1C" or "L2A"
    date: date
    baseline: str
    cloud: float
    quantification: float
    offsets: dict[str, float]  # band -> DN offset (0 before baseline 04.00)
    files: dict[str, dict[int, str]] = field(default_factory=dict)  # band -> {resolution m: GDAL path}

    def band_path(self, band: str, resolution: float) -> str:
        """The band's file at the coarsest native resolution not coarser than ``resolution`` (ESA's own
        downsampling for 20/60 m outputs), else its finest one (resampled up by the reader)."""
        by_res = self.files[band]
        fitting = [r for r in by_res if r <= resolution + 1e-6]
        return by_res[max(fitting)] if fitting else by_res[min(by_res)]

    def to_reflectance(self, band: str, dn: np.ndarray) -> np.ndarray:
        """DN (NaN = no data) to reflectance with this product's offset and quantification; SCL unchanged."""
        if band in CATEGORICAL_BANDS:
            return dn
        return (dn + np.float32(self.offsets.get(band, 0.0))) / np.float32(self.quantification)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find_all(root: ET.Element, name: str) -> list[ET.Element]:
    return [el for el in root.iter() if _local(el.tag) == name]


def _find_text(root: ET.Element, name: str) -> str | None:
    found = _find_all(root, name)
    return (found[0].text or "").strip() if found else None


def _band_name(physical: str) -> str:
    """``B1`` → ``B01``, ``B8A`` stays (the XML's physicalBand to this plugin's names)."""
    digits = physical[1:]
    return physical if not digits.isdigit() else f"B{int(digits):02d}"


def parse_metadata(xml: bytes, source: str) -> tuple[dict, list[str]]:
    """Level, date, baseline, cloud, quantification, per-band offsets and native resolutions, and the
    IMAGE_FILE entries of an ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InputError(f"{source}: the product metadata is not readable XML ({exc}).", "inputs") from None
    product_type = _find_text(root, "PRODUCT_TYPE") or ""
    level = "L2A" if "2A" in product_type else "L1C" if "1C" in product_type else ""
    start = _find_text(root, "PRODUCT_START_TIME") or _find_text(root, "DATATAKE_SENSING_START")
    if not level or not start:
        raise InputError(f"{source}: no PRODUCT_TYPE or PRODUCT_START_TIME in the product metadata; is it a Sentinel-2 product?", "inputs")
    quant = _find_text(root, "BOA_QUANTIFICATION_VALUE" if level == "L2A" else "QUANTIFICATION_VALUE")
    physical = {el.get("bandId"): _band_name(el.get("physicalBand", "")) for el in _find_all(root, "Spectral_Information")}
    resolution = {
        _band_name(el.get("physicalBand", "")): int(float(_find_text(el, "RESOLUTION") or 0)) for el in _find_all(root, "Spectral_Information")
    }
    offsets = {
        physical.get(el.get("band_id"), ""): float(el.text)
        for el in _find_all(root, "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET")
        if el.text
    }
    meta = {
        "level": level,
        "date": parse_date(start),
        "baseline": _find_text(root, "PROCESSING_BASELINE") or "",
        "cloud": float(_find_text(root, "Cloud_Coverage_Assessment") or 0.0),
        "quantification": float(quant or 10000.0),
        "offsets": offsets,
        "resolution": resolution,
        "name": _find_text(root, "PRODUCT_URI") or "",
    }
    return meta, [el.text.strip() for el in _find_all(root, "IMAGE_FILE") if el.text]


def _band_files(entries: list[str], resolution: dict[str, int], exists, prefix: str) -> dict[str, dict[str, dict[int, str]]]:
    """granule folder -> band -> {resolution: GDAL path}, for the band files the product really holds."""
    granules: dict[str, dict[str, dict[int, str]]] = {}
    for entry in entries:
        match = _BAND_IN_NAME.search(entry)
        if not match:
            continue  # TCI, AOT, WVP, masks
        band, res = match.group(1), match.group(2)
        rel = entry if entry.lower().endswith(".jp2") else entry + ".jp2"
        if exists(rel):
            granule = "/".join(rel.split("/")[:2])
            granules.setdefault(granule, {}).setdefault(band, {})[int(res) if res else resolution.get(band, 10)] = prefix + rel
    return granules


def _products(path: str, xml: bytes, entries_root: str, exists, prefix: str) -> list[SafeProduct]:
    """One product per granule: products before December 2016 could hold several tiles."""
    meta, entries = parse_metadata(xml, path)
    granules = _band_files(entries, meta["resolution"], lambda rel: exists(entries_root + rel), prefix + entries_root)
    if not granules:
        raise InputError(f"{path}: the metadata lists no band file that is in the product; is the download complete?", "inputs")
    name = meta["name"] or os.path.basename(os.path.normpath(entries_root or path))
    return [
        SafeProduct(
            name if len(granules) == 1 else f"{name}/{granule.split('/')[-1]}",
            path, meta["level"], meta["date"], meta["baseline"], meta["cloud"], meta["quantification"], meta["offsets"], files,
        )
        for granule, files in sorted(granules.items())
    ]


def safe_metadata_file(folder: str) -> str | None:
    """The product XML in a SAFE folder, or None."""
    for name in METADATA_FILES:
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def open_safe_folder(folder: str) -> list[SafeProduct]:
    xml_path = safe_metadata_file(folder)
    if xml_path is None:
        raise InputError(f"{folder} has no {' or '.join(METADATA_FILES)}; is it a Sentinel-2 SAFE product?", "inputs")
    with open(xml_path, "rb") as fh:
        xml = fh.read()
    root = os.path.abspath(folder) + os.sep
    return _products(folder, xml, "", lambda rel: os.path.isfile(root + rel), root)


def open_safe_zip(path: str, required: bool = True) -> list[SafeProduct]:
    """A zipped SAFE product (as the Copernicus Browser delivers it); [] for a zip that holds no
    Sentinel-2 product unless ``required``. A damaged zip is always an error."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            xml_names = [n for n in names if n.count("/") == 1 and n.rsplit("/", 1)[1] in METADATA_FILES]
            xml = zf.read(xml_names[0]) if xml_names else None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError) as exc:
        raise InputError(f"{path} is not a readable zip file ({exc}); download the product again.", "inputs") from None
    if xml is None:
        if required:
            raise InputError(f"{path} holds no SAFE product ({' or '.join(METADATA_FILES)} in a .SAFE folder).", "inputs")
        return []
    members = set(names)
    safe_dir = xml_names[0].split("/", 1)[0] + "/"
    return _products(path, xml, safe_dir, members.__contains__, f"/vsizip/{os.path.abspath(path)}/")
