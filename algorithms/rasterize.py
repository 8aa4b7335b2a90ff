"""Rasterize reference: burn a land-cover vector map onto a patch's pixel grid."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..lc_plugin.core import legends
from ..lc_plugin.reference import corine
from ..lc_plugin.reference import rasterize as reference
from .base import LandCoverAlgorithm

ZERO_CHOICES_LABELS = ["refuse (0 means no data)", "shift every id up by one", "burn 0 as no data"]


class RasterizeReferenceAlgorithm(LandCoverAlgorithm):
    ALG_ID = "rasterizereference"
    DISPLAY_NAME = "Rasterize reference"
    GROUP_ID = "preparation"
    ARGUMENTS = {
        "vector_path": "REFERENCE",
        "class_field": "FIELD",
        "code_field": "FIELD",
        "like_path": "GRID",
        "out_path": "OUTPUT",
        "erosion_px": "EROSION",
        "zero": "ZERO_ID",
        "level": "CLC_LEGEND",
    }
    HELP = (
        "Burns a reference land-cover polygon layer onto the pixel grid of a patch (any raster of it, e.g. its time stack), so that "
        "pixels can be sampled for training and validation."
    )
    NOTES = (
        "Example: <code>qgis_process run landcover:rasterizereference -- REFERENCE=lulc.gpkg FIELD=LULC_ID GRID=stack.tif EROSION=1 "
        "OUTPUT=ref.tif</code><br>"
        "Example: <code>qgis_process run landcover:rasterizereference -- REFERENCE=clc2018.gpkg FIELD=Code_18 CLC_LEGEND=1 GRID=stack.tif "
        "OUTPUT=clc.tif</code>"
    )

    REFERENCE = "REFERENCE"
    FIELD = "FIELD"
    NAME_FIELD = "NAME_FIELD"
    COLOR_FIELD = "COLOR_FIELD"
    LEGEND = "LEGEND"
    LEGEND_FILE = "LEGEND_FILE"
    ZERO_ID = "ZERO_ID"
    GRID = "GRID"
    EROSION = "EROSION"
    CLC_LEGEND = "CLC_LEGEND"
    OUTPUT = "OUTPUT"
    CLC_LEVELS = [None, "3", "2", "1", "vegetation"]

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterFeatureSource(self.REFERENCE, self.tr("Reference polygons"), [QgsProcessing.TypeVectorPolygon]),
            help="Any CRS (reprojected).",
        )
        self.addParameter(
            QgsProcessingParameterField(self.FIELD, self.tr("Class field (integer id or text)"), parentLayerParameterName=self.REFERENCE),
            help="Integer class ids 1–255, or text (class names, numbered 1…n in sorted order, the text becoming the class name; or codes "
            "of the chosen legend, e.g. CORINE's Code_18 \"311\").",
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.ZERO_ID, self.tr("Class id 0 in the field"), ZERO_CHOICES_LABELS, defaultValue=0),
            help="0 means no data in a class raster, so a field holding 0 (as QGIS's <i>Add unique value index field</i> writes it) is "
            "refused unless the layer's name field leaves the id-0 polygons unnamed (eo-learn's LULC); or shift every id up by one "
            "(0 → 1, 1 → 2, …); or burn 0 as no data.",
        )
        self.addParameter(
            QgsProcessingParameterField(self.NAME_FIELD, self.tr("Class name field"), parentLayerParameterName=self.REFERENCE, optional=True),
            help="Empty: a field named like the class field with _NAME, if there is one.",
        )
        self.addParameter(
            QgsProcessingParameterField(self.COLOR_FIELD, self.tr("Class colour field"), parentLayerParameterName=self.REFERENCE, optional=True),
            help="#rrggbb; empty: no colour field.",
        )
        self.addParameter(
            QgsProcessingParameterFile(self.LEGEND_FILE, self.tr("Legend file (CSV id,name,color or QML)"), optional=True),
            help="CSV rows id,name,color or a QGIS QML style (paletted raster or categorized vector).",
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.LEGEND, self.tr("Built-in legend"), list(legends.LEGEND_LABELS), defaultValue=0),
            help="CORINE Land Cover level 3 turns codes 111–523 into the CLC raster's grid codes 1–44, as CLC_LEGEND 1 does. A legend is "
            "never applied unless chosen; classes without a name are called \"class &lt;id&gt;\" and get a colour that means something "
            "when their name is recognised (water blue, forest green, …), else a distinct palette colour.",
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.GRID, self.tr("Grid of (a raster of the patch)")),
            help="The raster whose grid the output takes.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.EROSION, self.tr("Erosion (pixels)"), QgsProcessingParameterNumber.Integer, 1, minValue=0),
            help="Shrinks every class region by this radius to drop mixed border pixels (the seeds used 1).",
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.CLC_LEGEND, self.tr("CORINE Land Cover legend (FIELD holds CLC codes)"),
                ["none", "CLC level 3 (44 classes)", "CLC level 2 (15)", "CLC level 1 (5)", "CLC vegetated classes"], defaultValue=0,
            ),
            help="Level 3 has 44 classes, level 2 15, level 1 5; the vegetated classes are the level-3 classes 2xx, 31x, 32x. FIELD is "
            "then the CLC code field (text '311' or a number, e.g. Code_18), burnt with the official EEA names and colours (level 3 "
            "keeps the EEA raster's GRID_CODE 1–44); codes 990/995/999 are no data.",
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Reference raster")),
            help="UInt8 class raster (0 = no data) with the class colours and names embedded, loaded with a paletted legend.",
        )

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
                options=self.class_options(parameters, context),
                erosion_px=self.parameterAsInt(parameters, self.EROSION, context),
                monitor=monitor,
            )
        feedback.pushInfo("Classes: " + ", ".join(f"{c.id} {c.name}" for c in classes))
        self.style_as_classes(context, out)
        return {self.OUTPUT: out}

    def class_options(self, parameters, context) -> reference.ClassOptions:
        return reference.ClassOptions(
            name_field=self.parameterAsString(parameters, self.NAME_FIELD, context) or None,
            color_field=self.parameterAsString(parameters, self.COLOR_FIELD, context) or None,
            legend=legends.LEGEND_CHOICES[self.parameterAsEnum(parameters, self.LEGEND, context)],
            legend_file=self.parameterAsFile(parameters, self.LEGEND_FILE, context) or None,
            zero=reference.ZERO_CHOICES[self.parameterAsEnum(parameters, self.ZERO_ID, context)],
        )
