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
        "Draws a stratified random sample of pixels from a land-cover map (strata = map classes), following Olofsson "
        "et al. (2014), <i>Good practices for estimating area and assessing accuracy of land change</i>. Label every "
        "point with its true class (from imagery or field visits) in the empty <b>Label field</b>, then run "
        "<i>Area estimation</i>.<br>"
        "<b>Land-cover map</b> (INPUT): a class raster in a projected CRS (0 = no data).<br>"
        "<b>Total sample size</b> (SAMPLE_SIZE, default 0): 0 computes it from the <b>target standard error of overall "
        "accuracy</b> (TARGET_SE, default 0.01) and the <b>expected user's accuracy</b> (EXPECTED_ACCURACY, default "
        "0.85, per class in EXPECTED_ACCURACY_BY_CLASS as <code>id:value, …</code>) with the paper's eq. 13, "
        "n = (Σ W<sub>i</sub> S<sub>i</sub> / S(Ô))², S<sub>i</sub> = √(U<sub>i</sub>(1 − U<sub>i</sub>)).<br>"
        "<b>Allocation</b> (ALLOCATION): <i>the paper's advice</i> (default): every class gets at least <b>Minimum per "
        "class</b> (MIN_PER_CLASS, default 50; the paper suggests 50–100 for rare classes), the rest in proportion "
        "to mapped area; <i>proportional</i> to area; or <i>equal</i> per class (0, 1, 2 in qgis_process).<br>"
        "<b>Sample points</b> (OUTPUT): GeoPackage of pixel centres with point_id, map_class, map_name, weight and the "
        "empty integer label field (LABEL_FIELD, default <code>reference</code>). <b>Random seed</b> (SEED).<br>"
        "Example: <code>qgis_process run landcover:sampledesign -- INPUT=map.tif MIN_PER_CLASS=50 "
        "OUTPUT=sample.gpkg</code>"
    )

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
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Land-cover map")))
        self.addParameter(QgsProcessingParameterNumber(self.SAMPLE_SIZE, self.tr("Total sample size (0 = from the target SE)"), integer, 0, minValue=0))
        self.addParameter(
            QgsProcessingParameterNumber(self.TARGET_SE, self.tr("Target standard error of overall accuracy"), double, 0.01, minValue=0.0001, maxValue=0.5)
        )
        self.addParameter(QgsProcessingParameterNumber(self.EXPECTED_ACCURACY, self.tr("Expected user's accuracy"), double, 0.85, minValue=0.01, maxValue=0.99))
        self.addParameter(
            QgsProcessingParameterString(self.EXPECTED_ACCURACY_BY_CLASS, self.tr("Expected user's accuracy per class (id:value, …)"), optional=True)
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
            )
        )
        self.addParameter(QgsProcessingParameterNumber(self.MIN_PER_CLASS, self.tr("Minimum per class"), integer, 50, minValue=0))
        self.addParameter(QgsProcessingParameterString(self.LABEL_FIELD, self.tr("Label field (to be filled in)"), "reference"))
        seed = QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"), integer, 42, minValue=0)
        seed.setFlags(seed.flags() | seed.FlagAdvanced)
        self.addParameter(seed)
        self.addParameter(QgsProcessingParameterVectorDestination(self.OUTPUT, self.tr("Sample points")))
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
        )
        for note in design["notes"]:
            feedback.reportError(note, fatalError=False)
        return {self.OUTPUT: out, self.N_POINTS: design["sample_size"]}
