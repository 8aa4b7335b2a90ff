"""Class tables (id, name, colour) that travel with reference rasters, models and maps.

Class rasters are UInt8 with 0 meaning "no data" (as in eo-learn's Slovenian legend), so
class ids are 1–255. The table is stored as JSON in the raster's ``LC_CLASSES`` tag and in the
ONNX model's metadata, and as a GDAL colour table so any GIS shows the colours.
"""

from __future__ import annotations

import json
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

# Distinct colours for classes without a known legend entry (tab20-like).
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


def default_color(class_id: int, name: str = "") -> str:
    """The Slovenian legend's colour when the id and name match it, else a palette colour."""
    known = SLOVENIA_LEGEND.get(class_id)
    if known and (not name or name.strip().lower().replace("schrub", "shrub") == known[0]):
        return known[1]
    return _PALETTE[(class_id - 1) % len(_PALETTE)]


def make_class_table(names: dict[int, str]) -> ClassTable:
    """Build a table from id → name, filling names and colours from the known legend."""
    classes = []
    for class_id, name in names.items():
        label = name.strip() if name and name.strip() else SLOVENIA_LEGEND.get(class_id, (f"class {class_id}",))[0]
        classes.append(LandCoverClass(int(class_id), label, default_color(int(class_id), label)))
    return ClassTable(classes)
