"""The "Land cover" Processing provider (id ``landcover``)."""

from __future__ import annotations

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import ALGORITHMS
from .algorithms.faults import headless_defaults

ICON = os.path.join(os.path.dirname(__file__), "resources", "icon.svg")


class LandCoverProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "landcover"

    def name(self) -> str:
        return "Land cover"

    def longName(self) -> str:  # noqa: N802
        return "Land cover (Sentinel-2, eo-learn pipeline)"

    def icon(self) -> QIcon:
        return QIcon(ICON)

    def svgIconPath(self) -> str:  # noqa: N802
        return ICON

    def loadAlgorithms(self) -> None:  # noqa: N802
        headless_defaults()
        for algorithm_class in ALGORITHMS:
            self.addAlgorithm(algorithm_class())

    def supportedOutputRasterLayerExtensions(self) -> list[str]:  # noqa: N802
        return ["tif"]

    def supportedOutputVectorLayerExtensions(self) -> list[str]:  # noqa: N802
        return ["gpkg"]
