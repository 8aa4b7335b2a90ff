"""STAC API + Cloud-Optimized GeoTIFFs: search by patch footprint, read only the patch window.

Why this way: a STAC API lists the scenes; each band is read through GDAL's ``/vsicurl/``
straight onto the patch's pixel grid, so only the HTTP byte ranges of the COG tiles under the
patch are fetched (never overviews, never whole 100 km scenes) and the result is already
reprojected and resampled to the grid the rest of the chain uses (bilinear for reflectance,
so 20 m and 60 m bands are interpolated to 10 m; nearest for the SCL classes).

Presets: Earth Search (anonymous), Microsoft Planetary Computer (asset URLs signed with a SAS
token from its token endpoint), Copernicus Data Space Ecosystem (assets on its S3, read with
the user's CDSE S3 keys from the environment).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote

import numpy as np
from osgeo import gdal
from rasterio.warp import transform_bounds

from ..core.bands import CATEGORICAL_BANDS
from ..core.errors import Cancelled, LandCoverError
from ..core.monitor import Monitor, ensure_monitor
from ..core.redaction import join_url, redact_url
from ..io.gdal_errors import gdal_errors
from ..io.http import DEFAULT_POLICY, HttpClient, HttpError, RetryPolicy, sleep_or_cancel
from ..io.rasters import Grid
from .base import Scene, Source, cloud_cover, item_date

DEFAULT_STAC_URL = "https://earth-search.aws.element84.com/v1"
DEFAULT_COLLECTION = "sentinel-2-l2a"
DEFAULT_BANDS = ["B02", "B03", "B04", "B08", "B11", "B12", "SCL"]

# Sentinel-2 band -> asset keys besides the band name itself (Earth Search v1 common names,
# CDSE's resolution-suffixed keys).
BAND_ASSET_KEYS: dict[str, list[str]] = {
    "B01": ["coastal"],
    "B02": ["blue"],
    "B03": ["green"],
    "B04": ["red"],
    "B05": ["rededge1"],
    "B06": ["rededge2"],
    "B07": ["rededge3"],
    "B08": ["nir"],
    "B8A": ["nir08", "B08A"],
    "B09": ["nir09"],
    "B10": ["cirrus"],
    "B11": ["swir16"],
    "B12": ["swir22"],
    "SCL": ["scl"],
    "AOT": ["aot"],
    "WVP": ["wvp"],
}
_RESOLUTION_SUFFIXES = ("_10m", "_20m", "_60m")
DEFAULT_SCALE = 0.0001
# L2A processing baseline 04.00+ adds 1000 to DN (ESA's BOA_ADD_OFFSET); used when an asset's
# raster:bands metadata does not give a scale.
BASELINE_OFFSET = -0.1

# Applied thread-locally around the reads, unless the user set the option already.
GDAL_HTTP_CONFIG = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.jp2,.JP2",
    "GDAL_HTTP_CONNECTTIMEOUT": "30",
    "GDAL_HTTP_TIMEOUT": "120",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "VSI_CACHE": "TRUE",
}
_PAGE_LIMIT = 100
_MAX_PAGES = 1000


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
PC_TOKEN_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token"


# --------------------------------------------------------------------------- search


def _stac_client(stac_url: str, policy: RetryPolicy) -> HttpClient:
    return HttpClient(f"The STAC API at {stac_url}", "STAC_URL", policy=policy)


def _on_status(stac_url: str, method: str, url: str):
    def message(resp) -> str:
        hint = ""
        if resp.status_code in (404, 405):
            hint = f" Is it the root URL of a STAC API (e.g. {DEFAULT_STAC_URL})?"
        elif resp.status_code in (401, 403):
            hint = " This STAC API needs credentials this plugin does not send; use a preset or an open API."
        return f"The STAC API at {stac_url} answered HTTP {resp.status_code} to {method} {url}: {resp.text[:200]}{hint}"

    return message


def search_items(
    stac_url: str,
    collection: str,
    bbox_wgs84: tuple[float, float, float, float],
    start: date,
    end: date,
    max_cloud: float | None,
    *,
    timeout: float | None = None,
    monitor: Monitor | None = None,
    client: HttpClient | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    headers: dict[str, str] | Callable[[], dict[str, str]] | None = None,
    retry_unauthorized: Callable[..., bool] | None = None,
    cql2: bool = False,
    accept: str = "application/geo+json, application/json",
) -> list[dict]:
    """All items of ``collection`` over the bbox between the dates (inclusive) with cloud cover <= max
    (``max_cloud`` None: no cloud filter, for collections whose items carry no ``eo:cloud_cover``).

    Follows the ``next`` links (POST with body, or GET) until the result is exhausted. A full
    page without a ``next`` link (Planetary Computer omits it at times, which would end the
    search silently at one page) is said in the log and the date range searched again in
    halves, down to single days. ``cql2`` sends the cloud filter as CQL2 (Sentinel Hub's
    catalogue) instead of the query extension; ``headers`` may be a function (a bearer token
    that can be refreshed by ``retry_unauthorized``); ``accept`` is the Accept header.
    """
    monitor = ensure_monitor(monitor)
    if timeout is not None:
        policy = RetryPolicy(**{**policy.__dict__, "timeout": timeout})
    own_client = client is None
    client = client or _stac_client(stac_url, policy)

    def pages(first: date, last: date) -> tuple[list[dict], bool]:
        body: dict = {
            "collections": [collection],
            "bbox": [float(v) for v in bbox_wgs84],
            "datetime": f"{first.isoformat()}T00:00:00Z/{last.isoformat()}T23:59:59Z",
            "limit": _PAGE_LIMIT,
        }
        if max_cloud is not None and cql2:
            body.update({"filter": f"eo:cloud_cover <= {max_cloud:g}", "filter-lang": "cql2-text"})
        elif max_cloud is not None:
            body["query"] = {"eo:cloud_cover": {"lte": max_cloud}}
        request = {"Accept": accept}
        return _follow_pages(client, stac_url, body, lambda: {**request, **(headers() if callable(headers) else (headers or {}))}, monitor, retry_unauthorized)

    def split(first: date, last: date) -> list[dict]:
        items, truncated = pages(first, last)
        if not truncated:
            return items
        if first >= last:
            raise LandCoverError(
                f"The STAC API at {stac_url} answered a full page of {len(items)} items for {first} without a link to the next "
                "page, so not all items of that day can be listed; choose a smaller area or another STAC API.",
                client.parameter,
            )
        mid = first + (last - first) // 2
        monitor.info(
            f"The STAC API at {stac_url} answered a full page of {len(items)} items for {first}..{last} without a 'next' link "
            f"(the search would end there silently): searching {first}..{mid} and {mid + timedelta(days=1)}..{last} separately."
        )
        return split(first, mid) + split(mid + timedelta(days=1), last)

    try:
        found = {item.get("id"): item for item in split(start, end)}
    finally:
        if own_client:
            client.close()
    # Servers without the query extension ignore the cloud filter: apply it here too.
    return [item for item in found.values() if max_cloud is None or cloud_cover(item) <= max_cloud]


def _follow_pages(
    client: HttpClient,
    stac_url: str,
    body: dict,
    headers: Callable[[], dict[str, str]],
    monitor: Monitor,
    retry_unauthorized: Callable[..., bool] | None,
) -> tuple[list[dict], bool]:
    """The items of one search through all its ``next`` links, and whether the last page looked cut
    short: as many items as the limit asked, no ``next`` link, and no ``numberMatched`` saying that was all."""
    url, method = join_url(stac_url, "search"), "POST"
    found: dict[str, dict] = {}
    seen: set[str] = set()
    for _ in range(_MAX_PAGES):
        monitor.check()
        resp = client.request(
            method,
            url,
            json=body if method == "POST" else None,
            headers=headers,
            monitor=monitor,
            on_status=_on_status(stac_url, method, url),
            retry_unauthorized=retry_unauthorized,
        )
        try:
            page = resp.json()
        except ValueError:
            page = None
        if not isinstance(page, dict) or not isinstance(page.get("features"), list):
            raise LandCoverError(f"{url} did not answer with a STAC item list; is {stac_url} the root URL of a STAC API?", client.parameter)
        for item in page["features"]:
            found.setdefault(item.get("id"), item)
        nxt = next((link for link in page.get("links") or [] if link.get("rel") == "next"), None)
        if nxt is None or not nxt.get("href"):
            matched = page.get("numberMatched", (page.get("context") or {}).get("matched"))
            full = len(page["features"]) == _PAGE_LIMIT  # more than asked: a server that does not page at all
            return list(found.values()), full and not (isinstance(matched, int) and matched <= len(found))
        if not page["features"]:
            break
        method = str(nxt.get("method") or "GET").upper()
        url = nxt["href"]
        if method == "POST":
            new_body = nxt.get("body")
            body = {**body, **(new_body or {})} if nxt.get("merge") else (new_body if new_body is not None else body)
        key = json.dumps([method, url, body if method == "POST" else None], sort_keys=True, default=str)
        if key in seen:  # a server that keeps answering the same page
            break
        seen.add(key)
    return list(found.values()), False


# --------------------------------------------------------------------------- signing


class PlanetaryComputerSigner:
    """Appends a Planetary Computer SAS token to asset hrefs; one token per collection, renewed
    before it expires (``msft:expiry``) or when storage refuses it."""

    def __init__(self, collection: str, token_url: str = PC_TOKEN_URL, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self.collection = collection
        self.token_url = token_url.rstrip("/")
        self._client = HttpClient(f"The Planetary Computer token endpoint {self.token_url}", "PRESET", policy=policy, secrets=lambda: [self._token or ""])
        self._token: str | None = None
        self._expiry = 0.0
        self._lock = threading.Lock()
        self.fetches = 0

    def token(self, monitor: Monitor | None = None) -> str:
        with self._lock:
            if self._token is None or time.time() > self._expiry - 300:
                data = self._client.get_json(f"{self.token_url}/{quote(self.collection)}", monitor=monitor)
                token = data.get("token") if isinstance(data, dict) else None
                if not token:
                    raise HttpError(f"{self._client.name} answered without a token.", "PRESET")
                self._token = str(token).lstrip("?")
                self.fetches += 1
                expiry = data.get("msft:expiry")
                try:
                    when = datetime.fromisoformat(str(expiry).replace("Z", "+00:00"))
                    self._expiry = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
                except ValueError:
                    self._expiry = time.time() + 600
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def sign(self, href: str, monitor: Monitor | None = None) -> str:
        if not href.startswith(("http://", "https://")):
            return href
        return href + ("&" if "?" in href else "?") + self.token(monitor)

    def secrets(self) -> list[str]:
        return [self._token] if self._token else []


# --------------------------------------------------------------------------- reading


@contextlib.contextmanager
def gdal_config(options: dict[str, str]) -> Iterator[None]:
    """Set GDAL options for this thread only and restore them; the user's own settings win."""
    saved: dict[str, str | None] = {}
    for key, value in options.items():
        if gdal.GetConfigOption(key) is not None and gdal.GetThreadLocalConfigOption(key, None) is None:
            continue
        saved[key] = gdal.GetThreadLocalConfigOption(key, None)
        gdal.SetThreadLocalConfigOption(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            gdal.SetThreadLocalConfigOption(key, value)


def gdal_path(href: str) -> str:
    if href.startswith("s3://"):
        return "/vsis3/" + href[5:]
    if href.startswith(("http://", "https://")):
        return "/vsicurl/" + href
    return href  # a local path or a GDAL virtual path already


def find_asset_key(item: dict, band: str) -> str:
    """The key of the item's asset for a Sentinel-2 band: the band name, its common name or ``<band>_<res>m``."""
    assets = item.get("assets") or {}
    by_key = {k.lower(): k for k, v in assets.items() if isinstance(v, dict) and v.get("href")}
    keys = [band, *BAND_ASSET_KEYS.get(band.upper(), [])]
    keys += [band + suffix for suffix in _RESOLUTION_SUFFIXES]
    for key in keys:
        if key.lower() in by_key:
            return by_key[key.lower()]
    raise LandCoverError(
        f"STAC item {item.get('id')} has no asset for band {band} (its assets: {', '.join(sorted(assets)) or 'none'}); "
        "remove the band or choose another collection.",
        "BANDS",
    )


def find_asset(item: dict, band: str) -> dict:
    """The item's asset for a Sentinel-2 band (see ``find_asset_key``)."""
    return item["assets"][find_asset_key(item, band)]


# --------------------------------------------------------------------------- scaling


@dataclass(frozen=True)
class Scaling:
    """How an asset's numbers become physical values: ``value = DN * scale + offset``, DN ``nodata`` = no data.

    ``reason`` says in words why these numbers were chosen (it goes into the download log).
    ``check_pixels``: the metadata cannot be trusted (an Earth Search ``sentinel-2-l2a`` item
    flagged as not offset-corrected although its baseline is >= 04.00); ``read_item`` then looks
    at the pixels before applying the offset (``confirm_offset``).
    """

    scale: float
    offset: float
    nodata: float
    reason: str
    check_pixels: bool = False

    def apply(self, dn: np.ndarray) -> np.ndarray:
        return dn * np.float32(self.scale) + np.float32(self.offset)


# The metadata properties that say an Earth Search v1 sentinel-2-l2a item's COGs had the -1000 DN
# offset subtracted (the second is the name used before 2023).
BOA_FLAGS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")
# ESA quantifies AOT and WVP by 1000 without offset (MTD_MSIL2A.xml AOT_/WVP_QUANTIFICATION_VALUE).
_ATMOSPHERE_SCALE = 0.001
# A window whose median DN is below this in some reflectance band cannot still carry ESA's +1000:
# its median reflectance would be below -0.01 (a margin over 1000 for noise on dark water).
_SHIFTED_DN = 900.0
_MIN_CHECK_PIXELS = 50


def processing_baseline(item: dict) -> str | None:
    """The item's processing baseline: ``s2:processing_baseline`` (STAC 1.0), ``processing:version``
    (STAC 1.1, CDSE) or the ``_Nxxxx_`` part of the product URI or id."""
    props = item.get("properties") or {}
    for key in ("s2:processing_baseline", "processing:version"):
        if props.get(key):
            return str(props[key])
    for text in (props.get("s2:product_uri"), item.get("id")):
        match = re.search(r"_N(\d{2})(\d{2})_", str(text or ""))
        if match:
            return f"{match.group(1)}.{match.group(2)}"
    return None


def _baseline_shifts_dn(baseline: str | None) -> bool | None:
    """True from baseline 04.00 on (DN carry ESA's +1000), None when unknown."""
    try:
        return float(baseline) >= 4.0 if baseline else None
    except ValueError:
        return None


def _declared(asset: dict) -> tuple[float | None, float | None, float, str]:
    """(scale, offset, nodata, where) as the asset declares them: STAC 1.1 ``raster:scale``/
    ``raster:offset`` on the asset or its ``bands``, else STAC 1.0 ``raster:bands``."""
    rb = (asset.get("raster:bands") or [None])[0]
    rb = rb if isinstance(rb, dict) else {}
    band = (asset.get("bands") or [None])[0]
    band = band if isinstance(band, dict) else {}
    nodata = next((d.get("nodata") for d in (asset, band, rb) if d.get("nodata") is not None), 0)
    for holder, where in ((asset, "asset raster:scale/raster:offset (STAC 1.1)"), (band, "bands raster:scale/raster:offset (STAC 1.1)")):
        if "raster:scale" in holder or "raster:offset" in holder:
            return holder.get("raster:scale"), holder.get("raster:offset"), float(nodata), where
    if "scale" in rb or "offset" in rb:
        return rb.get("scale"), rb.get("offset"), float(nodata), "raster:bands scale/offset (STAC 1.0)"
    return None, None, float(nodata), ""


def scaling(item: dict, key: str) -> Scaling:
    """The scale, offset and no-data DN of asset ``key`` of a Sentinel-2 STAC item, and why.

    The rules (README, Data sources):

    * SCL: classes, read as they are. AOT/WVP: DN / 1000, as ESA quantifies them (CDSE items
      declare 0.0001/-0.1 for them, which is wrong).
    * Earth Search ``sentinel-2-l2a`` (items carry ``earthsearch:boa_offset_applied``): its
      COGs from baseline 04.00 on had the -1000 offset subtracted, yet ``raster:bands`` still
      says offset -0.1. Flag true: the offset is NOT applied again (the real pixels of such
      items in tests/data confirm it). Flag false with baseline >= 04.00: the offset is applied,
      but the flag is known to be false on some items whose pixels were corrected (earth-search
      issues #66, #71; cirrus-earth-search #33), so ``check_pixels`` asks ``read_item`` to look.
    * Otherwise what the item declares: STAC 1.1 asset ``raster:scale``/``raster:offset`` (CDSE),
      STAC 1.0 ``raster:bands`` (Earth Search ``sentinel-2-c1-l2a``, whose DN keep ESA's +1000).
    * Nothing declared (Planetary Computer): DN × 0.0001, minus 0.1 from baseline 04.00 on
      (ESA's BOA_ADD_OFFSET / RADIO_ADD_OFFSET of -1000), no offset before.
    """
    asset = (item.get("assets") or {})[key]
    props = item.get("properties") or {}
    scale, offset, nodata, where = _declared(asset)
    base = re.sub(r"_\d+m$", "", key.lower())
    if base == "scl":
        return Scaling(1.0, 0.0, nodata, "scene classes, used as they are")
    if base in ("aot", "wvp"):
        told = "" if (scale, offset or 0) == (_ATMOSPHERE_SCALE, 0) or scale is None else f"; the item's {scale:g}/{offset or 0:g} is not followed"
        return Scaling(_ATMOSPHERE_SCALE, 0.0, nodata, f"{base.upper()} is quantified by 1000 without offset (ESA product XML){told}")
    baseline = processing_baseline(item)
    shifted = _baseline_shifts_dn(baseline)
    scale = float(scale) if scale is not None else DEFAULT_SCALE
    flag_key = next((k for k in BOA_FLAGS if k in props), None)
    if flag_key and props[flag_key] is True:
        return Scaling(
            scale, 0.0, nodata,
            f"{flag_key} is true (baseline {baseline}): Earth Search already subtracted the 1000 DN offset, so the "
            f"declared offset {float(offset or 0):g} is not applied again",
        )
    if flag_key and shifted:
        told = float(offset) if offset is not None else BASELINE_OFFSET
        return Scaling(
            scale, told, nodata,
            f"{flag_key} is false with baseline {baseline} >= 04.00: offset {told:g} applied unless the pixels show it was "
            "already subtracted (Earth Search mis-flags some such items)",
            check_pixels=True,
        )
    if where:
        return Scaling(scale, float(offset or 0.0), nodata, f"declared by the item: {where}")
    if shifted is None:
        return Scaling(scale, 0.0, nodata, "no scale/offset declared and no processing baseline known: DN × 0.0001, no offset")
    if shifted:
        return Scaling(scale, BASELINE_OFFSET, nodata, f"no scale/offset declared; baseline {baseline} >= 04.00 adds 1000 to DN (ESA's -1000 ADD_OFFSET)")
    return Scaling(scale, 0.0, nodata, f"no scale/offset declared; baseline {baseline} < 04.00 has no DN offset")


def confirm_offset(scalings: dict[str, Scaling], dn: dict[str, np.ndarray]) -> dict[str, Scaling]:
    """Settle the ``check_pixels`` scalings of one item from its pixels (DN, NaN = no data).

    A band whose median DN in the window is below 900 would have a median reflectance below
    -0.01 if the offset were still in the pixels: no real surface has that, so the offset was
    already subtracted. The test only ever proves that; when it proves nothing (a bright or
    cloudy window), the flag is followed.
    """
    doubtful = [b for b, s in scalings.items() if s.check_pixels]
    if not doubtful:
        return scalings
    medians = {b: float(np.nanmedian(dn[b])) for b in doubtful if np.count_nonzero(np.isfinite(dn[b])) >= _MIN_CHECK_PIXELS}
    low = {b: m for b, m in medians.items() if m < _SHIFTED_DN}
    out = dict(scalings)
    for band in doubtful:
        s = scalings[band]
        if low:
            proof, median = min(low.items(), key=lambda kv: kv[1])
            outcome = f"the median DN of {proof} is {median:.0f} < 900 (reflectance below -0.01 otherwise), so the offset was already subtracted: none applied"
            out[band] = Scaling(s.scale, 0.0, s.nodata, f"{s.reason}; pixels: {outcome}")
        else:
            out[band] = Scaling(s.scale, s.offset, s.nodata, f"{s.reason}; pixels: no band's median DN is below 900, offset {s.offset:g} applied")
    return out


def load_item(path: str) -> dict:
    """A STAC item from a JSON file, its relative asset hrefs made absolute against the file's folder."""
    try:
        with open(path, encoding="utf-8") as f:
            item = json.load(f)
    except (OSError, ValueError) as exc:
        raise LandCoverError(f"{path} is not a readable STAC item JSON file: {exc}", "INPUT") from None
    if not isinstance(item, dict) or not isinstance(item.get("assets"), dict):
        raise LandCoverError(f"{path} is not a STAC item (no assets).", "INPUT")
    folder = os.path.dirname(os.path.abspath(path))
    for asset in item["assets"].values():
        href = asset.get("href") if isinstance(asset, dict) else None
        if href and "://" not in href and not href.startswith("/vsi") and not os.path.isabs(href):
            asset["href"] = os.path.normpath(os.path.join(folder, href))
    return item


def _http_status(errors: list[str]) -> int | None:
    for message in errors:
        for marker in ("HTTP response code: ", "HTTP error code : ", "HTTP error code: "):
            if marker in message:
                digits = message.split(marker, 1)[1][:3]
                if digits.isdigit():
                    return int(digits)
    return None


def _warp_once(path: str, grid: Grid, categorical: bool, nodata: float) -> tuple[np.ndarray | None, list[str]]:
    minx, miny, maxx, maxy = grid.bounds
    options = gdal.WarpOptions(
        format="MEM",
        outputBounds=(minx, miny, maxx, maxy),
        width=grid.width,
        height=grid.height,
        dstSRS=grid.crs.to_wkt(),
        resampleAlg="near" if categorical else "bilinear",
        srcNodata=nodata if not math.isnan(nodata) else "nan",
        dstNodata="nan",
        outputType=gdal.GDT_Float32,
        overviewLevel="NONE",
        warpOptions=["INIT_DEST=NO_DATA"],
        multithread=False,
    )
    with gdal_errors() as errors:
        data = src = ds = None
        try:
            src = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_READONLY | gdal.OF_VERBOSE_ERROR)
            ds = gdal.Warp("", src, options=options) if src is not None else None
            data = ds.GetRasterBand(1).ReadAsArray() if ds is not None else None
        except (RuntimeError, TypeError) as exc:
            errors.append(str(exc))
        finally:
            ds = src = None
    return data, errors


def read_asset(
    href: str,
    grid: Grid,
    *,
    categorical: bool = False,
    nodata: float = 0.0,
    what: str = "",
    policy: RetryPolicy = DEFAULT_POLICY,
    config: dict[str, str] | None = None,
    signer: PlanetaryComputerSigner | None = None,
    monitor: Monitor | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Warp one COG band onto ``grid`` as float32 DN with NaN outside the data; reads only that window.

    GDAL retries 429/5xx itself (GDAL_HTTP_MAX_RETRY/GDAL_HTTP_RETRY_DELAY); on top of that a
    failed read (dropped connection, truncated answer) is retried with backoff after clearing
    GDAL's cache of that URL. 4xx answers fail at once, except 403 with a signer, which gets
    a fresh token once.
    """
    options = {
        **GDAL_HTTP_CONFIG,
        "GDAL_HTTP_MAX_RETRY": str(min(policy.retries, 4)),
        "GDAL_HTTP_RETRY_DELAY": f"{max(policy.backoff, 0.01):g}",
        "GDAL_HTTP_TIMEOUT": f"{max(1, int(policy.timeout * 2))}",
        **(config or {}),
    }
    refreshed = False
    attempt = 0
    give_up = time.monotonic() + policy.deadline  # one deadline for the read and its retries
    while True:
        url = signer.sign(href, monitor) if signer is not None else href
        path = gdal_path(url)
        with gdal_config(options):
            data, errors = _warp_once(path, grid, categorical, nodata)
        if data is not None and not errors:
            return data.astype(np.float32, copy=False)
        if path.startswith("/vsi"):
            gdal.VSICurlPartialClearCache(path)
        status = _http_status(errors)
        detail = "; ".join(dict.fromkeys(errors))[:300] or "unknown GDAL error"
        if signer is not None:
            for secret in signer.secrets():
                detail = detail.replace(secret, "***")
            detail = detail.replace(url, href)
        if status == 403 and signer is not None and not refreshed:
            signer.invalidate()
            refreshed = True
            continue
        permanent = status is not None and 400 <= status < 500 and status not in (408, 429)
        out_of_time = time.monotonic() + policy.delay(attempt) >= give_up
        if not path.startswith("/vsi") or permanent or attempt >= policy.retries or out_of_time:
            tries = f" after {attempt + 1} attempts" if attempt else ""
            raise LandCoverError(f"Could not read {href}{f' ({what})' if what else ''}{tries}: {detail}", "STAC_URL")
        if monitor is not None:
            monitor.info(f"Reading {what or href} failed ({detail[:120]}); retry {attempt + 1}/{policy.retries}")
        sleep_or_cancel(policy.delay(attempt), monitor, cancel)
        attempt += 1


def read_item(
    item: dict,
    grid: Grid,
    bands: list[str],
    *,
    keys: list[str] | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    config: dict[str, str] | None = None,
    signer: PlanetaryComputerSigner | None = None,
    monitor: Monitor | None = None,
    cancel: threading.Event | None = None,
) -> tuple[np.ndarray, dict[str, Scaling]]:
    """(len(bands), H, W) float32 physical values of one STAC item on ``grid`` and the scaling of each band.

    The read path of the STAC source, usable for any item: hrefs may be URLs, ``s3://`` or
    local paths (``load_item`` makes relative ones absolute). ``keys``: the asset keys of the
    bands when already found (``find_asset_key``). SCL stays as classes.
    """
    keys = keys or [find_asset_key(item, b) for b in bands]
    scalings = {band: scaling(item, key) for band, key in zip(bands, keys)}
    dn: dict[str, np.ndarray] = {}
    for band, key in zip(bands, keys):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled by the user")
        dn[band] = read_asset(
            item["assets"][key]["href"],
            grid,
            categorical=band in CATEGORICAL_BANDS,
            nodata=scalings[band].nodata,
            what=f"band {band} of item {item.get('id')}",
            policy=policy,
            config=config,
            signer=signer,
            monitor=monitor,
            cancel=cancel,
        )
    scalings = confirm_offset(scalings, dn)
    out = np.empty((len(bands), grid.height, grid.width), dtype=np.float32)
    for bi, band in enumerate(bands):
        out[bi] = dn[band] if band in CATEGORICAL_BANDS else scalings[band].apply(dn[band])
    return out, scalings


def describe_scalings(scalings: dict[str, Scaling]) -> list[str]:
    """One line per group of bands scaled alike: ``B02,B04: DN × 0.0001 + 0 (reason)``."""
    groups: dict[Scaling, list[str]] = {}
    for band, s in scalings.items():
        groups.setdefault(s, []).append(band)
    return [f"{','.join(b)}: DN × {s.scale:g} {'-' if s.offset < 0 else '+'} {abs(s.offset):g} ({s.reason})" for s, b in groups.items()]


# --------------------------------------------------------------------------- the source


class StacSource(Source):
    """Any STAC API whose items have one COG (or other GDAL-readable file) per band."""

    kind = "stac"
    parameter = "STAC_URL"
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
                raise LandCoverError(f"Unknown STAC preset {preset!r}; choose one of {', '.join(PRESETS)}.", "PRESET")
            p = PRESETS[preset]
            url, collection = url or p.url, collection or p.collection
            self.gdal_config = dict(p.gdal_config)
            signing = p.signing
            if p.note == "cdse-s3" and not (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")):
                raise LandCoverError(
                    "The CDSE STAC preset reads assets from CDSE's S3 (eodata): set the environment variables "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to your CDSE S3 keys (see the README, Data sources).",
                    "PRESET",
                )
        else:
            self.gdal_config = {"AWS_NO_SIGN_REQUEST": "YES"} if "earth-search" in url else {}
        self.url = url.rstrip("/") if url else url
        if not self.url:
            raise LandCoverError("Give a STAC API URL or choose a preset.", "STAC_URL")
        self.collection = collection
        self.preset = preset
        self.policy = policy
        self.signer = PlanetaryComputerSigner(collection, token_url, policy) if signing == "planetary-computer" else None
        self.client = _stac_client(self.url, policy)
        self._assets: dict[str, list[str]] = {}
        self.scalings: dict[str, dict[str, Scaling]] = {}  # item id -> band -> how it was scaled
        self._logged: set[tuple[str, ...]] = set()
        self._log_lock = threading.Lock()

    def describe(self) -> str:
        return f"{self.collection} at {self.url}"

    def close(self) -> None:
        self.client.close()
        if self.signer is not None:
            self.signer._client.close()

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

    def read(self, scene: Scene, grid: Grid, bands: list[str], monitor: Monitor, cancel: threading.Event) -> np.ndarray:
        data, scalings = read_item(
            scene.payload,
            grid,
            bands,
            keys=self._assets.get(scene.id),
            policy=self.policy,
            config=self.gdal_config,
            signer=self.signer,
            monitor=monitor,
            cancel=cancel,
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
