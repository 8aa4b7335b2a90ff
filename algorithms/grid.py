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
        "Splits an area of interest into square patches, the unit every later step works on "
        "(the seeds used 1000 × 1000 px patches of 10 m over Slovenia). Patches are aligned to multiples of the patch "
        "size in the target CRS, so a patch keeps its id (<code>col_row</code>) whatever the AOI; only patches "
        "intersecting the AOI are kept.<br>"
        "<b>Area of interest</b> (AOI): polygon layer in any CRS.<br>"
        "<b>Target CRS</b> (CRS): optional; default the UTM zone of the AOI (an AOI spanning two zones needs an explicit CRS).<br>"
        "<b>Patch size (pixels)</b> (PATCH_SIZE, default 1000) and <b>Resolution (m)</b> (RESOLUTION, default 10): "
        "10 km patches.<br>"
        "<b>Buffer (pixels)</b> (BUFFER, advanced, default 0): extra margin around every patch (overlap between neighbours).<br>"
        "<b>Max patches</b> (MAX_PATCHES, advanced, default 10000): an AOI that needs more patches is refused before "
        "anything is written, with the count it would need.<br>"
        "<b>Patch grid</b> (OUTPUT): a GeoPackage with fields patch_id, col, row, crs, resolution, width_px, height_px.<br>"
        "Example: <code>qgis_process run landcover:creategrid -- AOI=aoi.gpkg PATCH_SIZE=1000 OUTPUT=grid.gpkg</code>"
    )

    AOI = "AOI"
    CRS = "CRS"
    PATCH_SIZE = "PATCH_SIZE"
    RESOLUTION = "RESOLUTION"
    BUFFER = "BUFFER"
    MAX_PATCHES = "MAX_PATCHES"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterFeatureSource(self.AOI, self.tr("Area of interest"), [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterCrs(self.CRS, self.tr("Target CRS (empty: the AOI's UTM zone)"), optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.PATCH_SIZE, self.tr("Patch size (pixels)"), QgsProcessingParameterNumber.Integer, 1000, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(self.RESOLUTION, self.tr("Resolution (m)"), QgsProcessingParameterNumber.Double, 10.0, minValue=0.01))
        buffer = QgsProcessingParameterNumber(self.BUFFER, self.tr("Buffer (pixels)"), QgsProcessingParameterNumber.Integer, 0, minValue=0)
        buffer.setFlags(buffer.flags() | buffer.FlagAdvanced)
        self.addParameter(buffer)
        limit = QgsProcessingParameterNumber(
            self.MAX_PATCHES, self.tr("Max patches"), QgsProcessingParameterNumber.Integer, grid.DEFAULT_MAX_PATCHES, minValue=1
        )
        limit.setFlags(limit.flags() | limit.FlagAdvanced)
        self.addParameter(limit)
        self.addParameter(QgsProcessingParameterVectorDestination(self.OUTPUT, self.tr("Patch grid"), QgsProcessing.TypeVectorPolygon))

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        aoi_path, aoi_layer = self.vector_path(parameters, self.AOI, context, feedback)
        crs = self.parameterAsCrs(parameters, self.CRS, context)
        out = self.output_path(parameters, self.OUTPUT, context, (".gpkg",))
        count = grid.create_grid(
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
        feedback.pushInfo(f"{count} patches written to {out}")
        return {self.OUTPUT: out}
