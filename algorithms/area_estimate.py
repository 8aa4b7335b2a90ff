"""Area estimation: a labelled stratified sample + the map → Olofsson et al. (2014) areas and accuracies."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
    QgsProviderRegistry,
)

from ..lc_plugin.validation import area
from .base import LandCoverAlgorithm


class AreaEstimateAlgorithm(LandCoverAlgorithm):
    ALG_ID = "areaestimate"
    DISPLAY_NAME = "Area estimation (Olofsson et al. 2014)"
    GROUP_ID = "validation"
    HELP = (
        "Turns a labelled stratified random sample (from <i>Sample design for area estimation</i>) and the map it was drawn from into "
        "unbiased area estimates and accuracies, following Olofsson et al. (2014), <i>Good practices for estimating area and assessing "
        "accuracy of land change</i>, Remote Sensing of Environment 148:42–57: estimated area per class with standard error and 95 % "
        "confidence interval, user's, producer's and overall accuracy weighted by mapped area, with their confidence intervals."
    )
    NOTES = (
        "The error matrix of sample counts is also written as &lt;JSON name&gt;_confusion.csv.<br>"
        "Example: <code>qgis_process run landcover:areaestimate -- INPUT=map.tif SAMPLE=sample.gpkg OUTPUT_HTML=area.html "
        "OUTPUT_JSON=area.json</code>"
    )

    # The engine's arguments whose parameter id is not their upper-case form.
    ARGUMENTS = {
        "map_path": "INPUT",
        "sample_path": "SAMPLE",
        "sample_layer": "SAMPLE",
        "label_field": "REFERENCE_FIELD",
        "json_out": "OUTPUT_JSON",
        "html_out": "OUTPUT_HTML",
    }

    INPUT = "INPUT"
    SAMPLE = "SAMPLE"
    REFERENCE_FIELD = "REFERENCE_FIELD"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_JSON = "OUTPUT_JSON"
    OVERALL_ACCURACY = "OVERALL_ACCURACY"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Land-cover map")),
            help="The class raster the sample was drawn from (strata = its classes; every mapped class needs labelled points).",
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer(self.SAMPLE, self.tr("Labelled sample"), [QgsProcessing.TypeVectorPoint]),
            help="Points; the map class is read from the map under each point.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.REFERENCE_FIELD, self.tr("Reference label field"), "reference"),
            help="Integer class ids; empty values (not yet labelled) and 0 are skipped and counted in the notes.",
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT_HTML, self.tr("Report (HTML)"), self.tr("HTML files (*.html)")),
            help="The area estimates and accuracies as an HTML page.",
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT_JSON, self.tr("Report (JSON)"), self.tr("JSON files (*.json)")),
            help="The same figures as JSON.",
        )
        self.addOutput(QgsProcessingOutputNumber(self.OVERALL_ACCURACY, self.tr("Overall accuracy (area-weighted)")))

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        layer = self.parameterAsVectorLayer(parameters, self.SAMPLE, context)
        if layer is None:
            raise self.parameter_error(self.SAMPLE, "choose a point layer with the labelled sample.")
        uri = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
        html = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        json_out = self.parameterAsFileOutput(parameters, self.OUTPUT_JSON, context)
        doc = area.area_estimate_file(
            self.raster_path(parameters, self.INPUT, context),
            uri.get("path") or layer.source().split("|")[0],
            json_out,
            html,
            label_field=self.parameterAsString(parameters, self.REFERENCE_FIELD, context) or "reference",
            sample_layer=uri.get("layerName") or None,
            monitor=monitor,
        ).document
        for note in doc["notes"]:
            feedback.pushInfo(note)
        return {self.OUTPUT_HTML: html, self.OUTPUT_JSON: json_out, self.OVERALL_ACCURACY: doc["overall_accuracy"]}
