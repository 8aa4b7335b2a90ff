"""Train segmentation model (deep learning): a PyTorch network on exported tiles, saved as ONNX."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..lc_plugin.core import deps
from ..lc_plugin.ml.segmentation import ARCHITECTURES
from ..lc_plugin.ml.segmentation.training import DEVICES, TrainConfig, load_config
from .base import LandCoverAlgorithm


def torch_missing() -> str:
    return (
        "Training a segmentation model needs PyTorch, which is not installed in the Python that QGIS uses. "
        "Install the CPU build with `make setup-dl` in a checkout of the plugin, or: python3 -m pip install --target "
        f"{deps.INSTALL_FOLDER} torch==2.13.0 (classifying with a trained model needs only onnxruntime)."
    )


class TrainSegmentationAlgorithm(LandCoverAlgorithm):
    ALG_ID = "trainsegmentation"
    DISPLAY_NAME = "Train segmentation model (deep learning)"
    GROUP_ID = "training"
    # Settings only a configuration file sets are reported against CONFIG.
    ARGUMENTS = {
        "dataset_path": "DATASET",
        "model_out": "OUTPUT_MODEL",
        "report_out": "OUTPUT_REPORT",
        "width": "CONFIG",
        "depth": "CONFIG",
        "lr_patience": "CONFIG",
        "lr_factor": "CONFIG",
    }
    HELP = (
        "Trains a convolutional segmentation network with PyTorch on the tiles of a training data set and saves it as an ONNX model that "
        "the <b>Classify</b> algorithm applies like a LightGBM model (tiled, with blended overlaps)."
    )
    NOTES = (
        "The model keeps the weights of the epoch with the lowest validation loss. Unlabelled pixels and pixels without data never enter "
        "the loss. Needs PyTorch (<code>make setup-dl</code>).<br>"
        "Example: <code>qgis_process run landcover:trainsegmentation -- DATASET=tiles.zarr ARCHITECTURE=0 EPOCHS=30 "
        "OUTPUT_MODEL=tfcn.onnx OUTPUT_REPORT=tfcn.html</code>"
    )

    DATASET = "DATASET"
    ARCHITECTURE = "ARCHITECTURE"
    EPOCHS = "EPOCHS"
    BATCH_SIZE = "BATCH_SIZE"
    LEARNING_RATE = "LEARNING_RATE"
    PATIENCE = "PATIENCE"
    TEST_FOLD = "TEST_FOLD"
    CLASS_WEIGHTS = "CLASS_WEIGHTS"
    SECOND_SENSOR = "SECOND_SENSOR"
    SEED = "SEED"
    DEVICE = "DEVICE"
    CONFIG = "CONFIG"
    OUTPUT_MODEL = "OUTPUT_MODEL"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    TEST_MIOU = "TEST_MIOU"
    TEST_OVERALL_ACCURACY = "TEST_OVERALL_ACCURACY"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        defaults = TrainConfig()
        number = QgsProcessingParameterNumber
        self.addParameter(
            QgsProcessingParameterFile(self.DATASET, self.tr("Training data set (zarr folder)"), behavior=QgsProcessingParameterFile.Folder),
            help="The zarr folder written by Export training tiles (landcover:exportdataset).",
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.ARCHITECTURE, self.tr("Architecture"), list(ARCHITECTURES), defaultValue=0),
            help="<i>tfcn</i>: the temporal fully-convolutional network of eo-learn's example (3-D convolutions over time in the encoder, "
            "a U-Net decoder); <i>unet</i> on the time-flattened bands; <i>segnet</i> (unpooling at the pooling switches); "
            "<i>resunet</i> (ResNet-block encoder, U-Net decoder).",
        )
        self.addParameter(number(self.EPOCHS, self.tr("Epochs"), number.Integer, defaults.epochs, minValue=1), help="Passes over the training tiles at most.")
        self.addParameter(number(self.BATCH_SIZE, self.tr("Batch size (tiles)"), number.Integer, defaults.batch_size, minValue=1), help="Tiles per batch.")
        self.addParameter(
            number(self.LEARNING_RATE, self.tr("Learning rate"), number.Double, defaults.learning_rate, minValue=1e-7),
            help="Adam's; multiplied by 0.5 after 3 epochs without a better validation loss.",
        )
        self.addParameter(
            number(self.PATIENCE, self.tr("Early-stopping patience (epochs)"), number.Integer, defaults.patience, minValue=1),
            help="Epochs without a better validation loss before training stops.",
        )
        self.addParameter(
            number(self.TEST_FOLD, self.tr("Test fold"), number.Integer, defaults.test_fold, minValue=0),
            help="The fold held out for the report; the next fold validates (early stopping), the others train.",
        )
        self.addParameter(
            QgsProcessingParameterBoolean(self.CLASS_WEIGHTS, self.tr("Weight classes by inverse frequency"), defaults.class_weights),
            help="inverse-frequency weights in the cross-entropy, for unbalanced classes.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.SECOND_SENSOR, self.tr("Second modality (sensor of the data set; empty: none)"), optional=True),
            help="The name of a second sensor group of the data set (e.g. <i>S3OLCI</i>, exported with EXTRA_STACKS at its own 300 m "
            "resolution); the network (tfcn, unet or resunet) then gets a second input branch fused at the bottleneck, and the ONNX "
            "model has two inputs (<code>input</code>, <code>input_2</code>, described in its <code>lc_second_input</code> "
            "metadata); Classify then needs that sensor's stack as INPUT_2. Empty: none.",
        )
        self.addParameter(
            number(self.SEED, self.tr("Random seed"), number.Integer, defaults.seed),
            advanced=True,
            help="Two runs on the CPU with the same seed give the same model.",
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.DEVICE, self.tr("Device"), list(DEVICES), defaultValue=0),
            advanced=True,
            help="<i>auto</i>: CUDA when PyTorch sees a GPU, else the CPU.",
        )
        self.addParameter(
            QgsProcessingParameterFile(self.CONFIG, self.tr("Configuration file (JSON/YAML, overrides the fields)"), optional=True),
            advanced=True,
            help="JSON or YAML with any of architecture, width, depth, epochs, batch_size, learning_rate, patience, lr_patience, "
            "lr_factor, test_fold, validation_fold, class_weights, seed, device; its values override the fields above, as Hugin's "
            "configuration files did.",
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT_MODEL, self.tr("Model (ONNX)"), self.tr("ONNX model (*.onnx)")),
            help="ONNX with classes, colours, dates, bands, tile size, normalisation, architecture, settings and training history in its "
            "metadata.",
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT_REPORT, self.tr("Report (HTML)"), self.tr("HTML (*.html)"), optional=True, createByDefault=True),
            help="HTML: training curves of loss and MIoU per epoch, then the test fold's accuracy, kappa, F1, IoU/MIoU, precision, "
            "recall, confusion matrices and ROC curves; a JSON twin beside it.",
        )
        self.addOutput(QgsProcessingOutputNumber(self.TEST_MIOU, self.tr("Test MIoU")))
        self.addOutput(QgsProcessingOutputNumber(self.TEST_OVERALL_ACCURACY, self.tr("Test overall accuracy")))

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            raise QgsProcessingException(torch_missing()) from exc
        from ..lc_plugin.ml.segmentation.pipeline import train_segmentation

        config = TrainConfig(
            architecture=ARCHITECTURES[self.parameterAsEnum(parameters, self.ARCHITECTURE, context)],
            epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            learning_rate=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
            patience=self.parameterAsInt(parameters, self.PATIENCE, context),
            test_fold=self.parameterAsInt(parameters, self.TEST_FOLD, context),
            class_weights=self.parameterAsBoolean(parameters, self.CLASS_WEIGHTS, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
        )
        config_path = self.parameterAsFile(parameters, self.CONFIG, context)
        if config_path:
            config = load_config(config_path, base=config)
            feedback.pushInfo(f"Settings after {config_path}: {config.to_dict()}")
        model = self.output_path(parameters, self.OUTPUT_MODEL, context, (".onnx",))
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context) or None
        second = self.parameterAsString(parameters, self.SECOND_SENSOR, context).strip() or None
        summary = train_segmentation(self.parameterAsFile(parameters, self.DATASET, context), model, report, config, second_sensor=second, monitor=monitor)
        feedback.pushInfo(
            f"{config.architecture}: {summary.epochs} epochs in {summary.seconds:.1f} s on {summary.device}, best epoch "
            f"{summary.best_epoch} (validation MIoU {summary.best_val_miou:.4f})."
        )
        result = {self.OUTPUT_MODEL: model}
        if summary.test_miou is not None:
            result[self.TEST_MIOU] = float(summary.test_miou)
            result[self.TEST_OVERALL_ACCURACY] = float(summary.test_overall_accuracy)
            feedback.pushInfo(f"Test fold: overall accuracy {summary.test_overall_accuracy:.4f}, MIoU {summary.test_miou:.4f}.")
        if summary.report:
            result[self.OUTPUT_REPORT] = summary.report
        return result
