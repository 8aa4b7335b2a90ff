"""Download Sentinel-3 OLCI: OL_1_EFR products (local, or found through a STAC API) → a 300 m TOA-reflectance time stack for one patch."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..lc_plugin.core.errors import LandCoverError
from ..lc_plugin.sources import olci, olci_stac
from .base import LandCoverAlgorithm
from .params import add_date_parameters, date_range


class DownloadOlciAlgorithm(LandCoverAlgorithm):
    ALG_ID = "downloadolci"
    DISPLAY_NAME = "Sentinel-3 OLCI time series"
    GROUP_ID = "data"
    HELP = (
        "Turns Sentinel-3 OLCI Level-1B full-resolution products (OL_1_EFR), downloaded by you or found through a STAC API, into a time "
        "stack for one patch: its 21 bands Oa01–Oa21 as top-of-atmosphere reflectance (pi·L / (F0·cos SZA): radiance, the detector's "
        "solar flux, the sun zenith angle interpolated from the tie points), georeferenced through each product's own latitude/longitude "
        "arrays and reprojected onto the patch's CRS at 300 m (kept at its own resolution, not resampled to 10 m). Products of one day "
        "are merged."
    )
    NOTES = (
        "From a STAC API each item over the patch is fetched file by file (the manifest, geolocation, then the rest; about 0.5 GB per "
        "product, whole files) into a temporary folder, read as a local product and deleted. CDSE gives <code>s3://eodata/</code> hrefs: "
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to your CDSE S3 keys. What is verified: the item layout "
        "(stactools-packages/sentinel3's real OL_1_EFR item: a manifest asset and 21 radiance assets; the other files are found through "
        "the manifest) and CDSE's collection id and s3 hrefs (as published code that queries CDSE uses them). Not verified: a recorded "
        "CDSE OLCI item (none was available offline), so its asset keys are not relied on; files are matched by name.<br>"
        "Examples: <code>qgis_process run landcover:downloadolci -- PRODUCTS_FOLDER=olci/ GRID=stack.tif START_DATE=2017-01-01 "
        "END_DATE=2017-12-31 OUTPUT=olci.tif</code>; <code>qgis_process run landcover:downloadolci -- SOURCE=1 GRID=stack.tif "
        "START_DATE=2023-06-01 END_DATE=2023-06-30 OUTPUT=olci.tif</code>"
    )

    SOURCE = "SOURCE"
    PRODUCTS_FOLDER = "PRODUCTS_FOLDER"
    STAC_URL = "STAC_URL"
    COLLECTION = "COLLECTION"
    GRID = "GRID"
    RESOLUTION = "RESOLUTION"
    OUTPUT = "OUTPUT"
    ARGUMENTS = {"product_paths": "PRODUCTS_FOLDER", "grid_raster": "GRID", "out_path": "OUTPUT", "start": "START_DATE", "end": "END_DATE"}

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterEnum(self.SOURCE, self.tr("Source"), [self.tr("Folder of products"), self.tr("STAC API")], defaultValue=0),
            help="Where the products come from.",
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.PRODUCTS_FOLDER, self.tr("Folder of OLCI EFR products (.SEN3 / .zip)"), QgsProcessingParameterFile.Folder, optional=True
            ),
            help="Source 0: a folder holding <code>*.SEN3</code> product folders and/or their <code>.zip</code> files (or one product).",
        )
        self.addParameter(
            QgsProcessingParameterString(self.STAC_URL, self.tr("STAC API URL"), olci_stac.DEFAULT_STAC_URL),
            help="Source 1: the default is the Copernicus Data Space Ecosystem's STAC API.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.COLLECTION, self.tr("Collection"), olci_stac.DEFAULT_COLLECTION),
            help="Source 1: the OLCI L1B EFR collection.",
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.GRID, self.tr("Grid of (a raster of the patch)")),
            help="Any raster of the patch (e.g. its Sentinel-2 stack); the output covers its extent.",
        )
        add_date_parameters(
            self,
            optional=True,
            start_help="Inclusive; empty: every product (needed with a STAC API).",
            end_help="Inclusive; empty: every product (needed with a STAC API).",
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.RESOLUTION, self.tr("Resolution (m)"), QgsProcessingParameterNumber.Double, olci.OLCI_RESOLUTION, minValue=1.0),
            help="Pixel size of the output stack in metres (by default OLCI's own resolution).",
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("OLCI stack")),
            help="float32 time stack, band descriptions 'YYYY-MM-DD Oa01', NaN outside the swaths; give it to Export training tiles as "
            "the second modality and to Classify as INPUT_2.",
        )

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        start, end = date_range(self, parameters, context)
        out = self.output_path(parameters, self.OUTPUT, context, (".tif", ".tiff"))
        grid = self.raster_path(parameters, self.GRID, context)
        resolution = self.parameterAsDouble(parameters, self.RESOLUTION, context)
        if self.parameterAsEnum(parameters, self.SOURCE, context) == 1:
            url = self.parameterAsString(parameters, self.STAC_URL, context).strip() or olci_stac.DEFAULT_STAC_URL
            collection = self.parameterAsString(parameters, self.COLLECTION, context).strip() or olci_stac.DEFAULT_COLLECTION
            stack = olci_stac.olci_stac_stack_file(url, collection, grid, out, start=start, end=end, resolution=resolution, monitor=monitor)
        else:
            folder = self.parameterAsFile(parameters, self.PRODUCTS_FOLDER, context)
            if not folder:
                raise LandCoverError("Give a folder of OLCI products, or choose SOURCE = 1 (STAC API).", "PRODUCTS_FOLDER")
            stack = olci.olci_stack_file([folder], grid, out, start=start, end=end, resolution=resolution, monitor=monitor)
        feedback.pushInfo(f"{len(stack.dates)} date(s): " + ", ".join(d.isoformat() for d in stack.dates))
        return {self.OUTPUT: out}
