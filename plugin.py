"""The plugin object QGIS keeps: adds and removes the Processing provider."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import LandCoverProvider


class LandCoverPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface  # None under qgis_process
        self.provider: LandCoverProvider | None = None

    def initProcessing(self) -> None:  # noqa: N802
        self.provider = LandCoverProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
