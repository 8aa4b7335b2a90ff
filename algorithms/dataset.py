"""Export training tiles: stacks + reference rasters → zarr store for deep-learning segmentation."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..lc_plugin.reference import dataset
from .base import LandCoverAlgorithm


class ExportDatasetAlgorithm(LandCoverAlgorithm):
    ALG_ID = "exportdataset"
    DISPLAY_NAME = "Export training tiles (zarr)"
    GROUP_ID = "training"
    ARGUMENTS = {
        "stack_paths": "INPUT",
        "reference_paths": "REFERENCE",
        "output_path": "OUTPUT",
        "n_folds": "FOLDS",
        "extra_stacks": "EXTRA_STACKS",
    }
    HELP = (
        "Cuts time stacks and their reference rasters into square tiles for training a deep-learning segmentation model (e.g. a temporal "
        "U-Net) and writes them to a zarr store laid out as area / year / sensor, with the labels, valid-pixel masks, each tile's "
        "georeferencing, the class list and a k-fold id per tile."
    )
    NOTES = (
        "Also returns the number of tiles (N_TILES). Needs the Python package zarr.<br>"
        "Example: <code>qgis_process run landcover:exportdataset -- INPUT=a/interpolated.tif REFERENCE=a/reference.tif TILE_SIZE=64 "
        "FOLDS=5 OUTPUT=tiles.zarr</code>"
    )

    INPUT = "INPUT"
    REFERENCE = "REFERENCE"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    FOLDS = "FOLDS"
    SEED = "SEED"
    AREA = "AREA"
    SENSOR = "SENSOR"
    EXTRA_STACKS = "EXTRA_STACKS"
    EXTRA_SENSOR = "EXTRA_SENSOR"
    MIN_LABELLED_FRACTION = "MIN_LABELLED_FRACTION"
    YEAR = "YEAR"
    OUTPUT = "OUTPUT"
    N_TILES = "N_TILES"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        integer = QgsProcessingParameterNumber.Integer
        self.addParameter(
            QgsProcessingParameterMultipleLayers(self.INPUT, self.tr("Time stacks (interpolated)"), QgsProcessing.TypeRaster),
            help="Interpolated, so no date has gaps; all stacks must share dates, bands and CRS.",
        )
        self.addParameter(
            QgsProcessingParameterMultipleLayers(self.REFERENCE, self.tr("Reference rasters (same order)"), QgsProcessing.TypeRaster),
            help="One reference per stack, in the same order, on the same grid.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.TILE_SIZE, self.tr("Tile size (pixels)"), integer, 64, minValue=1),
            help="Pixels; tiles step by TILE_SIZE − OVERLAP; the last row and column of tiles are shifted inward to end at the patch edge "
            "(no padding), so every patch must be at least one tile wide and high. Tiles without any labelled pixel are left out.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.OVERLAP, self.tr("Overlap (pixels)"), integer, 0, minValue=0),
            help="Pixels shared by neighbouring tiles, which can then fall into different folds.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.FOLDS, self.tr("Folds"), integer, 5, minValue=2),
            help="multilabel-stratified k-fold ids (iterative stratification over the classes present in each tile).",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"), integer, 0, minValue=0),
            help="The same seed gives the same fold ids.",
        )
        self.addParameter(QgsProcessingParameterString(self.AREA, self.tr("Area name"), "aoi"), help="Names the store's area group.")
        self.addParameter(QgsProcessingParameterString(self.SENSOR, self.tr("Sensor name"), "S2L2A"), help="Names the store's sensor group.")
        self.addParameter(
            QgsProcessingParameterMultipleLayers(self.EXTRA_STACKS, self.tr("Second-modality stacks (same order)"), QgsProcessing.TypeRaster, optional=True),
            help="Another time stack per input stack, same order, either on the same grid or at its own coarser resolution in the same "
            "CRS (e.g. the 300 m OLCI stack of landcover:downloadolci, kept at 300 m: each tile gets the OLCI tile of the same "
            "extent, so TILE_SIZE × 10 m must be a multiple of 300 m: 30, 60, 120 … pixels), with its own dates and bands, stored as "
            "its own group named EXTRA_SENSOR; the folds are shared.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.EXTRA_SENSOR, self.tr("Second-modality sensor name"), "S3OLCI"),
            help="Names the group of the second-modality stacks.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MIN_LABELLED_FRACTION, self.tr("Minimum labelled fraction of a tile"), QgsProcessingParameterNumber.Double, 0.0, minValue=0.0, maxValue=1.0
            ),
            advanced=True,
            help="Leave out tiles with fewer labelled pixels.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.YEAR, self.tr("Year (0 = from the stack dates)"), integer, 0, minValue=0),
            advanced=True,
            help="Names the store's year group; 0 = the year most stack dates fall in.",
        )
        self.addParameter(
            QgsProcessingParameterFolderDestination(self.OUTPUT, self.tr("Tile store (.zarr folder)")),
            help="A folder, by convention ending in <i>.zarr</i>; an existing tile store there is replaced.",
        )
        self.addOutput(QgsProcessingOutputNumber(self.N_TILES, self.tr("Number of tiles")))

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        output = self.parameterAsString(parameters, self.OUTPUT, context)
        extra = [layer.source().split("|")[0] for layer in self.parameterAsLayerList(parameters, self.EXTRA_STACKS, context)]
        year = self.parameterAsInt(parameters, self.YEAR, context)
        config = dataset.TileConfig(
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            overlap=self.parameterAsInt(parameters, self.OVERLAP, context),
            n_folds=self.parameterAsInt(parameters, self.FOLDS, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            area=self.parameterAsString(parameters, self.AREA, context),
            year=year or None,
            sensor=self.parameterAsString(parameters, self.SENSOR, context),
            min_labelled_fraction=self.parameterAsDouble(parameters, self.MIN_LABELLED_FRACTION, context),
        )
        store = dataset.export_tiles(
            self.raster_paths(parameters, self.INPUT, context),
            self.raster_paths(parameters, self.REFERENCE, context),
            output,
            config,
            extra_stacks={self.parameterAsString(parameters, self.EXTRA_SENSOR, context): extra} if extra else None,
            monitor=monitor,
        )
        return {self.OUTPUT: output, self.N_TILES: store.n_tiles}
