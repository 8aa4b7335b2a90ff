"""Download Sentinel-2 time series: one GeoTIFF time stack per patch from a STAC API."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..lc_plugin import download
from .base import LandCoverAlgorithm
from .params import add_date_parameters, date_range


class DownloadAlgorithm(LandCoverAlgorithm):
    ALG_ID = "download"
    DISPLAY_NAME = "Download Sentinel-2 time series"
    GROUP_ID = "data"
    HELP = (
        "Searches a STAC API for Sentinel-2 scenes over each patch and reads only the patch window of "
        "every band (Cloud-Optimized GeoTIFF range requests through GDAL), resampled to the patch grid "
        "(bilinear for reflectance, nearest for SCL). Scenes of the same day are merged into one date.<br>"
        "<b>Patch grid</b>: the output of Create patch grid. <b>Patch id</b>: optional, one patch only.<br>"
        "<b>Start/End date</b>: the period (inclusive). <b>Max scene cloud cover (%)</b>: the catalogue's eo:cloud_cover filter.<br>"
        "<b>Bands</b>: comma-separated Sentinel-2 band names (default B02,B03,B04,B08,B11,B12,SCL; L2A data has no B10, "
        "so use SCL for cloud masks).<br>"
        "<b>STAC API URL</b> / <b>Collection</b>: default Earth Search's public sentinel-2-l2a.<br>"
        "Output: a folder with one time stack <code>PATCH_ID.tif</code> per patch (float32 reflectance, NaN = no data, "
        "band descriptions 'DATE BAND'); OUTPUT is the first stack.<br>"
        "Example: <code>qgis_process run landcover:download -- PATCHES=grid.gpkg START_DATE=2017-01-01 "
        "END_DATE=2017-12-31 OUTPUT_FOLDER=stacks</code>"
    )

    PATCHES = "PATCHES"
    PATCH_ID = "PATCH_ID"
    MAX_CLOUD = "MAX_CLOUD"
    BANDS = "BANDS"
    STAC_URL = "STAC_URL"
    COLLECTION = "COLLECTION"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    OUTPUT = "OUTPUT"
    STACKS = "STACKS"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterFeatureSource(self.PATCHES, self.tr("Patch grid"), [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterString(self.PATCH_ID, self.tr("Patch id (empty: all patches)"), optional=True))
        add_date_parameters(self, optional=False)
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_CLOUD, self.tr("Max scene cloud cover (%)"), QgsProcessingParameterNumber.Double, 80.0, minValue=0, maxValue=100
            )
        )
        self.addParameter(QgsProcessingParameterString(self.BANDS, self.tr("Bands"), ",".join(download.DEFAULT_BANDS)))
        self.addParameter(QgsProcessingParameterString(self.STAC_URL, self.tr("STAC API URL"), download.DEFAULT_STAC_URL))
        collection = QgsProcessingParameterString(self.COLLECTION, self.tr("Collection"), download.DEFAULT_COLLECTION)
        collection.setFlags(collection.flags() | collection.FlagAdvanced)
        self.addParameter(collection)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Output folder")))
        self.addOutput(QgsProcessingOutputRasterLayer(self.OUTPUT, self.tr("First time stack")))
        self.addOutput(QgsProcessingOutputMultipleLayers(self.STACKS, self.tr("Time stacks")))

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        grid_path, grid_layer = self.vector_path(parameters, self.PATCHES, context, feedback)
        patch_id = self.parameterAsString(parameters, self.PATCH_ID, context).strip()
        start, end = date_range(self, parameters, context)
        bands = [b.strip().upper() for b in self.parameterAsString(parameters, self.BANDS, context).split(",") if b.strip()]
        out_dir = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        os.makedirs(out_dir, exist_ok=True)
        paths = download.download_patches(
            grid_path,
            out_dir,
            patch_ids=[patch_id] if patch_id else None,
            layer=grid_layer,
            start=start,
            end=end,
            max_cloud=self.parameterAsDouble(parameters, self.MAX_CLOUD, context),
            bands=bands,
            stac_url=self.parameterAsString(parameters, self.STAC_URL, context).strip(),
            collection=self.parameterAsString(parameters, self.COLLECTION, context).strip(),
            monitor=monitor,
        )
        return {self.OUTPUT_FOLDER: out_dir, self.OUTPUT: paths[0], self.STACKS: paths}
