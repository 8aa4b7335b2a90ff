"""The few names that differ between QGIS 3.22 (Qt5) and QGIS 4 (Qt6), resolved once."""

from __future__ import annotations

from qgis.core import Qgis, QgsMapLayerProxyModel

# Layer filters of QgsMapLayerComboBox: Qgis.LayerFilter from QGIS 3.34 (the only spelling in 4), the class enum before.
LAYER_FILTER = getattr(Qgis, "LayerFilter", None) or QgsMapLayerProxyModel.Filter
RASTER_LAYERS = LAYER_FILTER.RasterLayer
POLYGON_LAYERS = LAYER_FILTER.PolygonLayer

try:  # Qt6 moved QAction to QtGui
    from qgis.PyQt.QtGui import QAction
except ImportError:
    from qgis.PyQt.QtWidgets import QAction

__all__ = ["LAYER_FILTER", "POLYGON_LAYERS", "RASTER_LAYERS", "QAction"]
