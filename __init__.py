"""QGIS plugin entry point: registers the "Land cover" Processing provider.

``initProcessing`` is what QGIS (desktop and headless ``qgis_process``) calls to add the
provider; ``initGui`` only exists because the desktop plugin manager requires it.
"""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .plugin import LandCoverPlugin

    return LandCoverPlugin(iface)
