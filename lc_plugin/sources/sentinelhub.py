"""Sentinel Hub Process API (sentinel-hub.com or the Copernicus Data Space Ecosystem).

Why: the eo-learn pipeline this plugin follows downloads L1C bands plus Sentinel Hub's own
cloud layers (CLM mask, CLP probability) this way. The catalogue (Sentinel Hub's STAC API)
lists the acquisitions over a patch; then one Process API request per patch and date returns
a multi-band float32 GeoTIFF already on the patch grid (the service mosaics the day's tiles,
least cloudy first, and resamples with its default nearest neighbour so CLM stays a class).

Credentials: an OAuth2 client (id + secret) from QGIS's authentication database (the
algorithm's AUTHCFG parameter) or the SH_CLIENT_ID / SH_CLIENT_SECRET environment variables.
The access token is fetched with the client-credentials grant, renewed a minute before it
expires and whenever the service answers 401. Neither the secret nor the token ever appears in
a message, a log line or an output.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date

import numpy as np
from osgeo import gdal
from rasterio.transform import Affine
from rasterio.warp import transform_bounds

from ..core.errors import InputError
from ..core.monitor import Monitor
from ..io.gdal_errors import gdal_errors
from ..io.http import DEFAULT_POLICY, HttpClient, HttpError, RetryPolicy
from ..io.rasters import Grid
from .base import Scene, Source, cloud_cover, item_date
from .stac_scaling import processing_baseline
from .stac_search import search_items

ENV_CLIENT_ID = "SH_CLIENT_ID"
ENV_CLIENT_SECRET = "SH_CLIENT_SECRET"
L1C_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
CLOUD_BANDS = ["CLM", "CLP"]
DEFAULT_SH_BANDS = ["B01", "B02", "B03", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12", "CLM", "CLP"]
# The Process API answers HTTP 400 for an output larger than this many pixels per side.
MAX_PIXELS = 2500
# The catalogue (v1.0.0) wants exactly this Accept header; "application/json" is refused.
CATALOG_ACCEPT = "application/geo+json"


@dataclass(frozen=True)
class Endpoint:
    title: str
    base: str
    token_url: str
    collection: str = "sentinel-2-l1c"
    #: whether the service has Sentinel Hub's s2cloudless layers CLM/CLP
    cloud_layers: bool = True


ENDPOINTS: dict[str, Endpoint] = {
    "sentinel-hub": Endpoint(
        "Sentinel Hub (services.sentinel-hub.com)",
        "https://services.sentinel-hub.com",
        "https://services.sentinel-hub.com/auth/realms/main/protocol/openid-connect/token",
    ),
    "cdse": Endpoint(
        "Copernicus Data Space Ecosystem (sh.dataspace.copernicus.eu)",
        "https://sh.dataspace.copernicus.eu",
        "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token",
        # CDSE's band tables for sentinel-2-l1c and sentinel-2-l2a (documentation.dataspace.copernicus.eu,
        # APIs/SentinelHub/Data/S2L1C and S2L2A) list no CLM/CLP, unlike services.sentinel-hub.com's.
        cloud_layers=False,
    ),
}
TOKEN_PATH = "/auth/realms/main/protocol/openid-connect/token"


def credentials_from_env() -> tuple[str, str] | None:
    cid, secret = os.environ.get(ENV_CLIENT_ID, "").strip(), os.environ.get(ENV_CLIENT_SECRET, "").strip()
    return (cid, secret) if cid and secret else None


def evalscript(bands: list[str]) -> str:
    """Bands as reflectance (CLM as 0/1, CLP as 0-1), NaN where the service has no data."""
    inputs = [*bands, "dataMask"]
    units = ", ".join('"DN"' if b in CLOUD_BANDS or b == "dataMask" else '"REFLECTANCE"' for b in inputs)
    values = ", ".join(f"s.{b} / 255" if b == "CLP" else f"s.{b}" for b in bands)
    nans = ", ".join("NaN" for _ in bands)
    return (
        "//VERSION=3\n"
        "function setup() {\n"
        f"  return {{input: [{{bands: [{', '.join(repr(b).replace(chr(39), chr(34)) for b in inputs)}], units: [{units}]}}],\n"
        f"          output: {{bands: {len(bands)}, sampleType: \"FLOAT32\"}}}};\n"
        "}\n"
        "function evaluatePixel(s) {\n"
        f"  if (s.dataMask === 0) return [{nans}];\n"
        f"  return [{values}];\n"
        "}\n"
    )


class TokenManager:
    """An OAuth2 client-credentials token, fetched lazily and renewed on expiry or on request."""

    def __init__(self, token_url: str, credentials: tuple[str, str], origin: str, policy: RetryPolicy) -> None:
        self.token_url = token_url
        self._id, self._secret = credentials
        self.origin = origin
        self._token: str | None = None
        self._expiry = 0.0
        self._lock = threading.Lock()
        self.fetches = 0
        self.client = HttpClient(f"The Sentinel Hub token endpoint {token_url}", "endpoint", policy=policy, secrets=self.secrets)

    def secrets(self) -> list[str]:
        return [s for s in (self._secret, self._token) if s]

    def _refused(self, resp) -> str | None:
        if resp.status_code in (400, 401, 403):
            return (
                f"Sentinel Hub refused the OAuth client id/secret from {self.origin} (HTTP {resp.status_code} from "
                f"{self.token_url}). Check the client id and secret, and that the client belongs to this endpoint."
            )
        return None

    def token(self, monitor: Monitor | None = None, force: bool = False) -> str:
        with self._lock:
            if force or self._token is None or time.time() > self._expiry - 60:
                try:
                    data = self.client.request(
                        "POST",
                        self.token_url,
                        monitor=monitor,
                        on_status=self._refused,
                        data={"grant_type": "client_credentials", "client_id": self._id, "client_secret": self._secret},
                    )
                except HttpError as exc:
                    if exc.status in (400, 401, 403):  # the credentials, not the endpoint
                        raise HttpError(str(exc), "credentials", exc.status) from None
                    raise
                try:
                    body = data.json()
                except ValueError:
                    body = None
                if not isinstance(body, dict) or not body.get("access_token"):
                    raise HttpError(f"{self.client.name} answered without an access token.", "credentials")
                self._token = str(body["access_token"])
                self._expiry = time.time() + float(body.get("expires_in") or 3600)
                self.fetches += 1
            return self._token

    def refresh(self, resp=None) -> bool:
        """Renew after a 401, unless another thread already renewed the token that was refused."""
        sent = resp.request.headers.get("Authorization", "") if resp is not None else None
        with self._lock:
            renewed = sent is not None and self._token is not None and sent != f"Bearer {self._token}"
        if not renewed:
            self.token(force=True)
        return True

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


class SentinelHubSource(Source):
    """Scenes from Sentinel Hub's catalogue, pixels from its Process API, one request per date."""

    kind = "sentinelhub"
    merge_by_date = False  # the service mosaics a day's tiles itself

    def __init__(
        self,
        endpoint: str = "sentinel-hub",
        *,
        credentials: tuple[str, str] | None = None,
        credentials_origin: str = "the credentials given",
        token_url: str | None = None,
        collection: str | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        if endpoint in ENDPOINTS:
            ep = ENDPOINTS[endpoint]
        elif endpoint.startswith(("http://", "https://")):
            base = endpoint.rstrip("/")
            ep = Endpoint(base, base, token_url or base + TOKEN_PATH)
        else:
            raise InputError(f"Unknown Sentinel Hub endpoint {endpoint!r}; choose {', '.join(ENDPOINTS)} or give a URL.", "endpoint")
        if credentials is None:
            credentials = credentials_from_env()
            credentials_origin = f"the environment variables {ENV_CLIENT_ID}/{ENV_CLIENT_SECRET}"
        if not credentials or not credentials[0] or not credentials[1]:
            raise InputError(
                "No Sentinel Hub credentials: choose an authentication configuration (Basic, user name = OAuth client id, "
                f"password = client secret) or set the environment variables {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}.",
                "credentials",
            )
        self.endpoint = ep
        self.endpoint_name = endpoint
        self.collection = collection or ep.collection
        self.policy = policy
        self.tokens = TokenManager(token_url or ep.token_url, credentials, credentials_origin, policy)
        self.client = HttpClient(f"Sentinel Hub at {ep.base}", "endpoint", policy=policy, secrets=self.tokens.secrets)
        self.catalog_url = f"{ep.base}/api/v1/catalog/1.0.0"
        self.process_url = f"{ep.base}/api/v1/process"
        self._max_cloud = 100.0

    def close(self) -> None:
        self.client.close()
        self.tokens.client.close()

    def describe(self) -> str:
        return f"{self.collection} at {self.endpoint.base} (Sentinel Hub)"

    def signature(self) -> str:
        return f"sentinelhub|{self.endpoint.base}|{self.collection}"

    def tags(self) -> dict[str, str]:
        return {"SOURCE": "sentinelhub", "SH_ENDPOINT": self.endpoint.base, "COLLECTION": self.collection}

    def _denied(self, resp) -> str | None:
        if resp.status_code == 401:
            return f"Sentinel Hub at {self.endpoint.base} refused the access token obtained with the client from " f"{self.tokens.origin} (HTTP 401)."
        if resp.status_code == 403:
            return (
                f"Sentinel Hub at {self.endpoint.base} refused access (HTTP 403) for the client from "
                f"{self.tokens.origin}: the account may lack processing units or access to {self.collection}."
            )
        return None

    def search(self, grid: Grid, start: date, end: date, max_cloud: float, monitor: Monitor) -> list[Scene]:
        self._max_cloud = max_cloud
        bbox = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
        items = search_items(
            self.catalog_url,
            self.collection,
            bbox,
            start,
            end,
            max_cloud,
            monitor=monitor,
            client=self.client,
            headers=self.tokens.headers,
            retry_unauthorized=self.tokens.refresh,
            cql2=True,
            accept=CATALOG_ACCEPT,
        )
        by_day: dict[date, list[dict]] = {}
        for item in items:
            by_day.setdefault(item_date(item, "endpoint"), []).append(item)
        scenes = []
        for day, day_items in sorted(by_day.items()):
            ids = sorted(str(i.get("id")) for i in day_items)
            digest = hashlib.sha256("|".join(ids).encode()).hexdigest()[:12]
            baselines = sorted({str(processing_baseline(i)) for i in day_items} - {"None"})
            # The service mosaics with the cloud filter: it is part of what the pixels are.
            scenes.append(
                Scene(f"{day.isoformat()}:{digest}:{max_cloud:g}", day, min(cloud_cover(i) for i in day_items), ",".join(baselines) or None, item_ids=ids)
            )
        return scenes

    def default_bands(self) -> list[str]:
        """The L1C bands s2cloudless needs, plus CLM/CLP where the service has them."""
        return [b for b in DEFAULT_SH_BANDS if self.endpoint.cloud_layers or b not in CLOUD_BANDS]

    def validate_bands(self, bands: list[str]) -> None:
        bad = [b for b in bands if b not in L1C_BANDS + CLOUD_BANDS]
        if bad:
            raise InputError(
                f"Sentinel Hub's {self.collection} has no band {', '.join(bad)}; choose among "
                f"{', '.join(L1C_BANDS + CLOUD_BANDS)} (CLM/CLP: the service's cloud mask and probability).",
                "bands",
            )

    def request_body(self, scene: Scene, grid: Grid, bands: list[str]) -> dict:
        epsg = grid.crs.to_epsg()
        crs = f"http://www.opengis.net/def/crs/EPSG/0/{epsg}" if epsg else grid.crs.to_wkt()
        day = scene.date.isoformat()
        return {
            "input": {
                "bounds": {"bbox": list(grid.bounds), "properties": {"crs": crs}},
                "data": [
                    {
                        "type": self.collection,
                        "dataFilter": {
                            "timeRange": {"from": f"{day}T00:00:00Z", "to": f"{day}T23:59:59Z"},
                            "mosaickingOrder": "leastCC",
                            "maxCloudCoverage": self._max_cloud,
                        },
                    }
                ],
            },
            "output": {"width": grid.width, "height": grid.height, "responses": [{"identifier": "default", "format": {"type": "image/tiff"}}]},
            "evalscript": evalscript(bands),
        }

    def read(self, scene: Scene, grid: Grid, bands: list[str], monitor: Monitor) -> np.ndarray:
        """One Process API request per block of at most 2500 × 2500 px (the API's limit), mosaicked."""
        out = np.empty((len(bands), grid.height, grid.width), dtype=np.float32)
        for r0 in range(0, grid.height, MAX_PIXELS):
            for c0 in range(0, grid.width, MAX_PIXELS):
                block = Grid(grid.crs, grid.transform * Affine.translation(c0, r0), min(MAX_PIXELS, grid.width - c0), min(MAX_PIXELS, grid.height - r0))
                out[:, r0 : r0 + block.height, c0 : c0 + block.width] = self._read_block(scene, block, bands, monitor)
        return out

    def _read_block(self, scene: Scene, grid: Grid, bands: list[str], monitor: Monitor) -> np.ndarray:
        monitor.check()
        resp = self.client.request(
            "POST",
            self.process_url,
            json=self.request_body(scene, grid, bands),
            monitor=monitor,
            headers=lambda: {**self.tokens.headers(), "Accept": "image/tiff"},
            retry_unauthorized=self.tokens.refresh,
            on_status=self._denied,
        )
        name = f"/vsimem/lc_sh_{uuid.uuid4().hex}.tif"
        gdal.FileFromMemBuffer(name, resp.content)
        data = size = None
        try:
            with gdal_errors():
                ds = gdal.Open(name)
                data = ds.ReadAsArray() if ds is not None else None
                size = (ds.RasterYSize, ds.RasterXSize, ds.RasterCount) if ds is not None else None
                ds = None
        except RuntimeError:  # a host that called gdal.UseExceptions(): the same "not a GeoTIFF" below
            pass
        finally:
            gdal.Unlink(name)
        if data is None or size != (grid.height, grid.width, len(bands)):
            raise HttpError(
                f"Sentinel Hub at {self.endpoint.base} answered the request for {scene.date} with something that is not "
                f"a {grid.width}×{grid.height} GeoTIFF of {len(bands)} bands ({len(resp.content)} bytes).",
                "endpoint",
            )
        return np.asarray(data, dtype=np.float32).reshape(len(bands), grid.height, grid.width)

