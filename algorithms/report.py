"""Accuracy report: confusion matrix and accuracy figures as JSON and an HTML page."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProviderRegistry,
)

from ..lc_plugin.validation import report
from .base import LandCoverAlgorithm


class AccuracyReportAlgorithm(LandCoverAlgorithm):
    ALG_ID = "accuracyreport"
    DISPLAY_NAME = "Accuracy report"
    GROUP_ID = "validation"
    HELP = (
        "Compares a land-cover map with reference data and writes the confusion matrix (counts, row- and column-normalised), overall "
        "accuracy, Cohen's kappa, per-class precision, recall and F1, macro and weighted F1, as JSON and as an HTML page with the "
        "matrices drawn as pictures.<br>"
        "Either a land-cover map (INPUT) + reference (REFERENCE, with REFERENCE_FIELD for polygons), or test predictions (PREDICTIONS) "
        "with the model (MODEL). All are optional one by one; one of the two combinations is required. Pixels that are no data (0) in "
        "either are ignored."
    )
    NOTES = (
        "The report also draws the column-normalised (precision) matrix; from test predictions, one-vs-rest ROC curves and AUCs from the "
        "p_&lt;id&gt; probabilities, and for a map from PROBABILITIES; with the MODEL (also for a map), the feature importance (gain, "
        "split) as a band × date heat map, the training samples per class and the cross-validation of Train classifier. The confusion "
        "matrix is also written as &lt;JSON name&gt;_confusion.csv.<br>"
        "The report leads with the estimate that does not leak (held-out blocks or patches, else the model's spatial cross-validation) "
        "and says why any other figure is not it; it states the sampling, split, sample sizes and reference (methods paragraph), prints "
        "the error matrix with row and column totals and overall, user's and producer's accuracy with 95 % confidence intervals (Wilson; "
        "for a reference of points, e.g. from Sample design, the Olofsson et al. 2014 estimators of a sample stratified by map class), "
        "n/a where undefined, and warns when the evaluated pixels lie in the blocks the model was trained on (give the MODEL). Every "
        "figure is also written as SVG beside the HTML.<br>"
        "Example: <code>qgis_process run landcover:accuracyreport -- INPUT=map.tif REFERENCE=ref.tif OUTPUT_HTML=report.html "
        "OUTPUT_JSON=report.json</code>"
    )

    # The engine's arguments whose parameter id is not their upper-case form.
    ARGUMENTS = {
        "classification_path": "INPUT",
        "reference_path": "REFERENCE",
        "reference_layer": "REFERENCE",
        "predictions_csv": "PREDICTIONS",
        "model_path": "MODEL",
        "json_out": "OUTPUT_JSON",
        "html_out": "OUTPUT_HTML",
    }

    INPUT = "INPUT"
    REFERENCE = "REFERENCE"
    REFERENCE_FIELD = "REFERENCE_FIELD"
    PREDICTIONS = "PREDICTIONS"
    MODEL = "MODEL"
    PROBABILITIES = "PROBABILITIES"
    TITLE = "TITLE"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_JSON = "OUTPUT_JSON"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Land-cover map"), optional=True),
            help="The class raster to assess, with REFERENCE.",
        )
        self.addParameter(
            QgsProcessingParameterMapLayer(self.REFERENCE, self.tr("Reference (class raster or polygons)"), optional=True),
            help="A class raster on the same grid as the map, or polygons with REFERENCE_FIELD, rasterized on the map's grid.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.REFERENCE_FIELD, self.tr("Reference class field (polygons only)"), optional=True),
            help="The class field of reference polygons.",
        )
        self.addParameter(
            QgsProcessingParameterFile(self.PREDICTIONS, self.tr("Test predictions (CSV from Train classifier)"), extension="csv", optional=True),
            help="The CSV that Train classifier writes for its held-out pixels (the honest estimate when the map was trained on the same "
            "area).",
        )
        self.addParameter(
            QgsProcessingParameterFile(self.MODEL, self.tr("Model (class names and colours for the test predictions)"), extension="onnx", optional=True),
            help="Class names and colours for the test predictions; also for a map, the feature importance, training samples and "
            "cross-validation it stores.",
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.PROBABILITIES, self.tr("Class probabilities of the map (for ROC curves)"), optional=True),
            help="The Class probabilities raster of Classify, for the map's ROC curves; without it the report says ROC is unavailable.",
        )
        self.addParameter(QgsProcessingParameterString(self.TITLE, self.tr("Title"), optional=True), help="Empty: a description of the assessment.")
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT_HTML, self.tr("Report (HTML)"), self.tr("HTML files (*.html)")),
            help="A temporary file unless chosen.",
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT_JSON, self.tr("Report (JSON)"), self.tr("JSON files (*.json)")),
            help="A temporary file unless chosen.",
        )
        for key, label in (("OVERALL_ACCURACY", "Overall accuracy"), ("KAPPA", "Cohen's kappa"), ("WEIGHTED_F1", "Weighted F1")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        html = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        json_out = self.parameterAsFileOutput(parameters, self.OUTPUT_JSON, context)
        predictions = self.parameterAsFile(parameters, self.PREDICTIONS, context)
        title = self.parameterAsString(parameters, self.TITLE, context).strip() or None
        reference = self.parameterAsLayer(parameters, self.REFERENCE, context)
        if predictions:
            model = self.parameterAsFile(parameters, self.MODEL, context)
            metrics = report.predictions_report_file(predictions, json_out, html, model_path=model or None, title=title, monitor=monitor).document
        elif reference is not None and self.parameterAsRasterLayer(parameters, self.INPUT, context) is not None:
            uri = QgsProviderRegistry.instance().decodeUri(reference.providerType(), reference.source())
            metrics = report.accuracy_report_file(
                self.raster_path(parameters, self.INPUT, context),
                uri.get("path") or reference.source(),
                json_out,
                html,
                reference_field=self.parameterAsString(parameters, self.REFERENCE_FIELD, context) or None,
                reference_layer=uri.get("layerName") or None,
                model_path=self.parameterAsFile(parameters, self.MODEL, context) or None,
                probabilities_path=self.optional_raster_path(parameters, self.PROBABILITIES, context),
                title=title,
                monitor=monitor,
            ).document
        else:
            raise QgsProcessingException(
                f"{self.INPUT}: give a land-cover map and a {self.REFERENCE}, or the {self.PREDICTIONS} CSV written by Train classifier."
            )
        lead = metrics["assessment"]["lead"]
        feedback.pushInfo(f"{lead['label']}: {report.lead_value(lead)}. {lead['why']}")
        for warning in metrics["assessment"]["warnings"]:
            feedback.reportError(warning, fatalError=False)
        feedback.pushInfo(f"Overall accuracy {metrics['overall_accuracy']:.4f}, kappa {metrics['kappa']:.4f}, n = {metrics['n']}")
        return {
            self.OUTPUT_HTML: html,
            self.OUTPUT_JSON: json_out,
            "OVERALL_ACCURACY": metrics["overall_accuracy"],
            "KAPPA": metrics["kappa"],
            "WEIGHTED_F1": metrics["weighted_f1"],
        }
