"""Count valid observations: per pixel, the dates with data and clear of cloud."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..lc_plugin.timeseries import coverage
from .base import LandCoverAlgorithm


class ValidCountAlgorithm(LandCoverAlgorithm):
    ALG_ID = "validcount"
    DISPLAY_NAME = "Count valid observations"
    GROUP_ID = "preparation"
    HELP = (
        "Counts, for every pixel, the dates of a time stack on which it has data in every reflectance band and, with a cloud mask, is "
        "clear. Shows before training where interpolation rests on many observations and where on few (the edges of the satellite's "
        "footprint, persistently cloudy places)."
    )
    NOTES = (
        "Example: <code>qgis_process run landcover:validcount -- INPUT=filtered.tif MASK=filtered_clm.tif OUTPUT=count.tif</code>"
    )

    INPUT = "INPUT"
    MASK = "MASK"
    OUTPUT = "OUTPUT"
    ARGUMENTS = {"stack_path": "INPUT", "mask_path": "MASK", "out_path": "OUTPUT"}

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Time stack")), help="A downloaded or filtered stack.")
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.MASK, self.tr("Cloud mask stack"), optional=True),
            help="The output of Cloud masks or Filter cloudy scenes for the same stack; without it only no-data pixels are excluded.",
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Valid observations")),
            help="UInt16 raster, loaded with a red (few) to green (many) gradient up to the number of dates.",
        )

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        out = self.output_path(parameters, self.OUTPUT, context, (".tif", ".tiff"))
        counted = coverage.valid_count_file(
            self.raster_path(parameters, self.INPUT, context),
            out,
            mask_path=self.optional_raster_path(parameters, self.MASK, context),
            monitor=monitor,
        )
        feedback.pushInfo(f"Valid observations counted over {counted.n_dates} dates.")
        return {self.OUTPUT: out}
