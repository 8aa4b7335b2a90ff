"""Reclassify a class map with a table: old id → new id, with the new names and colours."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterMatrix,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..lc_plugin.ml import postprocess
from .base import LandCoverAlgorithm

HEADERS = ["Old id", "New id", "New name", "New colour"]


class ReclassifyAlgorithm(LandCoverAlgorithm):
    ALG_ID = "reclassify"
    DISPLAY_NAME = "Reclassify map"
    GROUP_ID = "classification"
    ARGUMENTS = {"input_path": "INPUT", "out_path": "OUTPUT", "rows": "TABLE"}
    HELP = (
        "Maps the classes of a land-cover map onto another legend (merge, renumber, rename, recolour, drop), keeping the result a class "
        "map with its legend."
    )
    NOTES = (
        "Example (grassland into cultivated land, named agriculture; water to no data): <code>qgis_process run landcover:reclassify -- "
        "INPUT=landcover.tif TABLE=3,1,agriculture,#ffff00,5,0,, OUTPUT=re.tif</code>"
    )

    INPUT = "INPUT"
    TABLE = "TABLE"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Land-cover map")),
            help="A UInt8 class raster (the output of Classify or Sieve).",
        )
        self.addParameter(
            QgsProcessingParameterMatrix(self.TABLE, self.tr("Reclassification table"), 1, False, [self.tr(h) for h in HEADERS]),
            help="Rows of old id, new id, new name, new colour (#rrggbb). New id 0 makes the class no data. Ids not in the table keep "
            "their class. An empty name or colour comes from the class the new id stands for (the old class of that id, or the first "
            "old class renumbered to it), else the default legend.",
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Reclassified map")),
            help="Class raster with the new legend, loaded with it.",
        )

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        out = self.output_path(parameters, self.OUTPUT, context, (".tif", ".tiff"))
        cells = self.parameterAsMatrix(parameters, self.TABLE, context)
        if len(cells) % len(HEADERS):
            raise self.parameter_error(self.TABLE, f"expected {len(HEADERS)} cells per row ({', '.join(HEADERS)}), got {len(cells)} cells.")
        rows = [cells[i : i + len(HEADERS)] for i in range(0, len(cells), len(HEADERS))]
        table = postprocess.reclassify_file(self.raster_path(parameters, self.INPUT, context), out, rows, monitor=monitor)
        feedback.pushInfo("Classes: " + ", ".join(f"{c.id} {c.name}" for c in table))
        self.style_as_classes(context, out)
        return {self.OUTPUT: out}
