"""STAC API + Cloud-Optimized GeoTIFFs as a download source: search by patch footprint, read only the patch window.

Why this way: a STAC API lists the scenes (``stac_search``); each band is read through GDAL's
``/vsicurl/`` straight onto the patch's pixel grid (``stac_assets``) and turned into reflectance
by rules that say why (``stac_scaling``).

Presets: Earth Search (anonymous), Microsoft Planetary Computer (asset URLs signed with a SAS
token from its token endpoint, ``stac_signing``), Copernicus Data Space Ecosystem (assets on its
S3, read with the user's CDSE S3 keys from the environment).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from rasterio.warp import transform_bounds

from ..core.errors import InputError
from ..core.monitor import Monitor
from ..core.redaction import redact_url
from ..io.http import DEFAULT_POLICY, RetryPolicy
from ..io.rasters import Grid
from .base import Scene, Source, cloud_cover, item_date
from .stac_assets import find_asset_key, read_item
from .stac_scaling import Scaling, describe_scalings, processing_baseline
from .stac_search import DEFAULT_STAC_URL, search_items, stac_client
from .stac_signing import PC_TOKEN_URL, PlanetaryComputerSigner

DEFAULT_COLLECTION = "sentinel-2-l2a"
DEFAULT_BANDS = ["B02", "B03", "B04", "B08", "B11", "B12", "SCL"]


@dataclass(frozen=True)
class StacPreset:
    title: str
    url: str
    collection: str
    signing: str | None = None  # "planetary-computer"
    gdal_config: dict[str, str] = field(default_factory=dict)
    note: str = ""


PRESETS: dict[str, StacPreset] = {
    "earth-search": StacPreset(
        "Earth Search (Element 84, AWS; anonymous)",
        DEFAULT_STAC_URL,
        DEFAULT_COLLECTION,
        gdal_config={"AWS_NO_SIGN_REQUEST": "YES"},
    ),
    "planetary-computer": StacPreset(
        "Microsoft Planetary Computer (anonymous; asset URLs signed with SAS tokens)",
        "https://planetarycomputer.microsoft.com/api/stac/v1",
        "sentinel-2-l2a",
        signing="planetary-computer",
    ),
    "cdse": StacPreset(
        "Copernicus Data Space Ecosystem STAC (assets on CDSE S3: needs AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY " "set to CDSE S3 keys)",
        "https://stac.dataspace.copernicus.eu/v1",
        "sentinel-2-l2a",
        gdal_config={"AWS_S3_ENDPOINT": "eodata.dataspace.copernicus.eu", "AWS_VIRTUAL_HOSTING": "FALSE", "AWS_HTTPS": "YES"},
        note="cdse-s3",
    ),
}


class StacSource(Source):
    """Any STAC API whose items have one COG (or other GDAL-readable file) per band."""

    kind = "stac"
    merge_by_date = True

    def __init__(
        self,
        url: str = DEFAULT_STAC_URL,
        collection: str = DEFAULT_COLLECTION,
        *,
        preset: str | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        token_url: str = PC_TOKEN_URL,
        signing: str | None = None,
    ) -> None:
        if preset:
            if preset not in PRESETS:
                raise InputError(f"Unknown STAC preset {preset!r}; choose one of {', '.join(PRESETS)}.", "preset")
            p = PRESETS[preset]
            url, collection = url or p.url, collection or p.collection
            self.gdal_config = dict(p.gdal_config)
            signing = p.signing
            if p.note == "cdse-s3" and not (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")):
                raise InputError(
                    "The CDSE STAC preset reads assets from CDSE's S3 (eodata): set the environment variables "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to your CDSE S3 keys (see the README, Data sources).",
                    "preset",
                )
        else:
            self.gdal_config = {"AWS_NO_SIGN_REQUEST": "YES"} if "earth-search" in url else {}
        self.url = url.rstrip("/") if url else url
        if not self.url:
            raise InputError("Give a STAC API URL or choose a preset.", "stac_url")
        self.collection = collection
        self.preset = preset
        self.policy = policy
        self.signer = PlanetaryComputerSigner(collection, token_url, policy) if signing == "planetary-computer" else None
        self.client = stac_client(self.url, policy)
        self._assets: dict[str, list[str]] = {}
        self.scalings: dict[str, dict[str, Scaling]] = {}  # item id -> band -> how it was scaled
        self._logged: set[tuple[str, ...]] = set()
        self._log_lock = threading.Lock()

    def describe(self) -> str:
        return f"{self.collection} at {self.url}"

    def close(self) -> None:
        self.client.close()
        if self.signer is not None:
            self.signer.close()

    def signature(self) -> str:
        # "scaling 2": reads before the Earth Search offset rules (wrong by 0.1 for sentinel-2-l2a and CDSE)
        # must not be resumed or taken from the cache.
        return f"stac|{redact_url(self.url)}|{self.collection}|scaling 2"  # a rotated token reads the same scenes

    def tags(self) -> dict[str, str]:
        tags = {"SOURCE": "stac", "STAC_URL": redact_url(self.url), "COLLECTION": self.collection}
        if self.preset:
            tags["STAC_PRESET"] = self.preset
        return tags

    def search(self, grid: Grid, start: date, end: date, max_cloud: float, monitor: Monitor) -> list[Scene]:
        bbox = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
        items = search_items(self.url, self.collection, bbox, start, end, max_cloud, monitor=monitor, client=self.client)
        return [
            Scene(str(item.get("id")), item_date(item), cloud_cover(item), processing_baseline(item), payload=item)
            for item in items
        ]

    def check_bands(self, scenes: list[Scene], bands: list[str]) -> None:
        for scene in scenes:
            self._assets[scene.id] = [find_asset_key(scene.payload, b) for b in bands]

    def read(self, scene: Scene, grid: Grid, bands: list[str], monitor: Monitor) -> np.ndarray:
        data, scalings = read_item(
            scene.payload,
            grid,
            bands,
            keys=self._assets.get(scene.id),
            policy=self.policy,
            config=self.gdal_config,
            signer=self.signer,
            monitor=monitor,
        )
        self.scalings[scene.id] = scalings
        self._log_scaling(scene, scalings, monitor)
        return data

    def _log_scaling(self, scene: Scene, scalings: dict[str, Scaling], monitor: Monitor) -> None:
        """Say once per collection and kind of scaling (and for every item whose pixels were checked) how DN became reflectance."""
        lines = describe_scalings(scalings)
        collection = str(scene.payload.get("collection") or self.collection)
        with self._log_lock:
            if (collection, *lines) in self._logged:
                return
            self._logged.add((collection, *lines))
        monitor.info(f"Scaling of {collection} item {scene.id}: " + "; ".join(lines))
