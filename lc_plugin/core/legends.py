"""Class legends (names and colours) a reference can be given: built-in ones, or a file.

A legend is applied only when the user chooses it (``LEGEND`` or ``LEGEND_FILE``), never guessed
from the class ids: id 2 is forest in eo-learn's Slovenian legend but something else anywhere
else. Built in:

- ``slovenia``: eo-learn's Slovenia LULC legend (ids 1–10, its colours).
- ``worldcover``: ESA WorldCover 2021 (v200) classes 10–100 with the colour hints of its
  product user manual (the same as the ``classification:classes`` of its STAC items).
- ``clc``: CORINE Land Cover level 3, the 44 classes of the EEA's ``clc_legend.csv`` as
  ``lc_plugin.reference.corine`` holds them (codes 111–523, LABEL3 names and RGB colours). Class rasters hold
  ids 1–255, so a CLC class gets the legend's ``GRID_CODE`` (1–44, the id of the CLC raster
  products) and its three-digit code is kept as an alias: a field holding ``311`` (number or text,
  as the vector products' ``Code_18``) and one holding the grid code ``23`` both mean broad-leaved
  forest. (Rasterize reference's ``CLC_LEGEND`` also aggregates to levels 2 and 1.)

A legend file is a CSV (``id,name,color``; a header row optional; colour ``#rrggbb`` optional) or
a QGIS QML style, either a paletted raster renderer (``paletteEntry value= label= color=``) or a
categorized vector renderer (``category value= label= symbol=`` with the symbol's fill colour).
"""

from __future__ import annotations

import csv
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache

from .classes import SLOVENIA_LEGEND
from .errors import InputError

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")

# ESA WorldCover 2021 v200 (value, name, colour hint).
_WORLDCOVER = (
    (10, "Tree cover", "#006400"),
    (20, "Shrubland", "#ffbb22"),
    (30, "Grassland", "#ffff4c"),
    (40, "Cropland", "#f096ff"),
    (50, "Built-up", "#fa0000"),
    (60, "Bare / sparse vegetation", "#b4b4b4"),
    (70, "Snow and ice", "#f0f0f0"),
    (80, "Permanent water bodies", "#0064c8"),
    (90, "Herbaceous wetland", "#0096a0"),
    (95, "Mangroves", "#00cf75"),
    (100, "Moss and lichen", "#fae6a0"),
)

@dataclass(frozen=True)
class Legend:
    """Class id → (name, colour), plus aliases (other codes that mean an id, e.g. CLC's "311" → 23)."""

    key: str
    title: str
    entries: dict[int, tuple[str, str]]
    aliases: dict[str, int] = field(default_factory=dict)

    def id_of(self, value) -> int | None:
        """The class id a field value means in this legend (an alias first), or None when it has none."""
        text = str(value).strip()
        if text in self.aliases:
            return self.aliases[text]
        if text.isdigit() and int(text) in self.entries:
            return int(text)
        return None


def _clc_legend() -> Legend:
    """CORINE level 3 from ``corine.clc_recode`` (the EEA legend): grid codes 1–44, the codes 111–523 as aliases."""
    from ..reference.corine import clc_recode  # here, not at import: reference/ builds on core/, not the reverse

    codes, table = clc_recode("3")
    return Legend("clc", "CORINE Land Cover level 3", {c.id: (c.name, c.color) for c in table}, {str(code): cid for code, cid in codes.items()})


@cache
def builtin_legends() -> dict[str, Legend]:
    """The built-in legends by key (made once, on first use)."""
    return {
        "slovenia": Legend("slovenia", "eo-learn Slovenia LULC", dict(SLOVENIA_LEGEND)),
        "worldcover": Legend("worldcover", "ESA WorldCover 2021", {v: (n, c) for v, n, c in _WORLDCOVER}),
        "clc": _clc_legend(),
    }

# The order of the Processing enum LEGEND (0 = none).
LEGEND_CHOICES = ("none", "slovenia", "worldcover", "clc")
LEGEND_LABELS = (
    "none (names from fields or the legend file)",
    "eo-learn Slovenia LULC (1–10)",
    "ESA WorldCover 2021 (10–100)",
    "CORINE Land Cover level 3 (111–523)",
)


def builtin_legend(key: str | None) -> Legend | None:
    if not key or key == "none":
        return None
    legends = builtin_legends()
    if key not in legends:
        raise InputError(f"Unknown legend '{key}'; choose one of: {', '.join(LEGEND_CHOICES)}.", argument="legend")
    return legends[key]


def _color(text: str | None, path: str, where: str) -> str:
    if text is None or not text.strip():
        return ""
    text = text.strip()
    m = _HEX.match(text)
    if m:
        return "#" + m.group(1).lower()
    parts = text.split(",")  # QML colours are "r,g,b,a" (3.22) or "r,g,b,a,rgb:…" (later)
    try:
        r, g, b = (int(p) for p in parts[:3])
    except ValueError:
        raise InputError(f"The legend file {os.path.basename(path)} has a colour {text!r} at {where}; expected #rrggbb.", argument="legend_file") from None
    return f"#{r:02x}{g:02x}{b:02x}"


def _read_csv(path: str) -> dict[str, tuple[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if r and any(cell.strip() for cell in r)]
    if rows and not rows[0][0].strip().lstrip("-").isdigit():
        rows = rows[1:]  # header
    out = {}
    for i, row in enumerate(rows, start=1):
        value = row[0].strip()
        name = row[1].strip() if len(row) > 1 else ""
        out[value] = (name, _color(row[2] if len(row) > 2 else None, path, f"row {i}"))
    return out


def _read_qml(path: str) -> dict[str, tuple[str, str]]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InputError(f"The legend file {os.path.basename(path)} is not a readable QML style ({exc}).", argument="legend_file") from exc
    out = {}
    for entry in root.iter("paletteEntry"):
        out[entry.get("value", "").strip()] = (entry.get("label", "").strip(), _color(entry.get("color"), path, "a paletteEntry"))
    symbols = {}
    for symbol in root.iter("symbol"):
        color = next((p.get("v") for p in symbol.iter("prop") if p.get("k") == "color"), None)
        if color is None:  # QGIS ≥ 3.26 writes <Option name="color" value="…"/>
            color = next((o.get("value") for o in symbol.iter("Option") if o.get("name") == "color"), None)
        symbols[symbol.get("name")] = color
    for category in root.iter("category"):
        color = symbols.get(category.get("symbol"))
        out[category.get("value", "").strip()] = (category.get("label", "").strip(), _color(color, path, "a category"))
    return out


def read_legend_file(path: str) -> dict[str, tuple[str, str]]:
    """Field value (as text) → (name, colour or "") from a CSV or QML legend file."""
    if not os.path.isfile(path):
        raise InputError(f"The legend file {path} does not exist.", argument="legend_file")
    try:
        entries = _read_qml(path) if path.lower().endswith(".qml") else _read_csv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"Could not read the legend file {os.path.basename(path)} ({exc}).", argument="legend_file") from exc
    entries = {k: v for k, v in entries.items() if k}
    if not entries:
        raise InputError(
            f"The legend file {os.path.basename(path)} lists no class; expected CSV rows id,name,color or a QML paletted/categorized style.",
            argument="legend_file",
        )
    return entries
