"""Train classifier: LightGBM on sampled pixels, exported to ONNX with its metadata."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
)

from ..lc_plugin import runs
from ..lc_plugin.core.errors import LandCoverError
from ..lc_plugin.ml import train
from ..lc_plugin.ml.spatial import DEFAULT_BLOCK_PX, DEFAULT_CV_FOLDS
from ..lc_plugin.reference.pairing import pair_stacks
from .base import LandCoverAlgorithm


class TrainAlgorithm(LandCoverAlgorithm):
    ALG_ID = "train"
    DISPLAY_NAME = "Train classifier"
    GROUP_ID = "training"
    ARGUMENTS = {
        "stack_paths": "INPUT",
        "reference_paths": "REFERENCE",
        "references": "REFERENCE",
        "mask_paths": "CLOUD_MASK",
        "block_px": "BLOCK_SIZE",
        "model_out": "OUTPUT_MODEL",
        "predictions_out": "OUTPUT_PREDICTIONS",
    }
    HELP = (
        "Samples reference pixels (stratified per class, seeded), builds the features (every band plus NDVI, NDWI and NDBI for every "
        "date) and trains a LightGBM multiclass model, as in the eo-learn land-cover example."
    )
    NOTES = (
        "The model also stores its feature importance (gain and split) and the training samples per class. Needs the Python packages "
        "lightgbm and onnxmltools.<br>"
        "Example: <code>qgis_process run landcover:train -- INPUT=i1.tif INPUT=i2.tif REFERENCE=r1.tif REFERENCE=r2.tif "
        "OUTPUT_MODEL=model.onnx</code>"
    )

    INPUT = "INPUT"
    REFERENCE = "REFERENCE"
    RUN_FOLDER = "RUN_FOLDER"
    SAMPLES_PER_CLASS = "SAMPLES_PER_CLASS"
    TEST_FRACTION = "TEST_FRACTION"
    SPLIT = "SPLIT"
    BLOCK_SIZE = "BLOCK_SIZE"
    CLOUD_MASK = "CLOUD_MASK"
    ALLOW_UNMASKED = "ALLOW_UNMASKED"
    DROP_EMPTY_CLASSES = "DROP_EMPTY_CLASSES"
    SEED = "SEED"
    N_ESTIMATORS = "N_ESTIMATORS"
    NUM_LEAVES = "NUM_LEAVES"
    LEARNING_RATE = "LEARNING_RATE"
    CV_FOLDS = "CV_FOLDS"
    OUTPUT_MODEL = "OUTPUT_MODEL"
    OUTPUT_PREDICTIONS = "OUTPUT_PREDICTIONS"
    TEST_OVERALL_ACCURACY = "TEST_OVERALL_ACCURACY"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterMultipleLayers(self.INPUT, self.tr("Interpolated time stacks"), QgsProcessing.TypeRaster, optional=True),
            help="All stacks must share dates and bands; one reference per stack, on the same grid. The lists may be in any order: each "
            "stack is paired with the reference of the same patch id (465_5079, in the file or folder name) or of the same name "
            "apart from a common prefix or suffix (north_i.tif ↔ north_r.tif); files that do not pair are an error. Optional when a "
            "run folder is given.",
        )
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.REFERENCE, self.tr("Reference rasters (paired with the stacks by patch id or name)"), QgsProcessing.TypeRaster, optional=True
            ),
            help="One per stack of INPUT, paired with it as described there.",
        )
        self.addParameter(
            QgsProcessingParameterFile(self.RUN_FOLDER, self.tr("Grid run folder"), behavior=QgsProcessingParameterFile.Folder, optional=True),
            help="Train on every patch prepared by <i>Run land-cover pipeline over a grid</i> with a reference (its interpolated stacks "
            "and reference rasters), in addition to INPUT/REFERENCE. Pixels are drawn patch by patch with per-patch quotas "
            "proportional to each patch's usable pixels of a class, so memory does not grow with the number of patches.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.SAMPLES_PER_CLASS, self.tr("Samples per class"), QgsProcessingParameterNumber.Integer, 5000, minValue=1),
            help="At most this many pixels per class.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.TEST_FRACTION, self.tr("Test fraction"), QgsProcessingParameterNumber.Double, 0.25, minValue=0.01, maxValue=0.9),
            help="Share held out for testing.",
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.SPLIT, self.tr("Split test set by"), list(train.SPLITS), defaultValue=2),
            help="<i>block</i>: square blocks of BLOCK_SIZE pixels, so test pixels are not neighbours of training pixels; <i>patch</i>: "
            "whole patches; <i>pixel</i>: optimistic, neighbouring pixels leak and the report says so.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.BLOCK_SIZE, self.tr("Block size (pixels)"), QgsProcessingParameterNumber.Integer, DEFAULT_BLOCK_PX, minValue=1),
            help="Side of the spatial blocks of the block split and of the cross-validation, in pixels of the stacks (at 10 m, 20 px are 200 m).",
        )
        self.addParameter(
            QgsProcessingParameterMultipleLayers(self.CLOUD_MASK, self.tr("Cloud mask stacks"), QgsProcessing.TypeRaster, optional=True),
            help="One cloud mask stack per stack, paired like the references; cloudy or no-data pixels are not sampled.",
        )
        self.addParameter(
            QgsProcessingParameterBoolean(self.ALLOW_UNMASKED, self.tr("Accept stacks never cloud-masked"), False),
            help="A stack that was never cloud-masked (not made by Temporal interpolation with a cloud mask, no CLOUD_MASK) is refused "
            "unless this is set; the model and its report then say so.",
        )
        self.addParameter(
            QgsProcessingParameterBoolean(self.DROP_EMPTY_CLASSES, self.tr("Drop classes without samples"), False),
            help="Otherwise a class of the reference with no usable pixel is an error.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.CV_FOLDS, self.tr("Cross-validation folds (0 = none)"), QgsProcessingParameterNumber.Integer, DEFAULT_CV_FOLDS, 0
            ),
            help="k-fold cross-validation stratified by spatial group (whole patches, or BLOCK_SIZE blocks when there are fewer patches "
            "than folds), skipped with a note when the samples fall in fewer groups than folds; mean ± std of overall accuracy and "
            "weighted F1 stored in the model for the accuracy report. 0 = none.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"), QgsProcessingParameterNumber.Integer, 42, minValue=0),
            advanced=True,
            help="The sampling, split and LightGBM seed.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.N_ESTIMATORS, self.tr("Number of trees"), QgsProcessingParameterNumber.Integer, 300, minValue=1),
            advanced=True,
            help="LightGBM's number of boosting rounds.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.NUM_LEAVES, self.tr("Leaves per tree"), QgsProcessingParameterNumber.Integer, 31, minValue=2),
            advanced=True,
            help="LightGBM's num_leaves.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.LEARNING_RATE, self.tr("Learning rate"), QgsProcessingParameterNumber.Double, 0.1, minValue=0.0001),
            advanced=True,
            help="LightGBM's learning rate.",
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT_MODEL, self.tr("Model (ONNX)"), self.tr("ONNX model (*.onnx)")),
            help="ONNX with class ids, names, colours, feature names, dates, bands and parameters in its metadata.",
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT_PREDICTIONS, self.tr("Test predictions (CSV)"), self.tr("CSV (*.csv)"), optional=True, createByDefault=True
            ),
            help="CSV of the held-out pixels for the accuracy report.",
        )
        self.addOutput(QgsProcessingOutputNumber(self.TEST_OVERALL_ACCURACY, self.tr("Test overall accuracy")))

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        model = self.output_path(parameters, self.OUTPUT_MODEL, context, (".onnx",))
        predictions = self.parameterAsFileOutput(parameters, self.OUTPUT_PREDICTIONS, context) or None
        stacks = self.raster_paths(parameters, self.INPUT, context, required=False)
        pairs = pair_stacks(stacks, self.raster_paths(parameters, self.REFERENCE, context, required=False))
        stacks, references = [s for s, _ in pairs], [r for _, r in pairs]
        run_folder = self.parameterAsFile(parameters, self.RUN_FOLDER, context)
        if run_folder:
            grid_stacks, grid_references = runs.training_pairs(run_folder)
            stacks, references = stacks + grid_stacks, references + grid_references
        elif not stacks:
            raise self.parameter_error(self.INPUT, "choose the interpolated time stacks to train on, or a grid run folder (RUN_FOLDER).")
        config = train.ClassifierConfig(
            samples_per_class=self.parameterAsInt(parameters, self.SAMPLES_PER_CLASS, context),
            test_fraction=self.parameterAsDouble(parameters, self.TEST_FRACTION, context),
            split=train.SPLITS[self.parameterAsEnum(parameters, self.SPLIT, context)],
            block_px=self.parameterAsInt(parameters, self.BLOCK_SIZE, context),
            allow_unmasked=self.parameterAsBoolean(parameters, self.ALLOW_UNMASKED, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            n_estimators=self.parameterAsInt(parameters, self.N_ESTIMATORS, context),
            num_leaves=self.parameterAsInt(parameters, self.NUM_LEAVES, context),
            learning_rate=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
            drop_empty_classes=self.parameterAsBoolean(parameters, self.DROP_EMPTY_CLASSES, context),
            cv_folds=self.parameterAsInt(parameters, self.CV_FOLDS, context),
        )
        summary = train.train_classifier(
            stacks,
            references,
            model,
            config,
            mask_paths=self.cloud_masks(parameters, context, stacks),
            predictions_out=predictions,
            monitor=monitor,
        )
        result = {self.OUTPUT_MODEL: model}
        accuracy = summary.test_overall_accuracy
        if accuracy is None:
            feedback.reportError(f"No pixel was held out for testing; raise {self.TEST_FRACTION} to get a test accuracy.", fatalError=False)
        else:
            result[self.TEST_OVERALL_ACCURACY] = float(accuracy)
            feedback.pushInfo(f"Trained on {summary.n_train} pixels; test overall accuracy {accuracy:.4f} on {summary.n_test} pixels.")
        cv = summary.cv
        if cv and "skipped" in cv:
            feedback.pushInfo(f"Cross-validation skipped: {cv['skipped']}")
        elif cv:
            feedback.pushInfo(
                f"{cv['k']}-fold cross-validation by {cv['group']}: overall accuracy {cv['overall_accuracy_mean']:.4f} ± "
                f"{cv['overall_accuracy_std']:.4f}, weighted F1 {cv['weighted_f1_mean']:.4f} ± {cv['weighted_f1_std']:.4f}."
            )
        if predictions:
            result[self.OUTPUT_PREDICTIONS] = predictions
        return result

    def cloud_masks(self, parameters, context, stacks: list[str]) -> list[str | None] | None:
        """The cloud mask of each stack (paired like the references: by patch id or name), None for stacks without one
        (those of a run folder are already masked); None when no mask is given."""
        masks = self.raster_paths(parameters, self.CLOUD_MASK, context, required=False)
        if not masks:
            return None
        inputs = self.raster_paths(parameters, self.INPUT, context, required=False)
        try:
            by_stack = dict(pair_stacks(inputs, masks))
        except LandCoverError as exc:
            raise self.parameter_error(self.CLOUD_MASK, f"give one cloud mask stack per stack of {self.INPUT}: {exc}") from exc
        return [by_stack.get(stack) for stack in stacks]
