"""One Processing algorithm per pipeline step; each only translates to and from the engine."""

from .area_estimate import AreaEstimateAlgorithm
from .batch import RunGridAlgorithm
from .buildstack import BuildStackAlgorithm
from .classify import ClassifyAlgorithm
from .clouds import CloudMasksAlgorithm
from .coverage import ValidCountAlgorithm
from .dataset import ExportDatasetAlgorithm
from .download import DownloadAlgorithm
from .grid import CreateGridAlgorithm
from .importer import ImportProductsAlgorithm
from .interpolate import InterpolateAlgorithm
from .mosaic import MosaicAlgorithm
from .olci import DownloadOlciAlgorithm
from .rasterize import RasterizeReferenceAlgorithm
from .reclassify import ReclassifyAlgorithm
from .report import AccuracyReportAlgorithm
from .sample_design import SampleDesignAlgorithm
from .scenes import FilterScenesAlgorithm
from .sieve import SieveAlgorithm
from .split import SplitStackAlgorithm
from .train import TrainAlgorithm
from .train_segmentation import TrainSegmentationAlgorithm

ALGORITHMS = [
    CreateGridAlgorithm,
    DownloadAlgorithm,
    ImportProductsAlgorithm,
    BuildStackAlgorithm,
    DownloadOlciAlgorithm,
    CloudMasksAlgorithm,
    FilterScenesAlgorithm,
    InterpolateAlgorithm,
    RasterizeReferenceAlgorithm,
    TrainAlgorithm,
    ExportDatasetAlgorithm,
    TrainSegmentationAlgorithm,
    ClassifyAlgorithm,
    SieveAlgorithm,
    ReclassifyAlgorithm,
    AccuracyReportAlgorithm,
    SampleDesignAlgorithm,
    AreaEstimateAlgorithm,
    MosaicAlgorithm,
    SplitStackAlgorithm,
    ValidCountAlgorithm,
    RunGridAlgorithm,
]
