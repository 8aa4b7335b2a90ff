"""Filter cloudy scenes: drop dates whose share of clear pixels is below a threshold."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..lc_plugin.timeseries import scenes
from .base import LandCoverAlgorithm
from .params import parse_date


class FilterScenesAlgorithm(LandCoverAlgorithm):
    ALG_ID = "filterscenes"
    DISPLAY_NAME = "Filter cloudy scenes"
    GROUP_ID = "preparation"
    HELP = (
        "Drops the dates whose fraction of clear pixels is below a threshold, from the time stack and its cloud mask together (the seeds "
        "kept dates with at least 80 % valid pixels)."
    )
    NOTES = (
        "A <code>.vrt</code> output file name writes a GDAL virtual raster instead of a GeoTIFF: it lists the kept dates' bands of the "
        "input without copying a pixel (instant, a few kB, where a GeoTIFF copy of a 70-date patch takes a minute and gigabytes); QGIS "
        "and the later steps read it like the GeoTIFF, but it needs its input file to stay beside it.<br>"
        "Example: <code>qgis_process run landcover:filterscenes -- INPUT=stack.tif MASK=clm.tif OUTPUT=f.tif OUTPUT_MASK=fclm.tif</code>"
    )

    INPUT = "INPUT"
    MASK = "MASK"
    MIN_VALID_FRACTION = "MIN_VALID_FRACTION"
    EXCLUDE_DATES = "EXCLUDE_DATES"
    OUTPUT = "OUTPUT"
    OUTPUT_MASK = "OUTPUT_MASK"
    ARGUMENTS = {"stack_path": "INPUT", "mask_path": "MASK", "stack_out": "OUTPUT", "mask_out": "OUTPUT_MASK"}

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Time stack")), help="The output of Download.")
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.MASK, self.tr("Cloud mask stack")),
            help="The output of Cloud masks (same dates and grid as the stack).",
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MIN_VALID_FRACTION,
                self.tr("Minimum valid fraction"),
                QgsProcessingParameterNumber.Double,
                scenes.DEFAULT_MIN_VALID_FRACTION,
                minValue=0,
                maxValue=1,
            ),
            help="0–1. The fraction counts only pixels that have data, so a patch partly outside the satellite's footprint is not "
            "penalised.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.EXCLUDE_DATES, self.tr("Dates to leave out (YYYY-MM-DD, comma-separated)"), optional=True),
            help="comma-separated YYYY-MM-DD dates dropped whatever their clear fraction (scenes you judged unusable in the scene list).",
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Filtered time stack")),
            help="The kept dates of the stack (.tif or .vrt).",
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT_MASK, self.tr("Filtered cloud mask stack")),
            help="The kept dates of the cloud mask (.tif or .vrt).",
        )

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        out = self.output_path(parameters, self.OUTPUT, context, (".tif", ".tiff", ".vrt"))
        out_mask = self.output_path(parameters, self.OUTPUT_MASK, context, (".tif", ".tiff", ".vrt"))
        filtered = scenes.filter_scenes_file(
            self.raster_path(parameters, self.INPUT, context),
            self.raster_path(parameters, self.MASK, context),
            out,
            out_mask,
            min_valid_fraction=self.parameterAsDouble(parameters, self.MIN_VALID_FRACTION, context),
            exclude_dates=self.excluded_dates(parameters, context),
            monitor=monitor,
        )
        feedback.pushInfo(f"Kept {len(filtered.dates)} dates: {', '.join(d.isoformat() for d in filtered.dates)}")
        return {self.OUTPUT: out, self.OUTPUT_MASK: out_mask}

    def excluded_dates(self, parameters, context) -> list:
        text = self.parameterAsString(parameters, self.EXCLUDE_DATES, context)
        return [parse_date(self.EXCLUDE_DATES, part) for part in text.split(",") if part.strip()]
