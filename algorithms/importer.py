"""Import Sentinel-2 products the user already has (SAFE folders, .zip, local STAC items) as time stacks."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from ..lc_plugin.core.errors import LandCoverError
from ..lc_plugin.sources import importer
from .base import LandCoverAlgorithm


def band_list(text: str) -> list[str] | None:
    """``"B02, b04"`` → ``["B02", "B04"]``; empty → None (the step's default)."""
    bands = [b.strip().upper() for b in text.split(",") if b.strip()]
    return bands or None


class ImportProductsAlgorithm(LandCoverAlgorithm):
    ALG_ID = "importproducts"
    DISPLAY_NAME = "Import Sentinel-2 products"
    GROUP_ID = "data"
    HELP = (
        "Turns Sentinel-2 products you already have into time stacks exactly like Download's, so every later step takes them. Nothing is "
        "downloaded."
    )
    NOTES = (
        "Reflectance: SAFE products use their own MTD_MSIL1C.xml / MTD_MSIL2A.xml: (DN + RADIO_ADD_OFFSET or BOA_ADD_OFFSET) / "
        "QUANTIFICATION_VALUE, so products from before and after baseline 04.00 agree; STAC items get the same scaling rules as "
        "Download's STAC source (e.g. Earth Search items flagged earthsearch:boa_offset_applied are not shifted again). DN 0 is no data; "
        "SCL is kept as classes for L2A.<br>"
        "Products of one day (neighbouring tiles, two orbits) are merged into one date, least cloudy first; dates come from the products' "
        "metadata. A product that misses the area is skipped (logged); if none overlaps, the step stops saying so. A damaged .zip stops "
        "the step with its name and nothing is written.<br>"
        "Example: <code>qgis_process run landcover:importproducts -- INPUT=downloads/ EXTENT='585000,590000,5105000,5110000 [EPSG:32633]' "
        "OUTPUT=stack.tif</code>"
    )

    INPUT = "INPUT"
    EXTENT = "EXTENT"
    PATCHES = "PATCHES"
    PATCH_ID = "PATCH_ID"
    RESOLUTION = "RESOLUTION"
    BANDS = "BANDS"
    OUTPUT = "OUTPUT"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    STACKS = "STACKS"
    ARGUMENTS = {"inputs": "INPUT", "out_path": "OUTPUT", "grid_path": "PATCHES", "layer": "PATCHES", "patch_ids": "PATCH_ID"}

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterMultipleLayers(self.INPUT, self.tr("Products (SAFE folders, .zip, STAC JSON or folders)"), QgsProcessing.TypeFile),
            help="SAFE folders or the .zip files the Copernicus Browser delivers (Level-1C or Level-2A, any processing baseline), STAC "
            "item / FeatureCollection / static catalogue JSON files whose band assets are files on disk (relative or absolute hrefs; "
            "remote hrefs are ignored), or folders holding any of these (searched recursively). One processing level per stack.",
        )
        self.addParameter(
            QgsProcessingParameterExtent(self.EXTENT, self.tr("Extent (empty: the products' area)"), optional=True),
            help="Any CRS; the area of the one output stack, in the first product's UTM zone, its pixels aligned with the product's. "
            "Empty: all the products' area.",
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(self.PATCHES, self.tr("Patch grid (one stack per patch)"), [QgsProcessing.TypeVectorPolygon], optional=True),
            help="Instead of one stack, one stack per patch the products reach, named PATCH_ID.tif in OUTPUT_FOLDER, on the grid's pixels "
            "(RESOLUTION and EXTENT are then not used).",
        )
        self.addParameter(
            QgsProcessingParameterString(self.PATCH_ID, self.tr("Patch id (empty: all patches)"), optional=True),
            help="With a patch grid, one patch only; empty: all patches.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.RESOLUTION, self.tr("Resolution (m)"), QgsProcessingParameterNumber.Double, 10.0, minValue=0.001),
            help="Metres; 20 m and 60 m bands are resampled bilinearly (SCL nearest); for a 20 or 60 m output the products' own 20/60 m "
            "bands are used.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.BANDS, self.tr("Bands (empty: all the products have)"), "", optional=True),
            help="comma-separated names, e.g. B02,B03,B04,B08,SCL; empty: every band all products have.",
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Time stack"), optional=True),
            help="float32 reflectance, NaN = no data, bands described 'YYYY-MM-DD BAND', the metadata of Download (SOURCE=products, "
            "ITEM_IDS, PROCESSING_BASELINE, CLOUD_COVER, DATA_COVERAGE).",
        )
        self.addParameter(
            QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Output folder (per-patch stacks)"), optional=True, createByDefault=False),
            help="The per-patch stacks (output STACKS).",
        )
        self.addOutput(QgsProcessingOutputMultipleLayers(self.STACKS, self.tr("Per-patch time stacks")))

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        inputs = [str(p) for p in self.parameterAsFileList(parameters, self.INPUT, context)]
        bands = band_list(self.parameterAsString(parameters, self.BANDS, context))
        if self.parameterAsSource(parameters, self.PATCHES, context) is not None:
            return self._per_patch(parameters, context, feedback, monitor, inputs, bands)
        out = self.output_path(parameters, self.OUTPUT, context, (".tif", ".tiff"))
        if not out:
            raise LandCoverError("Choose a file for the time stack, or a patch grid and an output folder.", self.OUTPUT)
        extent = crs = None
        if self.parameterAsString(parameters, self.EXTENT, context).strip():
            rect = self.parameterAsExtent(parameters, self.EXTENT, context)
            extent = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
            crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context).toWkt() or None
        importer.import_products(
            inputs, out, extent=extent, extent_crs=crs, resolution=self.parameterAsDouble(parameters, self.RESOLUTION, context), bands=bands, monitor=monitor
        )
        return {self.OUTPUT: out}

    def _per_patch(self, parameters, context, feedback, monitor, inputs, bands) -> dict:
        out_dir = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        if not out_dir:
            raise LandCoverError("Choose an output folder for the per-patch stacks.", self.OUTPUT_FOLDER)
        grid_path, grid_layer = self.vector_path(parameters, self.PATCHES, context, feedback)
        patch_id = self.parameterAsString(parameters, self.PATCH_ID, context).strip()
        paths = importer.import_patches(
            inputs, grid_path, out_dir, patch_ids=[patch_id] if patch_id else None, layer=grid_layer, bands=bands, monitor=monitor
        )
        # The single-stack destination was not written: do not ask the dialog to load it.
        unwritten = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if unwritten and context.willLoadLayerOnCompletion(unwritten):
            loads = dict(context.layersToLoadOnCompletion())
            loads.pop(unwritten, None)
            context.setLayersToLoadOnCompletion(loads)
        return {self.OUTPUT_FOLDER: out_dir, self.STACKS: paths}
