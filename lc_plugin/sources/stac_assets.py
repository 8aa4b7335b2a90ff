"""Reading STAC assets: find a band's asset in an item, warp its window onto a patch grid.

Why through GDAL's ``/vsicurl/``: only the HTTP byte ranges of the COG tiles under the patch are
fetched (never overviews, never whole 100 km scenes), and the result is already reprojected and
resampled to the grid the rest of the chain uses (bilinear for reflectance, so 20 m and 60 m bands
are interpolated to 10 m; nearest for the SCL classes). The same reader serves local items and
SAFE band files (hrefs may be URLs, ``s3://`` or paths).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator

import numpy as np
from osgeo import gdal

from ..core.bands import CATEGORICAL_BANDS
from ..core.errors import InputError, ServiceError
from ..core.monitor import Monitor, ensure_monitor
from ..io.gdal_errors import gdal_errors
from ..io.http import DEFAULT_POLICY, RetryPolicy, sleep_or_cancel
from ..io.rasters import Grid
from .stac_scaling import Scaling, confirm_offset, scaling
from .stac_signing import PlanetaryComputerSigner

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
        for key, previous in saved.items():
            gdal.SetThreadLocalConfigOption(key, previous)


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
    raise InputError(
        f"STAC item {item.get('id')} has no asset for band {band} (its assets: {', '.join(sorted(assets)) or 'none'}); "
        "remove the band or choose another collection.",
        "bands",
    )


def find_asset(item: dict, band: str) -> dict:
    """The item's asset for a Sentinel-2 band (see ``find_asset_key``)."""
    return item["assets"][find_asset_key(item, band)]


def load_item(path: str) -> dict:
    """A STAC item from a JSON file, its relative asset hrefs made absolute against the file's folder."""
    try:
        with open(path, encoding="utf-8") as f:
            item = json.load(f)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not a readable STAC item JSON file: {exc}", "path") from None
    if not isinstance(item, dict) or not isinstance(item.get("assets"), dict):
        raise InputError(f"{path} is not a STAC item (no assets).", "path")
    folder = os.path.dirname(os.path.abspath(path))
    for asset in item["assets"].values():
        href = asset.get("href") if isinstance(asset, dict) else None
        if href and "://" not in href and not href.startswith("/vsi") and not os.path.isabs(href):
            asset["href"] = os.path.normpath(os.path.join(folder, href))
    return item


def _http_status(errors: list[str]) -> int | None:
    """The HTTP status GDAL's /vsicurl/ messages mention, if any."""
    for message in errors:
        for marker in ("HTTP response code: ", "HTTP error code : ", "HTTP error code: "):
            if marker in message:
                digits = message.split(marker, 1)[1][:3]
                if digits.isdigit():
                    return int(digits)
    return None


def _warp_once(path: str, grid: Grid, categorical: bool, nodata: float) -> tuple[np.ndarray | None, list[str]]:
    """One attempt at the windowed warp, and what GDAL said (the caller decides whether to retry)."""
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
            raise ServiceError(f"Could not read {href}{f' ({what})' if what else ''}{tries}: {detail}", "stac_url")
        if monitor is not None:
            monitor.info(f"Reading {what or href} failed ({detail[:120]}); retry {attempt + 1}/{policy.retries}")
        sleep_or_cancel(policy.delay(attempt), monitor)
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
) -> tuple[np.ndarray, dict[str, Scaling]]:
    """(len(bands), H, W) float32 physical values of one STAC item on ``grid`` and the scaling of each band.

    The read path of the STAC source, usable for any item: hrefs may be URLs, ``s3://`` or
    local paths (``load_item`` makes relative ones absolute). ``keys``: the asset keys of the
    bands when already found (``find_asset_key``). SCL stays as classes.
    """
    monitor = ensure_monitor(monitor)
    keys = keys or [find_asset_key(item, b) for b in bands]
    scalings = {band: scaling(item, key) for band, key in zip(bands, keys)}
    dn: dict[str, np.ndarray] = {}
    for band, key in zip(bands, keys):
        monitor.check()
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
        )
    scalings = confirm_offset(scalings, dn)
    out = np.empty((len(bands), grid.height, grid.width), dtype=np.float32)
    for bi, band in enumerate(bands):
        out[bi] = dn[band] if band in CATEGORICAL_BANDS else scalings[band].apply(dn[band])
    return out, scalings
