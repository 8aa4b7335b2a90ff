"""Download Sentinel-3 OLCI: local OL_1_EFR products → a 300 m TOA-reflectance time stack for one patch."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..lc_plugin import olci
from .base import LandCoverAlgorithm
from .params import add_date_parameters, date_range


class DownloadOlciAlgorithm(LandCoverAlgorithm):
    ALG_ID = "downloadolci"
    DISPLAY_NAME = "Sentinel-3 OLCI time series"
    GROUP_ID = "data"
    HELP = (
        "Turns Sentinel-3 OLCI Level-1B full-resolution products (OL_1_EFR) that you downloaded (e.g. from the Copernicus "
        "Data Space Ecosystem or EUMETSAT) into a time stack for one patch: its 21 bands Oa01–Oa21 as top-of-atmosphere "
        "reflectance (pi·L / (F0·cos SZA): radiance, the detector's solar flux, the sun zenith angle interpolated from the "
        "tie points), georeferenced through each product's own latitude/longitude arrays and reprojected onto the patch's "
        "CRS at 300 m (kept at its own resolution, not resampled to 10 m). Products of one day are merged.<br>"
        "<b>Product folder</b> (PRODUCTS_FOLDER): a folder holding <code>*.SEN3</code> product folders and/or their "
        "<code>.zip</code> files (or one product).<br>"
        "<b>Grid of</b> (GRID): any raster of the patch (e.g. its Sentinel-2 stack); the output covers its extent.<br>"
        "<b>Start/End date</b> (START_DATE, END_DATE): optional, inclusive; empty: every product.<br>"
        "<b>Resolution</b> (RESOLUTION, default 300 m).<br>"
        "<b>OLCI stack</b> (OUTPUT): float32 time stack, band descriptions 'YYYY-MM-DD Oa01', NaN outside the swaths; "
        "give it to Export training tiles as the second modality and to Classify as INPUT_2.<br>"
        "Only local products are read: no STAC service publishing OLCI L1B assets could be checked against its real "
        "responses offline.<br>"
        "Example: <code>qgis_process run landcover:downloadolci -- PRODUCTS_FOLDER=olci/ GRID=stack.tif "
        "START_DATE=2017-01-01 END_DATE=2017-12-31 OUTPUT=olci.tif</code>"
    )

    PRODUCTS_FOLDER = "PRODUCTS_FOLDER"
    GRID = "GRID"
    RESOLUTION = "RESOLUTION"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterFile(self.PRODUCTS_FOLDER, self.tr("Folder of OLCI EFR products (.SEN3 / .zip)"), QgsProcessingParameterFile.Folder)
        )
        self.addParameter(QgsProcessingParameterRasterLayer(self.GRID, self.tr("Grid of (a raster of the patch)")))
        add_date_parameters(self, optional=True)
        self.addParameter(
            QgsProcessingParameterNumber(self.RESOLUTION, self.tr("Resolution (m)"), QgsProcessingParameterNumber.Double, olci.OLCI_RESOLUTION, minValue=1.0)
        )
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("OLCI stack")))

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        start, end = date_range(self, parameters, context)
        out = self.output_path(parameters, self.OUTPUT, context, (".tif", ".tiff"))
        stack = olci.olci_stack_file(
            [self.parameterAsFile(parameters, self.PRODUCTS_FOLDER, context)],
            self.raster_path(parameters, self.GRID, context),
            out,
            start=start,
            end=end,
            resolution=self.parameterAsDouble(parameters, self.RESOLUTION, context),
            monitor=monitor,
        )
        feedback.pushInfo(f"{len(stack.dates)} date(s): " + ", ".join(d.isoformat() for d in stack.dates))
        return {self.OUTPUT: out}
