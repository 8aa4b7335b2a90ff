"""Styles for outputs loaded on the canvas, chosen from the raster's own LC_KIND metadata.

Each kind of output has a QML style in ``resources/styles/`` (colours, ramps, stretches, also
usable by hand through *Layer Properties → Style → Load Style*); the code here only picks what a
QML file cannot know: the bands of the shown date, the class table embedded in a map, the
number of dates of a valid-count raster.
"""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import rasterio
from qgis.core import (
    Qgis,
    QgsDateTimeRange,
    QgsMultiBandColorRenderer,
    QgsPalettedRasterRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsProject,
    QgsRasterLayer,
    QgsRasterLayerTemporalProperties,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtCore import QDate, QDateTime, QTime
from qgis.PyQt.QtGui import QColor

from ..lc_plugin.core.classes import ClassTable
from ..lc_plugin.core.errors import LandCoverError
from ..lc_plugin.io.rasters import TAG_CLASSES, TAG_KIND, stack_layout

STYLES_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "styles")
TRUE_COLOUR = ("B04", "B03", "B02")
STACK_KINDS = ("timestack", "interpolated")

_KEEP_ALIVE: list = []  # QGIS holds post-processors weakly; keep the recent ones alive


def style_file(name: str) -> str:
    """Path of a QML style shipped in resources/styles (``name`` without extension)."""
    return os.path.join(STYLES_DIR, f"{name}.qml")


def paletted_renderer(layer: QgsRasterLayer, classes: ClassTable) -> QgsPalettedRasterRenderer:
    """A paletted renderer whose legend shows the class names in the class colours."""
    palette = [QgsPalettedRasterRenderer.Class(c.id, QColor(c.color), c.name) for c in classes]
    return QgsPalettedRasterRenderer(layer.dataProvider(), 1, palette)


def raster_info(path: str) -> dict:
    """What styling needs from a raster written by the plugin: kind, dates, bands, classes."""
    with rasterio.open(path) as src:
        tags = src.tags()
        count = src.count
        try:
            dates, bands = stack_layout(src, path)
        except LandCoverError:  # not a time stack
            dates, bands = [], []
    info = {"kind": tags.get(TAG_KIND, ""), "count": count, "dates": dates, "bands": bands, "classes": None, "tags": tags}
    if tags.get(TAG_CLASSES):
        info["classes"] = ClassTable.from_json(tags[TAG_CLASSES])
    if not info["kind"] and info["classes"] is not None and count == 1:
        info["kind"] = "classes"
    return info


def best_date_index(path: str, dates: list, bands: list[str], band: str) -> int:
    """The date whose ``band`` has the most pixels with data (read decimated, so it stays cheap)."""
    if band not in bands or len(dates) < 2:
        return len(dates) // 2
    b = bands.index(band)
    with rasterio.open(path) as src:
        shape = (min(64, src.height), min(64, src.width))
        indexes = [t * len(bands) + b + 1 for t in range(len(dates))]
        data = src.read(indexes, out_shape=(len(indexes), *shape)).astype("float64")
        nodata = src.nodata
    valid = np.isfinite(data)
    if nodata is not None and not np.isnan(nodata):
        valid &= data != nodata
    if band == "CLM":  # a mask: 0 clear counts, 1 cloud and 255 no data do not
        valid = data == 0
    counts = valid.reshape(len(dates), -1).sum(axis=1)
    # ties → the date closest to the middle of the series (summer for a yearly stack)
    middle = (len(dates) - 1) / 2
    return int(max(range(len(dates)), key=lambda t: (counts[t], -abs(t - middle))))


def _load_qml(layer: QgsRasterLayer, name: str) -> bool:
    result = layer.loadNamedStyle(style_file(name))
    ok = result[1] if isinstance(result, tuple) else bool(result)
    return bool(ok)


def apply_style(layer: QgsRasterLayer, path: str | None = None) -> str | None:
    """Style ``layer`` for the kind of output it is; returns the style name used (None: left as is)."""
    info = raster_info(path or layer.source().split("|")[0])
    kind, dates, bands = info["kind"], info["dates"], info["bands"]
    style = None
    if kind == "classes" and info["classes"]:
        _load_qml(layer, "classes")
        layer.setRenderer(paletted_renderer(layer, info["classes"]))
        style = "classes"
    elif kind == "probabilities":
        if _load_qml(layer, "probability"):
            style = "probability"
            classes = info["classes"]
            if classes:
                layer.setName(f"{layer.name()} (band 1 = {classes.names[0]})")
    elif kind in STACK_KINDS and all(b in bands for b in TRUE_COLOUR):
        t = best_date_index(path or layer.source(), dates, bands, "B04")
        if _load_qml(layer, "truecolor"):
            renderer = layer.renderer()
            if isinstance(renderer, QgsMultiBandColorRenderer):
                red, green, blue = (t * len(bands) + bands.index(b) + 1 for b in TRUE_COLOUR)
                renderer.setRedBand(red)
                renderer.setGreenBand(green)
                renderer.setBlueBand(blue)
                layer.setName(f"{layer.name()} ({dates[t].isoformat()} true colour)")
                style = "truecolor"
    elif kind in ("cloudmask", "cloudprob") and dates:
        band = "CLM" if kind == "cloudmask" else "CLP"
        t = best_date_index(path or layer.source(), dates, bands, band) if kind == "cloudmask" else len(dates) // 2
        if _load_qml(layer, kind):
            renderer = layer.renderer()
            if isinstance(renderer, QgsSingleBandPseudoColorRenderer):
                renderer.setBand(t * len(bands) + 1)
                layer.setName(f"{layer.name()} ({dates[t].isoformat()})")
                style = kind
    elif kind == "validcount":
        if _load_qml(layer, "validcount"):
            style = "validcount"
            n = int(info["tags"].get("LC_N_DATES", "0") or 0)
            if n > 0:
                _rescale_pseudocolor(layer, 0, n)
    if style is not None:
        layer.triggerRepaint()
    return style


def _rescale_pseudocolor(layer: QgsRasterLayer, low: float, high: float) -> None:
    """Stretch the ramp of a pseudo-colour renderer from the QML over [low, high]."""
    renderer = layer.renderer()
    if not isinstance(renderer, QgsSingleBandPseudoColorRenderer):
        return
    shader = renderer.shader().rasterShaderFunction()
    items = shader.colorRampItemList()
    if len(items) < 2:
        return
    old_low, old_high = items[0].value, items[-1].value
    scale = (high - low) / ((old_high - old_low) or 1)
    for item in items:
        item.value = low + (item.value - old_low) * scale
        if item.label:
            item.label = f"{item.value:g}"
    shader.setColorRampItemList(items)
    shader.setMinimumValue(low)
    shader.setMaximumValue(high)
    renderer.setClassificationMin(low)
    renderer.setClassificationMax(high)


def set_date(layer: QgsRasterLayer, date: dt.date) -> None:
    """Make the layer visible to the temporal controller on ``date`` (the whole day)."""
    day = QDate(date.year, date.month, date.day)
    begin = QDateTime(day, QTime(0, 0, 0))
    end = QDateTime(day, QTime(23, 59, 59))
    properties = layer.temporalProperties()
    mode_enum = getattr(Qgis, "RasterTemporalMode", None)  # QGIS ≥ 3.30 (and 4); 3.22 has the class enum
    mode = mode_enum.FixedTemporalRange if mode_enum is not None else QgsRasterLayerTemporalProperties.ModeFixedTemporalRange
    properties.setMode(mode)
    properties.setFixedTemporalRange(QgsDateTimeRange(begin, end))
    properties.setIsActive(True)


def _tree_node(project, path: str):
    """The layer-tree node of the loaded layer whose file is ``path`` (None when it is not loaded)."""
    for layer in project.mapLayers().values():
        if layer.source().split("|")[0] == path:
            return project.layerTreeRoot().findLayer(layer.id())
    return None


def place_below(project, upper: str, lower: str) -> None:
    """Move the layer of file ``lower`` just under the layer of file ``upper``, when both are loaded:
    Processing adds its outputs in file-name order, so without this a ramp can hide the class map."""
    upper_node, lower_node = _tree_node(project, upper), _tree_node(project, lower)
    if upper_node is None or lower_node is None:
        return
    parent = upper_node.parent()
    # the copy goes in before the original leaves: a layer without any node would be removed from the project
    parent.insertChildNode(parent.children().index(upper_node) + 1, lower_node.clone())
    lower_node.parent().removeChildNode(lower_node)


class LayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Styles an output when Processing loads it (class colours, true colour, ramps); optionally dates it,
    loads it unchecked (``hidden``) and keeps it under the layer of the file ``below`` (or the layer of
    the file ``above`` under it)."""

    def __init__(self, path: str, date: dt.date | None = None, hidden: bool = False, below: str | None = None, above: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.date = date
        self.hidden, self.below, self.above = hidden, below, above
        self.style: str | None = None
        _KEEP_ALIVE.append(self)
        del _KEEP_ALIVE[:-500]

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802
        if not isinstance(layer, QgsRasterLayer):
            return
        try:
            self.style = apply_style(layer, self.path)
            if self.date is not None:
                set_date(layer, self.date)
            self._place(layer, context)
        except Exception as exc:  # a style must never make a finished run fail
            if feedback is not None:
                feedback.reportError(f"Could not style {self.path}: {exc}", False)


    def _place(self, layer, context) -> None:
        project = context.project() or QgsProject.instance()
        node = project.layerTreeRoot().findLayer(layer.id())
        if node is not None and self.hidden:
            node.setItemVisibilityChecked(False)
        if self.below:
            place_below(project, self.below, self.path)
        if self.above:
            place_below(project, self.path, self.above)


# Kept for callers of the first version: class rasters are styled the same way as every output.
ClassRasterStyler = LayerStyler
