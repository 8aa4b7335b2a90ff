"""Sieve (minimum mapping unit), optionally after a majority filter, on a class map."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..lc_plugin.ml import postprocess
from .base import LandCoverAlgorithm


class SieveAlgorithm(LandCoverAlgorithm):
    ALG_ID = "sieve"
    DISPLAY_NAME = "Sieve (minimum mapping unit)"
    GROUP_ID = "classification"
    ARGUMENTS = {"input_path": "INPUT", "out_path": "OUTPUT"}
    HELP = (
        "Removes the salt-and-pepper of a pixel classification: every patch of connected pixels of one class smaller than the minimum "
        "mapping unit is merged into its largest neighbouring patch (GDAL's sieve), optionally after a majority filter. No-data pixels "
        "(0) are neither filled nor spread. The class names and colours are kept."
    )
    NOTES = (
        "Example: <code>qgis_process run landcover:sieve -- INPUT=landcover.tif MIN_PIXELS=10 OUTPUT=landcover_sieved.tif</code>"
    )

    INPUT = "INPUT"
    MIN_PIXELS = "MIN_PIXELS"
    CONNECTEDNESS = "CONNECTEDNESS"
    MAJORITY = "MAJORITY"
    MAJORITY_SIZE = "MAJORITY_SIZE"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Land-cover map")), help="A UInt8 class raster (the output of Classify).")
        self.addParameter(
            QgsProcessingParameterNumber(self.MIN_PIXELS, self.tr("Minimum mapping unit in pixels"), QgsProcessingParameterNumber.Integer, 4, minValue=1),
            help="With 10 m pixels 100 pixels are 1 ha.",
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.CONNECTEDNESS, self.tr("Connectedness"), ["4", "8"], defaultValue=0),
            help="4: pixels sharing an edge form a patch; 8 counts corners too.",
        )
        self.addParameter(
            QgsProcessingParameterBoolean(self.MAJORITY, self.tr("Majority filter first"), defaultValue=False),
            help="Run a majority filter before the sieve.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.MAJORITY_SIZE, self.tr("Majority window"), QgsProcessingParameterNumber.Integer, 3, minValue=3, maxValue=99),
            advanced=True,
            help="Odd size in pixels; each pixel takes the most frequent class of its window (ties keep the pixel's own class).",
        )
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Cleaned map")), help="Class raster, loaded with the class legend.")

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        out = self.output_path(parameters, self.OUTPUT, context, (".tif", ".tiff"))
        majority = self.parameterAsBoolean(parameters, self.MAJORITY, context)
        summary = postprocess.sieve_file(
            self.raster_path(parameters, self.INPUT, context),
            out,
            self.parameterAsInt(parameters, self.MIN_PIXELS, context),
            postprocess.CONNECTEDNESS[self.parameterAsEnum(parameters, self.CONNECTEDNESS, context)],
            self.parameterAsInt(parameters, self.MAJORITY_SIZE, context) if majority else 0,
            monitor=monitor,
        )
        feedback.pushInfo(f"{summary.changed} of {summary.pixels} classified pixels changed class.")
        self.style_as_classes(context, out)
        return {self.OUTPUT: out, "CHANGED": summary.changed}
