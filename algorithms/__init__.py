"""One Processing algorithm per pipeline step; each only translates to and from the engine."""

from .accuracy_report import AccuracyReportAlgorithm
from .area_estimate import AreaEstimateAlgorithm
from .build_stack import BuildStackAlgorithm
from .classify import ClassifyAlgorithm
from .cloud_masks import CloudMasksAlgorithm
from .create_grid import CreateGridAlgorithm
from .download import DownloadAlgorithm
from .download_olci import DownloadOlciAlgorithm
from .export_dataset import ExportDatasetAlgorithm
from .filter_scenes import FilterScenesAlgorithm
from .import_products import ImportProductsAlgorithm
from .interpolate import InterpolateAlgorithm
from .mosaic import MosaicAlgorithm
from .rasterize_reference import RasterizeReferenceAlgorithm
from .reclassify import ReclassifyAlgorithm
from .run_grid import RunGridAlgorithm
from .sample_design import SampleDesignAlgorithm
from .sieve import SieveAlgorithm
from .split_stack import SplitStackAlgorithm
from .train import TrainAlgorithm
from .train_segmentation import TrainSegmentationAlgorithm
from .valid_count import ValidCountAlgorithm

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
