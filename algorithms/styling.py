"""Styles for outputs loaded on the canvas: class rasters get their class colours and names."""

from __future__ import annotations

from qgis.core import (
    QgsPalettedRasterRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
)
from qgis.PyQt.QtGui import QColor

from ..lc_plugin.classes import ClassTable
from ..lc_plugin.rasters import read_class_table


def paletted_renderer(layer: QgsRasterLayer, classes: ClassTable) -> QgsPalettedRasterRenderer:
    """A paletted renderer whose legend shows the class names in the class colours."""
    palette = [QgsPalettedRasterRenderer.Class(c.id, QColor(c.color), c.name) for c in classes]
    return QgsPalettedRasterRenderer(layer.dataProvider(), 1, palette)


class ClassRasterStyler(QgsProcessingLayerPostProcessorInterface):
    """Applies the class table embedded in the raster (LC_CLASSES) when the layer is loaded."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802
        if not isinstance(layer, QgsRasterLayer):
            return
        classes = read_class_table(self.path)
        if classes:
            layer.setRenderer(paletted_renderer(layer, classes))
            layer.triggerRepaint()
