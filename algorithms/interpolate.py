"""Temporal interpolation onto a regular date grid, over valid observations only."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..lc_plugin.timeseries import interpolate
from .base import LandCoverAlgorithm
from .params import add_date_parameters, date_range


class InterpolateAlgorithm(LandCoverAlgorithm):
    ALG_ID = "interpolate"
    DISPLAY_NAME = "Temporal interpolation"
    GROUP_ID = "preparation"
    HELP = (
        "Resamples a time stack to a uniform grid of dates (every N days), interpolating each pixel linearly between its valid "
        "observations only (clear in the cloud mask and with data), as eo-learn's LinearInterpolationTask. Before a pixel's first and "
        "after its last valid observation the edge value is held; a pixel with no valid observation stays no data. The categorical SCL "
        "band is not interpolated."
    )
    NOTES = (
        "Example: <code>qgis_process run landcover:interpolate -- INPUT=f.tif MASK=fclm.tif STEP_DAYS=16 OUTPUT=i.tif</code>"
    )

    INPUT = "INPUT"
    MASK = "MASK"
    STEP_DAYS = "STEP_DAYS"
    OUTPUT = "OUTPUT"
    ARGUMENTS = {"stack_path": "INPUT", "mask_path": "MASK", "out_path": "OUTPUT", "start": "START_DATE", "end": "END_DATE"}

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Time stack")), help="Usually the filtered stack.")
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.MASK, self.tr("Cloud mask stack"), optional=True),
            help="Without it only no-data pixels are skipped.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.STEP_DAYS, self.tr("Step (days)"), QgsProcessingParameterNumber.Integer, 16, minValue=1),
            help="Days between two dates of the output.",
        )
        add_date_parameters(
            self,
            optional=True,
            start_help="The first date of the output (YYYY-MM-DD in qgis_process).",
            end_help="The last date of the output at most.",
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Interpolated time stack")),
            help="Loaded in true colour when run from the dialog.",
        )

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        out = self.output_path(parameters, self.OUTPUT, context, (".tif", ".tiff"))
        mask = self.optional_raster_path(parameters, self.MASK, context)
        start, end = date_range(self, parameters, context)
        result = interpolate.interpolate_file(
            self.raster_path(parameters, self.INPUT, context),
            out,
            mask_path=mask,
            step_days=self.parameterAsInt(parameters, self.STEP_DAYS, context),
            start=start,
            end=end,
            monitor=monitor,
        )
        feedback.pushInfo(f"{len(result.dates)} dates from {result.dates[0]} to {result.dates[-1]}")
        return {self.OUTPUT: out}
