"""Create patch grid: split an AOI into square patches in its UTM zone."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterCrs,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsProcessingParameterVectorDestination,
)

from ..lc_plugin.runs import grid
from .base import LandCoverAlgorithm


class CreateGridAlgorithm(LandCoverAlgorithm):
    ALG_ID = "creategrid"
    DISPLAY_NAME = "Create patch grid"
    GROUP_ID = "data"
    HELP = (
        "Splits an area of interest into square patches, the unit every later step works on (the seeds used 1000 × 1000 px patches of 10 "
        "m over Slovenia). Patches are aligned to multiples of the patch size in the target CRS, so a patch keeps its id "
        "(<code>col_row</code>) whatever the AOI; only patches intersecting the AOI are kept."
    )
    NOTES = (
        "Example: <code>qgis_process run landcover:creategrid -- AOI=aoi.gpkg PATCH_SIZE=1000 OUTPUT=grid.gpkg</code>"
    )

    AOI = "AOI"
    CRS = "CRS"
    PATCH_SIZE = "PATCH_SIZE"
    RESOLUTION = "RESOLUTION"
    BUFFER = "BUFFER"
    MAX_PATCHES = "MAX_PATCHES"
    OUTPUT = "OUTPUT"
    ARGUMENTS = {"aoi_path": "AOI", "aoi_layer": "AOI", "out_path": "OUTPUT", "patch_px": "PATCH_SIZE", "buffer_px": "BUFFER"}

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterFeatureSource(self.AOI, self.tr("Area of interest"), [QgsProcessing.TypeVectorPolygon]),
            help="Polygon layer in any CRS.",
        )
        self.addParameter(
            QgsProcessingParameterCrs(self.CRS, self.tr("Target CRS (empty: the AOI's UTM zone)"), optional=True),
            help="Empty: the UTM zone of the AOI (an AOI spanning two zones needs an explicit CRS).",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.PATCH_SIZE, self.tr("Patch size (pixels)"), QgsProcessingParameterNumber.Integer, 1000, minValue=1),
            help="Side of a patch in pixels of RESOLUTION (e.g. 1000 pixels of 10 m: 10 km patches).",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.RESOLUTION, self.tr("Resolution (m)"), QgsProcessingParameterNumber.Double, 10.0, minValue=0.01),
            help="Pixel size of the patches in the target CRS.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.BUFFER, self.tr("Buffer (pixels)"), QgsProcessingParameterNumber.Integer, 0, minValue=0),
            advanced=True,
            help="Extra margin around every patch (overlap between neighbours).",
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_PATCHES, self.tr("Max patches"), QgsProcessingParameterNumber.Integer, grid.DEFAULT_MAX_PATCHES, minValue=1
            ),
            advanced=True,
            help="An AOI that needs more patches is refused before anything is written, with the count it would need.",
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(self.OUTPUT, self.tr("Patch grid"), QgsProcessing.TypeVectorPolygon),
            help="A GeoPackage with fields patch_id, col, row, crs, resolution, width_px, height_px.",
        )

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        aoi_path, aoi_layer = self.vector_path(parameters, self.AOI, context, feedback)
        crs = self.parameterAsCrs(parameters, self.CRS, context)
        out = self.output_path(parameters, self.OUTPUT, context, (".gpkg",))
        patches = grid.create_grid(
            aoi_path,
            out,
            aoi_layer=aoi_layer,
            crs=crs.toWkt() if crs.isValid() else None,
            patch_px=self.parameterAsInt(parameters, self.PATCH_SIZE, context),
            resolution=self.parameterAsDouble(parameters, self.RESOLUTION, context),
            buffer_px=self.parameterAsInt(parameters, self.BUFFER, context),
            max_patches=self.parameterAsInt(parameters, self.MAX_PATCHES, context),
            monitor=monitor,
        )
        feedback.pushInfo(f"{patches.count} patches written to {out}")
        return {self.OUTPUT: out}
