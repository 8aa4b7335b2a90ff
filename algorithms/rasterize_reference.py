"""Rasterize reference: burn a land-cover vector map onto a patch's pixel grid."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..lc_plugin import corine, reference
from .base import LandCoverAlgorithm


class RasterizeReferenceAlgorithm(LandCoverAlgorithm):
    ALG_ID = "rasterizereference"
    DISPLAY_NAME = "Rasterize reference"
    GROUP_ID = "preparation"
    HELP = (
        "Burns a reference land-cover polygon layer onto the pixel grid of a patch (any raster of it, e.g. its time "
        "stack), so that pixels can be sampled for training and validation.<br>"
        "<b>Reference polygons</b> (REFERENCE): any CRS (reprojected).<br>"
        "<b>Class field</b> (FIELD): integer class ids 1–255 (0 = no data).<br>"
        "<b>Class name field</b> (NAME_FIELD): optional, names for the legend (default: a field named like the class "
        "field with _NAME, else the eo-learn Slovenian legend).<br>"
        "<b>Grid of</b> (GRID): the raster whose grid the output takes.<br>"
        "<b>Erosion (pixels)</b> (EROSION, default 1): shrinks every class region by this radius to drop mixed border "
        "pixels (the seeds used 1).<br>"
        "<b>Reference raster</b> (OUTPUT): UInt8 class raster (0 = no data) with the class colours and names embedded, "
        "loaded with a paletted legend.<br>"
        "Example: <code>qgis_process run landcover:rasterizereference -- REFERENCE=lulc.gpkg FIELD=LULC_ID GRID=stack.tif "
        "EROSION=1 OUTPUT=ref.tif</code><br>"
        "<b>CORINE legend</b> (CLC_LEGEND, default 0 none): 1 CLC level 3 (44 classes), 2 level 2 (15), 3 level 1 (5), "
        "4 the vegetated level-3 classes (2xx, 31x, 32x); FIELD is then the CLC code field (text '311' or a number, e.g. "
        "Code_18), burnt with the official EEA names and colours (level 3 keeps the EEA raster's GRID_CODE 1–44); codes "
        "990/995/999 are no data.<br>"
        "Example: <code>qgis_process run landcover:rasterizereference -- REFERENCE=clc2018.gpkg FIELD=Code_18 CLC_LEGEND=1 "
        "GRID=stack.tif OUTPUT=clc.tif</code>"
    )

    REFERENCE = "REFERENCE"
    FIELD = "FIELD"
    NAME_FIELD = "NAME_FIELD"
    GRID = "GRID"
    EROSION = "EROSION"
    CLC_LEGEND = "CLC_LEGEND"
    OUTPUT = "OUTPUT"
    CLC_LEVELS = [None, "3", "2", "1", "vegetation"]

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterFeatureSource(self.REFERENCE, self.tr("Reference polygons"), [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterField(self.FIELD, self.tr("Class field (integer id)"), parentLayerParameterName=self.REFERENCE))
        self.addParameter(QgsProcessingParameterField(self.NAME_FIELD, self.tr("Class name field"), parentLayerParameterName=self.REFERENCE, optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(self.GRID, self.tr("Grid of (a raster of the patch)")))
        self.addParameter(QgsProcessingParameterNumber(self.EROSION, self.tr("Erosion (pixels)"), QgsProcessingParameterNumber.Integer, 1, minValue=0))
        self.addParameter(
            QgsProcessingParameterEnum(
                self.CLC_LEGEND, self.tr("CORINE Land Cover legend (FIELD holds CLC codes)"),
                ["none", "CLC level 3 (44 classes)", "CLC level 2 (15)", "CLC level 1 (5)", "CLC vegetated classes"], defaultValue=0,
            )
        )
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Reference raster")))

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        vector, layer = self.vector_path(parameters, self.REFERENCE, context, feedback)
        out = self.output_path(parameters, self.OUTPUT, context, (".tif", ".tiff"))
        level = self.CLC_LEVELS[self.parameterAsEnum(parameters, self.CLC_LEGEND, context)]
        if level is not None:
            classes = corine.rasterize_clc_file(
                vector, self.parameterAsString(parameters, self.FIELD, context), self.raster_path(parameters, self.GRID, context), out,
                level=level, layer=layer, erosion_px=self.parameterAsInt(parameters, self.EROSION, context), monitor=monitor,
            )
        else:
            classes = reference.rasterize_reference_file(
                vector,
                self.parameterAsString(parameters, self.FIELD, context),
                self.raster_path(parameters, self.GRID, context),
                out,
                layer=layer,
                name_field=self.parameterAsString(parameters, self.NAME_FIELD, context) or None,
                erosion_px=self.parameterAsInt(parameters, self.EROSION, context),
                monitor=monitor,
            )
        feedback.pushInfo("Classes: " + ", ".join(f"{c.id} {c.name}" for c in classes))
        self.style_as_classes(context, out)
        return {self.OUTPUT: out}
