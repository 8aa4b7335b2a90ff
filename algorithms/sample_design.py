"""Sample design: a stratified random sample of a land-cover map, to be labelled for area estimation."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ..lc_plugin.validation import area
from .base import LandCoverAlgorithm


class SampleDesignAlgorithm(LandCoverAlgorithm):
    ALG_ID = "sampledesign"
    DISPLAY_NAME = "Sample design for area estimation"
    GROUP_ID = "validation"
    HELP = (
        "Draws a stratified random sample of pixels from a land-cover map (strata = map classes), following Olofsson et al. (2014), "
        "<i>Good practices for estimating area and assessing accuracy of land change</i>. Label every point with its true class (from "
        "imagery or field visits) in the empty label field (LABEL_FIELD), then run <i>Area estimation</i>."
    )
    NOTES = (
        "Example: <code>qgis_process run landcover:sampledesign -- INPUT=map.tif MIN_PER_CLASS=50 OUTPUT=sample.gpkg</code>"
    )

    # The engine's arguments whose parameter id is not their upper-case form.
    ARGUMENTS = {"map_path": "INPUT", "out_path": "OUTPUT"}

    INPUT = "INPUT"
    SAMPLE_SIZE = "SAMPLE_SIZE"
    TARGET_SE = "TARGET_SE"
    EXPECTED_ACCURACY = "EXPECTED_ACCURACY"
    EXPECTED_ACCURACY_BY_CLASS = "EXPECTED_ACCURACY_BY_CLASS"
    ALLOCATION = "ALLOCATION"
    MIN_PER_CLASS = "MIN_PER_CLASS"
    LABEL_FIELD = "LABEL_FIELD"
    SEED = "SEED"
    OUTPUT = "OUTPUT"
    N_POINTS = "N_POINTS"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        integer, double = QgsProcessingParameterNumber.Integer, QgsProcessingParameterNumber.Double
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Land-cover map")), help="A class raster in a projected CRS (0 = no data).")
        self.addParameter(
            QgsProcessingParameterNumber(self.SAMPLE_SIZE, self.tr("Total sample size (0 = from the target SE)"), integer, 0, minValue=0),
            help="0 computes it from TARGET_SE and EXPECTED_ACCURACY with the paper's eq. 13, n = (Σ W<sub>i</sub> S<sub>i</sub> / "
            "S(Ô))², S<sub>i</sub> = √(U<sub>i</sub>(1 − U<sub>i</sub>)).",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.TARGET_SE, self.tr("Target standard error of overall accuracy"), double, 0.01, minValue=0.0001, maxValue=0.5),
            help="The standard error of overall accuracy the computed sample size aims at.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.EXPECTED_ACCURACY, self.tr("Expected user's accuracy"), double, 0.85, minValue=0.01, maxValue=0.99),
            help="The user's accuracy expected of every class, for the sample size.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.EXPECTED_ACCURACY_BY_CLASS, self.tr("Expected user's accuracy per class (id:value, …)"), optional=True),
            help="Per class, as <code>id:value, …</code>; other classes take EXPECTED_ACCURACY.",
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.ALLOCATION,
                self.tr("Allocation"),
                [
                    self.tr("Minimum per class, rest proportional (Olofsson et al. 2014)"),
                    self.tr("Proportional to area"),
                    self.tr("Equal per class"),
                ],
                defaultValue=0,
            ),
            help="The paper's advice: every class gets at least MIN_PER_CLASS, the rest in proportion to mapped area; or proportional to "
            "area; or equal per class.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.MIN_PER_CLASS, self.tr("Minimum per class"), integer, 50, minValue=0),
            help="The paper suggests 50–100 for rare classes.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.LABEL_FIELD, self.tr("Label field (to be filled in)"), "reference"),
            help="The empty integer field to fill in with the true class.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"), integer, 42, minValue=0),
            advanced=True,
            help="The same seed draws the same sample.",
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(self.OUTPUT, self.tr("Sample points")),
            help="GeoPackage of pixel centres with point_id, map_class, map_name, weight and the empty label field.",
        )
        self.addOutput(QgsProcessingOutputNumber(self.N_POINTS, self.tr("Number of sample points")))

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        out = self.output_path(parameters, self.OUTPUT, context, (".gpkg",))
        design = area.sample_design_file(
            self.raster_path(parameters, self.INPUT, context),
            out,
            sample_size=self.parameterAsInt(parameters, self.SAMPLE_SIZE, context),
            target_se=self.parameterAsDouble(parameters, self.TARGET_SE, context),
            expected_accuracy=self.parameterAsDouble(parameters, self.EXPECTED_ACCURACY, context),
            expected_accuracy_by_class=self.parameterAsString(parameters, self.EXPECTED_ACCURACY_BY_CLASS, context) or None,
            allocation=area.ALLOCATIONS[self.parameterAsEnum(parameters, self.ALLOCATION, context)],
            min_per_class=self.parameterAsInt(parameters, self.MIN_PER_CLASS, context),
            label_field=self.parameterAsString(parameters, self.LABEL_FIELD, context) or "reference",
            seed=self.parameterAsInt(parameters, self.SEED, context),
            monitor=monitor,
        ).design
        for note in design["notes"]:
            feedback.reportError(note, fatalError=False)
        return {self.OUTPUT: out, self.N_POINTS: design["sample_size"]}
