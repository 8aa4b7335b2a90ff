"""Class tables (id, name, colour) that travel with reference rasters, models and maps.

Class rasters are UInt8 with 0 meaning "no data" (as in eo-learn's Slovenian legend), so
class ids are 1–255. The table is stored as JSON in the raster's ``LC_CLASSES`` tag and in the
ONNX model's metadata, and as a GDAL colour table so any GIS shows the colours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

NODATA_CLASS = 0

# eo-learn's Slovenia LULC legend (ids and colours of its land-cover example).
SLOVENIA_LEGEND: dict[int, tuple[str, str]] = {
    1: ("cultivated land", "#ffff00"),
    2: ("forest", "#054907"),
    3: ("grassland", "#ffa500"),
    4: ("shrubland", "#806000"),
    5: ("water", "#069af3"),
    6: ("wetlands", "#95d0fc"),
    7: ("tundra", "#967bb6"),
    8: ("artificial surface", "#dc143c"),
    9: ("bareland", "#a6a6a6"),
    10: ("snow and ice", "#000000"),
}

# Colours that mean something, for class names that say what they are (first match wins; checked
# after the Slovenian legend's own names, whose colours eo-learn chose). Keywords are matched as
# word prefixes of the lower-case name, so "Coniferous forest" is green and "Water bodies" blue.
KEYWORD_COLORS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("water", "river", "lake", "sea", "ocean", "lagoon", "estuar", "reservoir", "pond", "canal"), "#1f78b4"),
    (("wetland", "marsh", "bog", "peat", "swamp", "mangrove"), "#6fb7c9"),
    (("snow", "ice", "glacier"), "#e8f4fa"),
    (("conifer", "needle"), "#1b6b1b"),
    (("forest", "tree", "wood", "broad"), "#2e8b2e"),
    (("shrub", "scrub", "heath", "moor", "bush"), "#8a7a2a"),
    (("grass", "meadow", "pasture", "herbaceous", "prairie"), "#9acd32"),
    (("crop", "cultivat", "arable", "agricult", "farm", "field", "vineyard", "orchard", "rice"), "#f0d43a"),
    (("urban", "built", "artificial", "building", "settlement", "road", "industr", "impervious", "sealed"), "#d7301f"),
    (("bare", "rock", "sand", "soil", "beach", "dune", "sparse", "quarr", "mineral"), "#b8a88a"),
    (("cloud",), "#ffffff"),
    (("shadow",), "#555555"),
)

# Distinct colours for classes whose names say nothing known (tab20-like).
_PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
]


@dataclass(frozen=True)
class LandCoverClass:
    id: int
    name: str
    color: str  # "#rrggbb"

    def rgb(self) -> tuple[int, int, int]:
        c = self.color.lstrip("#")
        return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


class ClassTable(tuple):
    """An ordered tuple of ``LandCoverClass`` sorted by id, with JSON round-trip."""

    def __new__(cls, classes):
        return super().__new__(cls, sorted(classes, key=lambda c: c.id))

    @property
    def ids(self) -> list[int]:
        return [c.id for c in self]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self]

    def by_id(self, class_id: int) -> LandCoverClass:
        for c in self:
            if c.id == class_id:
                return c
        raise KeyError(class_id)

    def to_json(self) -> str:
        return json.dumps([asdict(c) for c in self])

    @classmethod
    def from_json(cls, text: str) -> ClassTable:
        return cls(LandCoverClass(int(d["id"]), str(d["name"]), str(d["color"])) for d in json.loads(text))

    def subset(self, ids) -> ClassTable:
        keep = set(int(i) for i in ids)
        return ClassTable(c for c in self if c.id in keep)

    def color_table(self) -> dict[int, tuple[int, int, int, int]]:
        """GDAL/rasterio colour map: class colours, transparent no data."""
        cmap = {NODATA_CLASS: (0, 0, 0, 0)}
        for c in self:
            cmap[c.id] = (*c.rgb(), 255)
        return cmap


def keyword_color(name: str) -> str | None:
    """The meaningful colour of a class name (the Slovenian legend's name, else a keyword), or None."""
    text = name.strip().lower().replace("schrub", "shrub")
    for known, color in SLOVENIA_LEGEND.values():
        if text == known:
            return color
    words = re.findall(r"[a-z]+", text)
    for keywords, color in KEYWORD_COLORS:
        if any(word.startswith(k) for word in words for k in keywords):
            return color
    return None


def default_color(class_id: int, name: str = "") -> str:
    """A colour that means something when the name is recognised, else a distinct palette colour by id."""
    return keyword_color(name) or _PALETTE[(class_id - 1) % len(_PALETTE)]


def make_class_table(names: dict[int, str]) -> ClassTable:
    """Build a table from id → name; an empty name becomes "class <id>" (no legend is applied silently)."""
    classes = []
    for class_id, name in names.items():
        label = name.strip() if name and name.strip() else f"class {class_id}"
        classes.append(LandCoverClass(int(class_id), label, default_color(int(class_id), label)))
    return ClassTable(classes)


@dataclass(frozen=True)
class NameConflict:
    """One class id named differently by two tables (``kept`` is the name the merged table uses)."""

    class_id: int
    kept: str
    other: str


def merge_class_tables(tables: Iterable[ClassTable | None], present_ids: Iterable[int] = ()) -> tuple[ClassTable, list[NameConflict]]:
    """One table for rasters whose tables may differ (several references; a map and its reference).

    The rule: tables are read in order and the first class with an id wins (name and colour); an
    id named otherwise later is a ``NameConflict`` (names compared ignoring case and surrounding
    spaces) that the caller reports in its own words, since only it knows which file is which.
    Ids seen in the data (``present_ids``) but in no table get "class <id>" and a default colour;
    the no-data id 0 is never a class. Matching is by id only: a conflict never renumbers.
    """
    merged: dict[int, LandCoverClass] = {}
    conflicts: list[NameConflict] = []
    for table in tables:
        for c in table or ():
            if c.id == NODATA_CLASS:
                continue
            known = merged.get(c.id)
            if known is None:
                merged[c.id] = c
            elif known.name.strip().lower() != c.name.strip().lower():
                conflicts.append(NameConflict(c.id, known.name, c.name))
    for class_id in sorted(set(int(i) for i in present_ids) - set(merged) - {NODATA_CLASS}):
        merged[class_id] = LandCoverClass(class_id, f"class {class_id}", default_color(class_id))
    return ClassTable(merged.values()), conflicts
