"""Build a time stack from rasters made by other tools (any GDAL format)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..lc_plugin.io.rasters import Grid
from ..lc_plugin.sources import buildstack
from .base import LandCoverAlgorithm
from .importer import band_list


class BuildStackAlgorithm(LandCoverAlgorithm):
    ALG_ID = "buildstack"
    DISPLAY_NAME = "Build time stack from rasters"
    GROUP_ID = "data"
    HELP = (
        "Makes one time stack, like Download's, from rasters made by other tools (Semi-Automatic Classification Plugin, FORCE, sen2r, "
        "Google Earth Engine exports, per-band GeoTIFF or JP2 files), so cloud masks, interpolation, training and classification take "
        "them."
    )
    NOTES = (
        "Dates, when neither DATES nor DATE_PATTERN is given: the file's metadata (DATE, ACQUISITION_DATE, SENSING_TIME, Earth Engine's "
        "system:time_start, …), else the first YYYYMMDD or YYYY-MM-DD in the file name. Class bands (SCL) are never scaled. Each file's "
        "no-data value becomes NaN.<br>"
        "Example: <code>qgis_process run landcover:buildstack -- INPUT=T33TWM_20230813_B04.tif INPUT=T33TWM_20230813_B08.tif "
        "INPUT=T33TWM_20230818_B04.tif INPUT=T33TWM_20230818_B08.tif OUTPUT=stack.tif</code>"
    )

    INPUT = "INPUT"
    DATES = "DATES"
    DATE_PATTERN = "DATE_PATTERN"
    BANDS = "BANDS"
    GRID = "GRID"
    SCALE = "SCALE"
    OFFSET = "OFFSET"
    OUTPUT = "OUTPUT"
    ARGUMENTS = {"inputs": "INPUT", "out_path": "OUTPUT"}

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterMultipleLayers(self.INPUT, self.tr("Rasters (one date per file)"), QgsProcessing.TypeRaster),
            help="Layers or files of any GDAL format; each file is one date with one or more bands. Files of the same date (one per band, "
            "or neighbouring tiles) are merged. A time stack written by this plugin (bands described 'YYYY-MM-DD BAND') is taken as "
            "it is.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.DATES, self.tr("Dates, one per file (empty: from the files)"), "", optional=True),
            help="One date per file, comma-separated, in the order of INPUT (YYYY-MM-DD, YYYYMMDD or YYYYDDD).",
        )
        self.addParameter(
            QgsProcessingParameterString(self.DATE_PATTERN, self.tr("Date pattern in the file names (regular expression)"), "", optional=True),
            help="A regular expression whose first group (or group named <i>date</i>) finds the date in each file name, e.g. "
            "<code>_(\\d{8})_</code>.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.BANDS, self.tr("Band names of each file (empty: from the files)"), "", optional=True),
            help="The band names of every file, in the file's band order, e.g. B02,B03,B04,B08 (Sentinel-2 names let the later steps "
            "compute NDVI and use SCL). Empty: the files' band descriptions, else for single-band files a band name in the file name "
            "(…_B04.tif, …_SCL.tif).",
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.GRID, self.tr("Grid of this raster (empty: the first file's)"), optional=True),
            help="A raster whose CRS, pixel size and extent the stack takes; other files are reprojected onto it (bilinear; SCL nearest). "
            "Empty: the first file's grid.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.SCALE, self.tr("Scale (0: automatic)"), QgsProcessingParameterNumber.Double, 0.0, minValue=0.0),
            advanced=True,
            help="Reflectance = value × SCALE + OFFSET when SCALE is not 0; 0 = automatic: the file's own scale/offset metadata, else "
            "0.0001 for integer files, i.e. reflectance × 10000 as FORCE, sen2r and Earth Engine write it, and 1 for float files.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.OFFSET, self.tr("Offset"), QgsProcessingParameterNumber.Double, 0.0),
            advanced=True,
            help="Added after scaling (see SCALE).",
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Time stack")),
            help="float32, NaN = no data, bands described 'YYYY-MM-DD BAND', SOURCE=buildstack and the files of each date in ITEM_IDS.",
        )

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        inputs = self.raster_paths(parameters, self.INPUT, context)
        out = self.output_path(parameters, self.OUTPUT, context, (".tif", ".tiff"))
        dates = [d.strip() for d in self.parameterAsString(parameters, self.DATES, context).split(",") if d.strip()]
        grid_path = self.optional_raster_path(parameters, self.GRID, context)
        scale = self.parameterAsDouble(parameters, self.SCALE, context)
        buildstack.build_stack(
            inputs,
            out,
            dates=dates or None,
            date_pattern=self.parameterAsString(parameters, self.DATE_PATTERN, context).strip() or None,
            bands=band_list(self.parameterAsString(parameters, self.BANDS, context)),
            grid=Grid.of(grid_path) if grid_path else None,
            scale=scale or None,
            offset=self.parameterAsDouble(parameters, self.OFFSET, context),
            monitor=monitor,
        )
        return {self.OUTPUT: out}
