"""Split stack into dated layers: one GeoTIFF per date, each dated for the temporal controller."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingOutputMultipleLayers,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
)

from ..lc_plugin.io import split
from .base import LandCoverAlgorithm


class SplitStackAlgorithm(LandCoverAlgorithm):
    ALG_ID = "splitstack"
    DISPLAY_NAME = "Split stack into dated layers"
    GROUP_ID = "preparation"
    HELP = (
        "Writes one GeoTIFF per date of a time stack (a download, filtered, interpolated or cloud-mask stack), so the series can be "
        "browsed with QGIS's temporal controller (<i>View → Panels → Temporal Controller</i>) or used by tools that expect one image per "
        "date. Each file is itself a one-date stack (same bands, band descriptions 'DATE BAND', the plugin's metadata), named "
        "<code>STACK_YYYY-MM-DD.tif</code>."
    )
    NOTES = (
        "Outputs: OUTPUT_FOLDER and LAYERS, the files in date order.<br>"
        "Example: <code>qgis_process run landcover:splitstack -- INPUT=interpolated.tif OUTPUT_FOLDER=dates</code>"
    )

    ARGUMENTS = {"stack_path": "INPUT", "out_dir": "OUTPUT_FOLDER"}
    INPUT = "INPUT"
    LOAD_LAYERS = "LOAD_LAYERS"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    LAYERS = "LAYERS"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Time stack")), help="The stack to split.")
        self.addParameter(
            QgsProcessingParameterBoolean(self.LOAD_LAYERS, self.tr("Load the dated layers (temporal controller)"), True),
            help="When run from the dialog, every date is added to the map in true colour (B04/B03/B02; masks and probabilities with "
            "their ramps) with its date set as a fixed temporal range, so the temporal controller shows one date after the other.",
        )
        self.addParameter(
            QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Output folder")),
            help="Where the files go (a temporary folder unless chosen).",
        )
        self.addOutput(QgsProcessingOutputMultipleLayers(self.LAYERS, self.tr("Dated layers")))

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        stack = self.raster_path(parameters, self.INPUT, context)
        out_dir = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        outputs = split.split_stack_file(stack, out_dir, monitor=monitor)
        feedback.pushInfo(f"{len(outputs)} dated layers written to {out_dir}")
        if self.parameterAsBoolean(parameters, self.LOAD_LAYERS, context):
            prefix = os.path.splitext(os.path.basename(stack))[0]
            for date, path in outputs:
                self.load_output(context, path, f"{prefix} {date.isoformat()}", self.LAYERS, date)
        return {self.OUTPUT_FOLDER: out_dir, self.LAYERS: [path for _, path in outputs]}
