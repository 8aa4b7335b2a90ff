"""Run the whole per-patch chain over a grid (sequential, process pool or Dask), then mosaic."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputHtml,
    QgsProcessingOutputNumber,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..lc_plugin import runs
from ..lc_plugin.core import legends
from ..lc_plugin.core.redaction import has_redaction, redact_url
from ..lc_plugin.reference import rasterize as reference
from .base import LandCoverAlgorithm
from .params import END_DATE, START_DATE, add_date_parameters, bands_parameter, date_range
from .rasterize import ZERO_CHOICES_LABELS


class RunGridAlgorithm(LandCoverAlgorithm):
    ALG_ID = "rungrid"
    DISPLAY_NAME = "Run land-cover pipeline over a grid"
    GROUP_ID = "classification"
    HELP = (
        "Runs download → cloud masks → filter → interpolate → (rasterize reference) → classify for every patch of a grid, one subfolder "
        "per patch in the run folder, then mosaics the class maps into a VRT and a Cloud-Optimized GeoTIFF and writes a run report (HTML "
        "+ JSON: status, duration and error of each patch, parameters, versions). A patch that fails does not stop the others; rerunning "
        "the same run folder skips the patches already done."
    )
    NOTES = (
        "With a pixel model each patch runs in one pass after its download: cloud masks, filter, interpolation, features and "
        "classification window by window on all cores, writing only the class map (and the reference raster); the map is the one the "
        "separate steps write with the same settings (KEEP_INTERMEDIATES runs the separate steps instead).<br>"
        "Outputs besides RUN_FOLDER: the mosaic COG (OUTPUT_MOSAIC), the report (OUTPUT_REPORT), DONE and FAILED counts.<br>"
        "Example: <code>qgis_process run landcover:rungrid -- GRID=grid.gpkg MODEL=model.onnx START_DATE=2017-01-01 END_DATE=2017-12-31 "
        "EXECUTOR=1 WORKERS=4 RUN_FOLDER=run</code>"
    )

    GRID = "GRID"
    MODEL = "MODEL"
    PARAMETERS_FILE = "PARAMETERS_FILE"
    STAC_URL = "STAC_URL"
    COLLECTION = "COLLECTION"
    BANDS = "BANDS"
    MAX_CLOUD = "MAX_CLOUD"
    CLOUD_METHOD = "CLOUD_METHOD"
    MIN_VALID_FRACTION = "MIN_VALID_FRACTION"
    STEP_DAYS = "STEP_DAYS"
    PROCESSING_RESOLUTION = "PROCESSING_RESOLUTION"
    KEEP_INTERMEDIATES = "KEEP_INTERMEDIATES"
    REFERENCE = "REFERENCE"
    REFERENCE_FIELD = "REFERENCE_FIELD"
    REFERENCE_ZERO_ID = "REFERENCE_ZERO_ID"
    REFERENCE_LEGEND = "REFERENCE_LEGEND"
    EXECUTOR = "EXECUTOR"
    WORKERS = "WORKERS"
    SCHEDULER = "SCHEDULER"
    ALLOW_FAILURES = "ALLOW_FAILURES"
    RUN_FOLDER = "RUN_FOLDER"
    OUTPUT_MOSAIC = "OUTPUT_MOSAIC"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    DONE = "DONE"
    FAILED = "FAILED"
    # Download errors of a patch, and the grid read by runs.grid.read_patches inside run_batch.
    ARGUMENTS = {"start": "START_DATE", "end": "END_DATE", "grid_path": "GRID", "layer": "GRID"}

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        defaults = runs.BatchParameters(grid="", start="", end="")
        self.addParameter(
            QgsProcessingParameterFeatureSource(self.GRID, self.tr("Patch grid"), [QgsProcessing.TypeVectorPolygon]),
            help="From Create patch grid.",
        )
        self.addParameter(
            QgsProcessingParameterFile(self.MODEL, self.tr("Model (ONNX)"), extension="onnx", optional=True),
            help="ONNX model from Train. Without a model the run only prepares every patch (stacks and, with a reference, reference "
            "rasters): train on the whole grid with Train's RUN_FOLDER, then run again with the model, which reuses the prepared "
            "patches and only classifies.",
        )
        self.addParameter(
            QgsProcessingParameterFile(self.PARAMETERS_FILE, self.tr("Parameters file (JSON)"), extension="json", optional=True),
            help="A parameters.json of an earlier run, whose values replace the ones below (grid and model excepted).",
        )
        add_date_parameters(
            self,
            optional=True,
            start_help="YYYY-MM-DD, required unless a parameters file is given.",
            end_help="YYYY-MM-DD, inclusive, required unless a parameters file is given.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.STAC_URL, self.tr("STAC API URL"), defaults.stac_url),
            help="The STAC API searched for scenes (the default is Earth Search).",
        )
        self.addParameter(QgsProcessingParameterString(self.COLLECTION, self.tr("Collection"), defaults.collection), help="The STAC collection searched.")
        self.addParameter(
            bands_parameter(self.BANDS, self.tr("Bands"), defaults.bands),
            help="The Sentinel-2 bands downloaded (in qgis_process BANDS=B02,B03,B04).",
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_CLOUD, self.tr("Max scene cloud cover (%)"), QgsProcessingParameterNumber.Double, defaults.max_cloud, minValue=0, maxValue=100
            ),
            help="The catalogue's eo:cloud_cover filter.",
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.CLOUD_METHOD, self.tr("Cloud mask method"), runs.CLOUD_METHODS, defaultValue=0),
            help="As in Cloud masks: <i>auto</i> picks s2cloudless when its bands are there, else SCL.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MIN_VALID_FRACTION, self.tr("Min valid fraction"), QgsProcessingParameterNumber.Double, defaults.min_valid_fraction, minValue=0, maxValue=1
            ),
            help="Dates with a smaller fraction of clear pixels are dropped, as in Filter cloudy scenes.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.STEP_DAYS, self.tr("Interpolation step (days)"), QgsProcessingParameterNumber.Integer, defaults.step_days, minValue=1
            ),
            help="The interpolation step, as in Temporal interpolation.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.PROCESSING_RESOLUTION,
                self.tr("Cloud mask processing resolution (m; 0 = full)"),
                QgsProcessingParameterNumber.Double,
                defaults.cloud_resolution,
                minValue=0,
            ),
            help="Metres; s2cloudless runs on block means of this size (98.4 % of the pixels agree with the 10 m masks on a real "
            "broken-cloud scene, for ~10× less model time; see Cloud masks).",
        )
        self.addParameter(
            QgsProcessingParameterBoolean(self.KEEP_INTERMEDIATES, self.tr("Keep intermediate files"), False),
            help="Runs the separate steps instead of the one pass and keeps their files (cloud masks, the filtered stack as a VRT, the "
            "interpolated stack).",
        )
        polygons = [QgsProcessing.TypeVectorPolygon]
        self.addParameter(
            QgsProcessingParameterFeatureSource(self.REFERENCE, self.tr("Reference polygons"), polygons, optional=True),
            help="Rasterized per patch when given.",
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.REFERENCE_FIELD, self.tr("Reference class field (integer id or text)"), parentLayerParameterName=self.REFERENCE, optional=True
            ),
            help="The class field of the reference, as in <i>Rasterize reference</i>.",
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.REFERENCE_ZERO_ID, self.tr("Class id 0 in the reference field"), ZERO_CHOICES_LABELS, defaultValue=0),
            help="What a class id 0 in the reference field means, as in <i>Rasterize reference</i>.",
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.REFERENCE_LEGEND, self.tr("Reference legend"), list(legends.LEGEND_LABELS), defaultValue=0),
            help="A built-in legend for the reference classes, as in <i>Rasterize reference</i>.",
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.EXECUTOR, self.tr("Executor"), runs.EXECUTORS, defaultValue=0),
            help="How the patches run: one after the other, in local processes or on a Dask cluster.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.WORKERS, self.tr("Workers"), QgsProcessingParameterNumber.Integer, 2, minValue=1),
            help="Patches run at the same time (local processes or local Dask cluster).",
        )
        self.addParameter(
            QgsProcessingParameterString(self.SCHEDULER, self.tr("Dask scheduler address (empty: local cluster)"), "", optional=True),
            help="Empty: a local Dask cluster of WORKERS processes; the workers must see the grid, model and run folder at the same "
            "paths.",
        )
        self.addParameter(
            QgsProcessingParameterBoolean(self.ALLOW_FAILURES, self.tr("Accept failed patches (end normally)"), False),
            help="When patches fail the run ends with an error (exit code 1) after writing the report and the mosaic of the others; when "
            "set it ends normally.",
        )
        self.addParameter(
            QgsProcessingParameterFolderDestination(self.RUN_FOLDER, self.tr("Run folder")),
            help="One subfolder per patch, the mosaic and the run report.",
        )
        self.addOutput(QgsProcessingOutputRasterLayer(self.OUTPUT_MOSAIC, self.tr("Land-cover mosaic")))
        self.addOutput(QgsProcessingOutputHtml(self.OUTPUT_REPORT, self.tr("Run report")))
        self.addOutput(QgsProcessingOutputNumber(self.DONE, self.tr("Patches done")))
        self.addOutput(QgsProcessingOutputNumber(self.FAILED, self.tr("Patches failed")))

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        grid, layer = self.vector_path(parameters, self.GRID, context, feedback)
        model = self.parameterAsFile(parameters, self.MODEL, context) or None
        file = self.parameterAsFile(parameters, self.PARAMETERS_FILE, context)
        if file:
            params = runs.BatchParameters.load(file)
            params.grid, params.grid_layer, params.model = grid, layer, model
            if has_redaction(params.stac_url):  # saved without its secret: take it from STAC_URL
                given = self.parameterAsString(parameters, self.STAC_URL, context).strip()
                if redact_url(given) != params.stac_url:
                    raise QgsProcessingException(
                        f"{self.STAC_URL}: the parameters file holds the STAC URL without its credentials ({params.stac_url}); "
                        "give the full URL in STAC_URL."
                    )
                params.stac_url = given
        else:
            start, end = date_range(self, parameters, context)
            if start is None or end is None:
                raise QgsProcessingException(f"{START_DATE if start is None else END_DATE}: give the period (YYYY-MM-DD) or a parameters file.")
            bands = self.parameterAsEnumStrings(parameters, self.BANDS, context)
            params = runs.BatchParameters(
                grid=grid,
                grid_layer=layer,
                model=model,
                start=start.isoformat(),
                end=end.isoformat(),
                stac_url=self.parameterAsString(parameters, self.STAC_URL, context).strip(),
                collection=self.parameterAsString(parameters, self.COLLECTION, context).strip(),
                bands=bands,
                max_cloud=self.parameterAsDouble(parameters, self.MAX_CLOUD, context),
                cloud_method=runs.CLOUD_METHODS[self.parameterAsEnum(parameters, self.CLOUD_METHOD, context)],
                min_valid_fraction=self.parameterAsDouble(parameters, self.MIN_VALID_FRACTION, context),
                step_days=self.parameterAsInt(parameters, self.STEP_DAYS, context),
                cloud_resolution=self.parameterAsDouble(parameters, self.PROCESSING_RESOLUTION, context),
                reference=self.reference_file(parameters, context, feedback),
                reference_field=self.parameterAsString(parameters, self.REFERENCE_FIELD, context).strip() or None,
                reference_zero=reference.ZERO_CHOICES[self.parameterAsEnum(parameters, self.REFERENCE_ZERO_ID, context)],
                reference_legend=legends.LEGEND_CHOICES[self.parameterAsEnum(parameters, self.REFERENCE_LEGEND, context)],
            )
        params.keep_intermediates = self.parameterAsBool(parameters, self.KEEP_INTERMEDIATES, context)
        run_folder = self.parameterAsString(parameters, self.RUN_FOLDER, context)
        result = runs.run_batch(
            params,
            run_folder,
            executor=runs.EXECUTORS[self.parameterAsEnum(parameters, self.EXECUTOR, context)],
            workers=self.parameterAsInt(parameters, self.WORKERS, context),
            scheduler=self.parameterAsString(parameters, self.SCHEDULER, context).strip() or None,
            monitor=monitor,
        )
        for pid in result.failed:
            feedback.reportError(f"Patch {pid} failed; see {result.report_html}")
        if result.failed and not self.parameterAsBool(parameters, self.ALLOW_FAILURES, context):
            raise QgsProcessingException(
                f"{len(result.failed)} of {len(result.records)} patches failed (see {result.report_html}); the others are kept "
                f"in {run_folder} and a rerun resumes from them. Set {self.ALLOW_FAILURES}=true to accept failed patches."
            )
        out = {self.RUN_FOLDER: run_folder, self.OUTPUT_REPORT: result.report_html, self.DONE: len(result.done), self.FAILED: len(result.failed)}
        if result.mosaic and result.mosaic.cog and os.path.isfile(result.mosaic.cog):
            out[self.OUTPUT_MOSAIC] = result.mosaic.cog
            self.load_output(context, result.mosaic.cog, self.tr("Land-cover mosaic"), self.OUTPUT_MOSAIC)
            self.style_as_classes(context, result.mosaic.cog)
        return out

    def reference_file(self, parameters, context, feedback) -> str | None:
        """The reference as a file every worker can open (the run reads its only layer, so one of several is refused)."""
        if self.parameterAsSource(parameters, self.REFERENCE, context) is None:
            return None
        path, layer = self.vector_path(parameters, self.REFERENCE, context, feedback)
        if layer:
            from osgeo import ogr

            source = ogr.Open(path)
            if source is not None and source.GetLayerCount() > 1:
                raise QgsProcessingException(f"{self.REFERENCE}: {path} holds several layers; save the reference layer '{layer}' to a file of its own.")
        return path
