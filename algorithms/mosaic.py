"""Mosaic: many patch rasters into one VRT and, optionally, one Cloud-Optimized GeoTIFF."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterDestination,
)

from ..lc_plugin.io import mosaic
from ..lc_plugin.io.rasters import read_class_table
from .base import LandCoverAlgorithm


class MosaicAlgorithm(LandCoverAlgorithm):
    ALG_ID = "mosaic"
    DISPLAY_NAME = "Mosaic"
    GROUP_ID = "classification"
    HELP = (
        "Merges patch rasters (e.g. the land-cover maps of every patch) into one virtual raster (VRT) and, optionally, one tiled, "
        "compressed Cloud-Optimized GeoTIFF with overviews. Class colours and names of the first raster are kept."
    )
    NOTES = (
        "Example: <code>qgis_process run landcover:mosaic -- INPUT=a.tif INPUT=b.tif OUTPUT_VRT=map.vrt OUTPUT_COG=map_cog.tif</code>"
    )

    ARGUMENTS = {"paths": "INPUT", "vrt_out": "OUTPUT_VRT", "cog_out": "OUTPUT_COG"}
    INPUT = "INPUT"
    OUTPUT_VRT = "OUTPUT_VRT"
    OUTPUT_COG = "OUTPUT_COG"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterMultipleLayers(self.INPUT, self.tr("Rasters"), QgsProcessing.TypeRaster),
            help="Same CRS, band count and data type.",
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT_VRT, self.tr("Mosaic (VRT)"), self.tr("Virtual raster (*.vrt)")),
            help="A temporary file unless chosen.",
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT_COG, self.tr("Mosaic (Cloud-Optimized GeoTIFF)"), optional=True, createByDefault=False),
            help="Not written unless chosen; loaded with the class legend.",
        )

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        paths = self.raster_paths(parameters, self.INPUT, context)
        vrt = self.parameterAsFileOutput(parameters, self.OUTPUT_VRT, context)
        cog = self.output_path(parameters, self.OUTPUT_COG, context, (".tif", ".tiff")) or None
        info = mosaic.mosaic_files(paths, vrt, cog, monitor=monitor)
        feedback.pushInfo(f"Mosaic of {len(paths)} rasters: {info.width} × {info.height} px")
        result = {self.OUTPUT_VRT: vrt}
        if cog:
            result[self.OUTPUT_COG] = cog
            if read_class_table(paths[0]):
                self.style_as_classes(context, cog)
        return result
