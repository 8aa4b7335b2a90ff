"""Machine learning on time stacks: pixel classifiers (LightGBM exported to ONNX), segmentation networks
(``segmentation``, PyTorch), applying a model to a stack and cleaning the map.

The entry points below take paths and a ``Monitor`` and return a path, a class table or a small result;
importing them is cheap (lightgbm, onnx and torch are imported when a step runs).
"""

from .classify import classify_file
from .onnx_models import PixelModel, SegmentationModel, load_model
from .postprocess import SieveResult, reclassify_file, sieve_file
from .segmentation.pipeline import SegmentationResult, train_segmentation
from .segmentation.training import TrainConfig
from .train import ClassifierConfig, TrainResult, train_classifier

__all__ = [
    "ClassifierConfig",
    "PixelModel",
    "SegmentationModel",
    "SegmentationResult",
    "SieveResult",
    "TrainConfig",
    "TrainResult",
    "classify_file",
    "load_model",
    "reclassify_file",
    "sieve_file",
    "train_classifier",
    "train_segmentation",
]
