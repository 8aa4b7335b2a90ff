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
        "Compares a land-cover map with reference data and writes the confusion matrix (counts, row- and column-normalised), "
        "overall accuracy, Cohen's kappa, per-class precision, recall and F1, macro and weighted F1, as JSON and as an "
        "HTML page with the matrices drawn as pictures.<br>"
        "Either <b>Land-cover map</b> (INPUT) + <b>Reference</b> (REFERENCE: a class raster on the same grid, or "
        "polygons with <b>Reference class field</b> REFERENCE_FIELD, rasterized on the map's grid), or <b>Test "
        "predictions</b> (PREDICTIONS): the CSV that Train classifier writes for its held-out pixels (the honest "
        "estimate when the map was trained on the same area), with the <b>Model</b> (MODEL) for class names and colours. "
        "All are optional one by one; by default nothing is chosen and one of the two combinations is required.<br>"
        "Pixels that are no data (0) in either are ignored.<br>"
        "The report also draws the column-normalised (precision) matrix; from test predictions, one-vs-rest ROC curves "
        "and AUCs from the p_&lt;id&gt; probabilities, and for a map from the <b>Class probabilities</b> raster of Classify "
        "(PROBABILITIES, optional; without it the report says ROC is unavailable); with the <b>Model</b> "
        "(also for a map), the feature importance (gain, split) as a band × date heat map, the training samples per "
        "class and the cross-validation of Train classifier. The confusion matrix is also written as "
        "&lt;JSON name&gt;_confusion.csv.<br>"
        "The report leads with the estimate that does not leak (held-out blocks or patches, else the model's spatial "
        "cross-validation) and says why any other figure is not it; it states the sampling, split, sample sizes and "
        "reference (methods paragraph), prints the error matrix with row and column totals and overall, user's and "
        "producer's accuracy with 95 % confidence intervals (Wilson; for a reference of points, e.g. from Sample design, "
        "the Olofsson et al. 2014 estimators of a sample stratified by map class), n/a where undefined, and warns when the "
        "evaluated pixels lie in the blocks the model was trained on (give the MODEL). Every figure is also written as "
        "SVG beside the HTML. <b>Title</b> (TITLE, optional, default a description of the assessment).<br>"
        "Outputs: <b>Report (HTML)</b> (OUTPUT_HTML) and <b>Report (JSON)</b> (OUTPUT_JSON), by default temporary files; "
        "OVERALL_ACCURACY, KAPPA and WEIGHTED_F1 as numbers.<br>"
        "Example: <code>qgis_process run landcover:accuracyreport -- INPUT=map.tif REFERENCE=ref.tif "
        "OUTPUT_HTML=report.html OUTPUT_JSON=report.json</code>"
    )

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
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Land-cover map"), optional=True))
        self.addParameter(QgsProcessingParameterMapLayer(self.REFERENCE, self.tr("Reference (class raster or polygons)"), optional=True))
        self.addParameter(QgsProcessingParameterString(self.REFERENCE_FIELD, self.tr("Reference class field (polygons only)"), optional=True))
        self.addParameter(QgsProcessingParameterFile(self.PREDICTIONS, self.tr("Test predictions (CSV from Train classifier)"), extension="csv", optional=True))
        self.addParameter(
            QgsProcessingParameterFile(self.MODEL, self.tr("Model (class names and colours for the test predictions)"), extension="onnx", optional=True)
        )
        self.addParameter(QgsProcessingParameterRasterLayer(self.PROBABILITIES, self.tr("Class probabilities of the map (for ROC curves)"), optional=True))
        self.addParameter(QgsProcessingParameterString(self.TITLE, self.tr("Title"), optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT_HTML, self.tr("Report (HTML)"), self.tr("HTML files (*.html)")))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT_JSON, self.tr("Report (JSON)"), self.tr("JSON files (*.json)")))
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
            metrics = report.predictions_report_file(predictions, json_out, html, model_path=model or None, title=title, monitor=monitor)
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
            )
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
