"""Classify: apply an ONNX land-cover model to an interpolated time stack, block by block."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..lc_plugin.ml import classify
from .base import LandCoverAlgorithm


class ClassifyAlgorithm(LandCoverAlgorithm):
    ALG_ID = "classify"
    DISPLAY_NAME = "Classify"
    GROUP_ID = "classification"
    ARGUMENTS = {
        "model_path": "MODEL",
        "stack_path": "INPUT",
        "second_path": "INPUT_2",
        "mask_path": "CLOUD_MASK",
        "out_path": "OUTPUT",
        "probabilities_out": "OUTPUT_PROBABILITIES",
        "overlap": "MODEL",
    }
    HELP = (
        "Classifies every pixel of an interpolated time stack with a model trained by Train classifier or Train segmentation model (ONNX, "
        "run with onnxruntime), block by block so memory stays bounded. A segmentation network runs on overlapping tiles of its training "
        "size whose probabilities are blended with a taper window (no seams), on a CUDA GPU when onnxruntime has one."
    )
    NOTES = (
        "Needs the Python package onnxruntime.<br>"
        "Example: <code>qgis_process run landcover:classify -- INPUT=i.tif MODEL=model.onnx OUTPUT=map.tif</code>; with a two-input "
        "network: <code>qgis_process run landcover:classify -- INPUT=i.tif INPUT_2=olci.tif MODEL=s2s3.onnx OUTPUT=map.tif</code>"
    )

    INPUT = "INPUT"
    INPUT_2 = "INPUT_2"
    MODEL = "MODEL"
    BLOCK_ROWS = "BLOCK_ROWS"
    CLOUD_MASK = "CLOUD_MASK"
    ALLOW_UNMASKED = "ALLOW_UNMASKED"
    OUTPUT = "OUTPUT"
    OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Interpolated time stack")),
            help="Must have the bands and dates the model was trained on; otherwise the algorithm refuses and says what differs.",
        )
        self.addParameter(QgsProcessingParameterFile(self.MODEL, self.tr("Model (ONNX)"), extension="onnx"), help="The .onnx file.")
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.INPUT_2, self.tr("Second stack (two-input networks)"), optional=True),
            help="For a two-input network (trained with a second modality), that modality's stack at its own resolution in the same CRS, "
            "e.g. the OLCI stack of Sentinel-3 OLCI time series (landcover:downloadolci); its dates, bands and resolution must be "
            "the model's, else the algorithm refuses and says what differs.",
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.CLOUD_MASK, self.tr("Cloud mask stack"), optional=True),
            help="A cloud mask stack of the stack's dates (or one date); pixels cloudy or without data on any of its dates become no data "
            "in the map.",
        )
        self.addParameter(
            QgsProcessingParameterBoolean(self.ALLOW_UNMASKED, self.tr("Accept a stack never cloud-masked"), False),
            help="A stack that was never cloud-masked (not made by Temporal interpolation with a cloud mask, no CLOUD_MASK) is refused "
            "unless this is set; the map's metadata then says so.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.BLOCK_ROWS, self.tr("Block rows"), QgsProcessingParameterNumber.Integer, 256, minValue=1),
            advanced=True,
            help="Rows per block (pixel models).",
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Land-cover map")),
            help="UInt8, 0 = no data, loaded with the model's class colours and names.",
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT_PROBABILITIES, self.tr("Class probabilities"), optional=True, createByDefault=False),
            help="Not written unless chosen: one band per class, loaded with a pseudo-colour ramp.",
        )

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        out = self.output_path(parameters, self.OUTPUT, context, (".tif", ".tiff"))
        probabilities = self.output_path(parameters, self.OUTPUT_PROBABILITIES, context, (".tif", ".tiff")) or None
        classes = classify.classify_file(
            self.parameterAsFile(parameters, self.MODEL, context),
            self.raster_path(parameters, self.INPUT, context),
            out,
            second_path=self.optional_raster_path(parameters, self.INPUT_2, context),
            probabilities_out=probabilities,
            block_rows=self.parameterAsInt(parameters, self.BLOCK_ROWS, context),
            mask_path=self.optional_raster_path(parameters, self.CLOUD_MASK, context),
            allow_unmasked=self.parameterAsBoolean(parameters, self.ALLOW_UNMASKED, context),
            monitor=monitor,
        )
        feedback.pushInfo("Classes: " + ", ".join(f"{c.id} {c.name}" for c in classes))
        self.style_as_classes(context, out, above=probabilities)
        result = {self.OUTPUT: out}
        if probabilities:
            result[self.OUTPUT_PROBABILITIES] = probabilities
            self.style_output(context, probabilities, hidden=True, below=out)  # the ramp under the map, unchecked
        return result
