"""Download Sentinel-2 time series: one GeoTIFF time stack per patch from a STAC API."""

from __future__ import annotations

import os

from qgis.core import (
    QgsApplication,
    QgsAuthMethodConfig,
    QgsProcessing,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterAuthConfig,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..lc_plugin.core.errors import LandCoverError
from ..lc_plugin.sources import download, sentinelhub
from .base import LandCoverAlgorithm
from .params import add_date_parameters, bands_parameter, date_range


class DownloadAlgorithm(LandCoverAlgorithm):
    ALG_ID = "download"
    DISPLAY_NAME = "Download Sentinel-2 time series"
    GROUP_ID = "data"
    HELP = (
        "Searches a STAC API for Sentinel-2 scenes over each patch and reads only the patch window of every band (Cloud-Optimized GeoTIFF "
        "range requests through GDAL), resampled to the patch grid (bilinear for reflectance, nearest for SCL). Scenes of the same day "
        "are merged into one date."
    )
    NOTES = (
        "<b>Reflectance</b> = DN × scale + offset, chosen per item and band and logged once with the reason: the item's STAC 1.1 "
        "<code>raster:scale</code>/<code>raster:offset</code> (CDSE) or STAC 1.0 <code>raster:bands</code> (Earth Search "
        "sentinel-2-c1-l2a, whose pixels keep ESA's +1000); without either (Planetary Computer), 0.0001 and −0.1 from processing baseline "
        "04.00 on (<code>s2:processing_baseline</code> or <code>processing:version</code>). Earth Search sentinel-2-l2a declares −0.1 "
        "also where it already subtracted the offset from the pixels: with <code>earthsearch:boa_offset_applied</code> true the offset is "
        "not applied again (real pixels confirm it); when the flag is false at baseline ≥ 04.00, which Earth Search gets wrong on some "
        "items, the offset is applied unless a band's median DN over the patch is below 900 (a reflectance below −0.01 otherwise), which "
        "proves it was already subtracted. AOT/WVP: DN / 1000; SCL as it is.<br>"
        "Outputs: STACKS (all stacks) and OUTPUT (the first stack, loaded in true colour when run from the dialog). Transient HTTP "
        "failures (timeouts, 429, 5xx, cut answers) are retried with exponential backoff.<br>"
        "Example: <code>qgis_process run landcover:download -- PATCHES=grid.gpkg START_DATE=2017-01-01 END_DATE=2017-12-31 "
        "OUTPUT_FOLDER=stacks</code>"
    )

    PATCHES = "PATCHES"
    PATCH_ID = "PATCH_ID"
    MAX_CLOUD = "MAX_CLOUD"
    BANDS = "BANDS"
    STAC_URL = "STAC_URL"
    COLLECTION = "COLLECTION"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    SOURCE = "SOURCE"
    PRESET = "PRESET"
    SH_ENDPOINT = "SH_ENDPOINT"
    AUTHCFG = "AUTHCFG"
    THREADS = "THREADS"
    RESUME = "RESUME"
    CACHE_FOLDER = "CACHE_FOLDER"
    KEEP_CACHE = "KEEP_CACHE"
    SOURCES = ["stac", "sentinelhub"]
    PRESETS = [None, "earth-search", "planetary-computer", "cdse"]
    OUTPUT = "OUTPUT"
    STACKS = "STACKS"
    ARGUMENTS = {
        "grid_path": "PATCHES",
        "layer": "PATCHES",
        "patch_ids": "PATCH_ID",
        "start": "START_DATE",
        "end": "END_DATE",
        "endpoint": "SH_ENDPOINT",
        "credentials": "AUTHCFG",
    }

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterFeatureSource(self.PATCHES, self.tr("Patch grid"), [QgsProcessing.TypeVectorPolygon]),
            help="The output of Create patch grid.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.PATCH_ID, self.tr("Patch id (empty: all patches)"), optional=True),
            help="One patch only; empty: all patches.",
        )
        add_date_parameters(
            self,
            optional=False,
            start_help="The first day of the period (YYYY-MM-DD in qgis_process).",
            end_help="The last day of the period, inclusive.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_CLOUD, self.tr("Max scene cloud cover (%)"), QgsProcessingParameterNumber.Double, 80.0, minValue=0, maxValue=100
            ),
            help="The catalogue's eo:cloud_cover filter.",
        )
        self.addParameter(
            bands_parameter(self.BANDS, self.tr("Bands"), download.DEFAULT_BANDS),
            help="The Sentinel-2 bands to tick (in qgis_process BANDS=B02,B03,B04; L2A data has no B10, so use SCL for cloud masks).",
        )
        self.addParameter(
            QgsProcessingParameterString(self.STAC_URL, self.tr("STAC API URL"), download.DEFAULT_STAC_URL),
            help="The STAC API searched (the default is Earth Search's public API).",
        )
        self.addParameter(
            QgsProcessingParameterString(self.COLLECTION, self.tr("Collection"), download.DEFAULT_COLLECTION),
            advanced=True,
            help="The STAC collection searched.",
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.SOURCE, self.tr("Source"), [self.tr("STAC API + COGs"), self.tr("Sentinel Hub Process API")], defaultValue=0),
            help="<i>STAC API + COGs</i> or the <i>Sentinel Hub Process API</i>: L1C bands + the service's CLM/CLP cloud layers, one request "
            "per patch, date and block of at most 2500 × 2500 px; its default bands are "
            + ",".join(sentinelhub.DEFAULT_SH_BANDS)
            + ", without CLM/CLP on cdse, whose Sentinel Hub does not list them.",
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.PRESET,
                self.tr("STAC catalogue"),
                [
                    self.tr("Custom: the STAC API URL and collection above"),
                    self.tr("Earth Search"),
                    self.tr("Microsoft Planetary Computer"),
                    self.tr("Copernicus Data Space Ecosystem"),
                ],
                defaultValue=0,
            ),
            help="STAC only: <i>Custom</i> uses the STAC API URL and collection above; <i>Microsoft Planetary Computer</i> signs asset "
            "URLs with its SAS tokens; <i>Copernicus Data Space Ecosystem</i> has its assets on CDSE S3: set "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY to your CDSE S3 keys.",
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.THREADS, self.tr("Parallel downloads"), QgsProcessingParameterNumber.Integer, download.DEFAULT_THREADS, minValue=1, maxValue=64
            ),
            help="Bands and scenes read at the same time.",
        )
        self.addParameter(
            QgsProcessingParameterBoolean(self.RESUME, self.tr("Skip patches already downloaded"), True),
            help="A rerun skips patches whose stack exists for the same request and redoes the others.",
        )
        self.addParameter(
            QgsProcessingParameterString(self.SH_ENDPOINT, self.tr("Sentinel Hub only: endpoint (sentinel-hub, cdse or URL)"), "sentinel-hub"),
            advanced=True,
            help="Sentinel Hub only: sentinel-hub (services.sentinel-hub.com), cdse (sh.dataspace.copernicus.eu) or a base URL.",
        )
        self.addParameter(
            QgsProcessingParameterAuthConfig(
                self.AUTHCFG, self.tr("Sentinel Hub only: authentication (empty: SH_CLIENT_ID/SH_CLIENT_SECRET)"), optional=True
            ),
            advanced=True,
            help="Sentinel Hub only: a Basic configuration with the OAuth client id as user name and the client secret as password; "
            "empty: the environment variables SH_CLIENT_ID and SH_CLIENT_SECRET. Credentials are never logged or written.",
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.CACHE_FOLDER, self.tr("Cache folder (empty: OUTPUT_FOLDER/.lc_cache)"), QgsProcessingParameterFile.Folder, optional=True
            ),
            advanced=True,
            help="Scene reads are cached here until their patch is written, so a rerun after a crash does not download them again; empty: "
            "OUTPUT_FOLDER/.lc_cache.",
        )
        self.addParameter(
            QgsProcessingParameterBoolean(self.KEEP_CACHE, self.tr("Keep the cache after each patch"), False),
            advanced=True,
            help="Keep the cached scene reads after their patch is written.",
        )
        self.addParameter(
            QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Output folder")),
            help="One time stack <code>PATCH_ID.tif</code> per patch (float32 reflectance, NaN = no data, band descriptions 'DATE BAND'); "
            "a temporary folder unless chosen. Each stack carries internal overviews (GDAL's AVERAGE of 4 × 4 and 16 × 16 pixel "
            "blocks on a 10 m grid): QGIS draws a zoomed-out stack from them, and Cloud masks at the default processing "
            "resolution reads them instead of decoding every pixel; +3.8 % file size on the 1000 × 1000 px patch of bench/RESULTS.md.",
        )
        self.addOutput(QgsProcessingOutputRasterLayer(self.OUTPUT, self.tr("First time stack")))
        self.addOutput(QgsProcessingOutputMultipleLayers(self.STACKS, self.tr("Time stacks")))

    def make_source(self, parameters, context, feedback):
        kind = self.SOURCES[self.parameterAsEnum(parameters, self.SOURCE, context)]
        collection = self.parameterAsString(parameters, self.COLLECTION, context).strip()
        if kind == "stac":
            preset = self.PRESETS[self.parameterAsEnum(parameters, self.PRESET, context)]
            url = self.parameterAsString(parameters, self.STAC_URL, context).strip()
            if preset:
                # The preset's URL and collection, unless the user changed them from the defaults.
                url = "" if url == download.DEFAULT_STAC_URL else url
                collection = "" if collection == download.DEFAULT_COLLECTION else collection
            return download.make_source("stac", stac_url=url, collection=collection, preset=preset)
        authcfg = self.parameterAsString(parameters, self.AUTHCFG, context).strip()
        credentials = None
        if authcfg:
            cfg = QgsAuthMethodConfig()
            if not QgsApplication.authManager().loadAuthenticationConfig(authcfg, cfg, True) or not cfg.isValid():
                raise LandCoverError(f"The authentication configuration {authcfg} could not be loaded (is the master password set?).", self.AUTHCFG)
            credentials = (cfg.config("username", "").strip(), cfg.config("password", "").strip())
            if not all(credentials):
                raise LandCoverError(
                    f"The authentication configuration {authcfg} has no user name (OAuth client id) or password (client secret).", self.AUTHCFG
                )
        endpoint = self.parameterAsString(parameters, self.SH_ENDPOINT, context).strip() or "sentinel-hub"
        return download.make_source(
            "sentinelhub",
            endpoint=endpoint,
            credentials=credentials,
            credentials_origin=f"the authentication configuration {authcfg} (AUTHCFG)",
            collection=None if collection == download.DEFAULT_COLLECTION else collection or None,
        )

    def run_step(self, parameters, context, feedback, monitor) -> dict:
        grid_path, grid_layer = self.vector_path(parameters, self.PATCHES, context, feedback)
        patch_id = self.parameterAsString(parameters, self.PATCH_ID, context).strip()
        start, end = date_range(self, parameters, context)
        bands = self.parameterAsEnumStrings(parameters, self.BANDS, context)
        out_dir = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        os.makedirs(out_dir, exist_ok=True)
        source = self.make_source(parameters, context, feedback)
        if source.kind == "sentinelhub" and bands == download.DEFAULT_BANDS:
            bands = source.default_bands()
            feedback.pushInfo(f"Sentinel Hub: bands {','.join(bands)}")
        cache = self.parameterAsString(parameters, self.CACHE_FOLDER, context).strip()
        try:
            paths = download.download_patches(
                grid_path,
                out_dir,
                patch_ids=[patch_id] if patch_id else None,
                layer=grid_layer,
                source=source,
                start=start,
                end=end,
                max_cloud=self.parameterAsDouble(parameters, self.MAX_CLOUD, context),
                bands=bands,
                threads=self.parameterAsInt(parameters, self.THREADS, context),
                resume=self.parameterAsBool(parameters, self.RESUME, context),
                cache_dir=cache or "",
                keep_cache=self.parameterAsBool(parameters, self.KEEP_CACHE, context),
                monitor=monitor,
            )
        finally:
            source.close()
        return {self.OUTPUT_FOLDER: out_dir, self.OUTPUT: paths[0], self.STACKS: paths}
