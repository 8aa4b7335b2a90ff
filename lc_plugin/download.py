"""Download Sentinel-2 L2A time stacks for grid patches: STAC search + windowed COG reads.

Why this way: a STAC API (Earth Search by default) lists the scenes; each band is read
through GDAL's ``/vsicurl/`` straight onto the patch's pixel grid, so only the HTTP byte ranges
of the COG tiles under the patch are fetched, never whole 100 km scenes, and the result is
already reprojected and resampled to the grid the rest of the chain uses.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from datetime import date

import numpy as np
import requests
from osgeo import gdal
from rasterio.warp import transform_bounds

from .errors import LandCoverError
from .grid import Patch, read_patches
from .monitor import Monitor, ensure_monitor
from .rasters import Grid, TimeStack, parse_date, write_stack

DEFAULT_STAC_URL = "https://earth-search.aws.element84.com/v1"
DEFAULT_COLLECTION = "sentinel-2-l2a"
DEFAULT_BANDS = ["B02", "B03", "B04", "B08", "B11", "B12", "SCL"]

# Sentinel-2 band -> asset keys besides the band name itself (Earth Search v1 common names).
BAND_ASSET_KEYS: dict[str, list[str]] = {
    "B01": ["coastal"], "B02": ["blue"], "B03": ["green"], "B04": ["red"], "B05": ["rededge1"],
    "B06": ["rededge2"], "B07": ["rededge3"], "B08": ["nir"], "B8A": ["nir08", "B08A"], "B09": ["nir09"],
    "B10": ["cirrus"], "B11": ["swir16"], "B12": ["swir22"], "SCL": ["scl"], "AOT": ["aot"], "WVP": ["wvp"],
}
CATEGORICAL_BANDS = {"SCL"}
DEFAULT_SCALE = 0.0001
# L2A processing baseline 04.00+ adds 1000 to DN (ESA's BOA_ADD_OFFSET); used only when an asset
# has no raster:bands metadata at all.
BASELINE_OFFSET = -0.1

# Applied thread-locally around the reads, unless the user set the option already.
GDAL_HTTP_CONFIG = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
    "GDAL_HTTP_MAX_RETRY": "4",
    "GDAL_HTTP_RETRY_DELAY": "2",
    "GDAL_HTTP_CONNECTTIMEOUT": "30",
    "GDAL_HTTP_TIMEOUT": "120",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "VSI_CACHE": "TRUE",
    "AWS_NO_SIGN_REQUEST": "YES",
}
_PAGE_LIMIT = 100
_MAX_PAGES = 1000


# --------------------------------------------------------------------------- search


def _stac_request(session: requests.Session, method: str, url: str, body: dict | None, stac_url: str, timeout: float) -> dict:
    try:
        resp = session.request(method, url, json=body if method == "POST" else None, timeout=timeout,
                               headers={"Accept": "application/geo+json, application/json"})
    except requests.exceptions.Timeout:
        raise LandCoverError(
            f"The STAC API at {stac_url} could not be reached: no answer within {timeout:g} s. "
            "Check the URL and the internet connection, or try again later.", "STAC_URL") from None
    except requests.exceptions.RequestException as exc:
        reason = str(exc).split(": ")[-1][:150]
        raise LandCoverError(
            f"The STAC API at {stac_url} could not be reached ({type(exc).__name__}: {reason}). "
            "Check the URL and the internet connection.", "STAC_URL") from None
    if resp.status_code >= 400:
        hint = " Is it the root URL of a STAC API (e.g. " + DEFAULT_STAC_URL + ")?" if resp.status_code in (404, 405) else ""
        raise LandCoverError(
            f"The STAC API at {stac_url} answered HTTP {resp.status_code} to {method} {url}: {resp.text[:200]}{hint}", "STAC_URL")
    try:
        page = resp.json()
    except ValueError:
        page = None
    if not isinstance(page, dict) or not isinstance(page.get("features"), list):
        raise LandCoverError(
            f"{url} did not answer with a STAC item list; is {stac_url} the root URL of a STAC API?", "STAC_URL")
    return page


def search_items(
    stac_url: str,
    collection: str,
    bbox_wgs84: tuple[float, float, float, float],
    start: date,
    end: date,
    max_cloud: float,
    *,
    timeout: float = 60,
    monitor: Monitor | None = None,
) -> list[dict]:
    """All items of ``collection`` over the bbox between the dates (inclusive) with cloud cover <= max.

    Follows the ``next`` links (POST with body, or GET) until the result is exhausted.
    """
    monitor = ensure_monitor(monitor)
    url = stac_url.rstrip("/") + "/search"
    body: dict | None = {
        "collections": [collection],
        "bbox": [float(v) for v in bbox_wgs84],
        "datetime": f"{start.isoformat()}T00:00:00Z/{end.isoformat()}T23:59:59Z",
        "query": {"eo:cloud_cover": {"lte": max_cloud}},
        "limit": _PAGE_LIMIT,
    }
    method = "POST"
    found: dict[str, dict] = {}
    seen: set[str] = set()
    with requests.Session() as session:
        for _ in range(_MAX_PAGES):
            monitor.check()
            page = _stac_request(session, method, url, body, stac_url, timeout)
            for item in page["features"]:
                found.setdefault(item.get("id"), item)
            nxt = next((link for link in page.get("links") or [] if link.get("rel") == "next"), None)
            if nxt is None or not page["features"] or not nxt.get("href"):
                break
            method = str(nxt.get("method") or "GET").upper()
            url = nxt["href"]
            if method == "POST":
                new_body = nxt.get("body")
                body = {**(body or {}), **(new_body or {})} if nxt.get("merge") else (new_body if new_body is not None else body)
            key = json.dumps([method, url, body if method == "POST" else None], sort_keys=True, default=str)
            if key in seen:  # a server that keeps answering the same page
                break
            seen.add(key)
    # Servers without the query extension ignore the cloud filter: apply it here too.
    return [item for item in found.values() if _cloud_cover(item) <= max_cloud]


def _cloud_cover(item: dict) -> float:
    """The item's eo:cloud_cover, 0 when the catalogue does not say."""
    value = (item.get("properties") or {}).get("eo:cloud_cover")
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


# --------------------------------------------------------------------------- reading


@contextlib.contextmanager
def _gdal_config(options: dict[str, str]) -> Iterator[None]:
    """Set GDAL options for this thread only and restore them; the user's own settings win."""
    saved: dict[str, str | None] = {}
    for key, value in options.items():
        if gdal.GetConfigOption(key) is not None:
            continue
        saved[key] = gdal.GetThreadLocalConfigOption(key, None)
        gdal.SetThreadLocalConfigOption(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            gdal.SetThreadLocalConfigOption(key, value)


@contextlib.contextmanager
def _gdal_errors() -> Iterator[list[str]]:
    """Collect GDAL error messages instead of letting them reach stderr."""
    messages: list[str] = []

    def handler(level: int, _code: int, message: str) -> None:
        if level >= gdal.CE_Failure:
            messages.append(str(message).strip())

    gdal.PushErrorHandler(handler)
    try:
        yield messages
    finally:
        gdal.PopErrorHandler()


def _gdal_path(href: str) -> str:
    if href.startswith("s3://"):
        return "/vsis3/" + href[5:]
    if href.startswith(("http://", "https://")):
        return "/vsicurl/" + href
    return href  # a local path or a GDAL virtual path already


def find_asset(item: dict, band: str) -> dict:
    """The item's asset for a Sentinel-2 band, matching the band name or its common-name key."""
    assets = item.get("assets") or {}
    by_key = {k.lower(): v for k, v in assets.items()}
    for key in [band, *BAND_ASSET_KEYS.get(band.upper(), [])]:
        if key.lower() in by_key and by_key[key.lower()].get("href"):
            return by_key[key.lower()]
    raise LandCoverError(
        f"STAC item {item.get('id')} has no asset for band {band} (its assets: {', '.join(sorted(assets)) or 'none'}); "
        "remove the band or choose another collection.", "BANDS")


def _scaling(item: dict, asset: dict) -> tuple[float, float, float]:
    """(scale, offset, nodata) of an asset: its raster:bands, else Sentinel-2 L2A defaults."""
    rb = (asset.get("raster:bands") or [None])[0]
    if isinstance(rb, dict):
        scale, offset = rb.get("scale", DEFAULT_SCALE), rb.get("offset", 0.0)
    else:
        rb = {}
        baseline = str((item.get("properties") or {}).get("s2:processing_baseline") or "")
        try:
            offset = BASELINE_OFFSET if baseline and float(baseline) >= 4.0 else 0.0
        except ValueError:
            offset = 0.0
        scale = DEFAULT_SCALE
    nodata = rb.get("nodata", 0)
    nodata = 0.0 if nodata is None else float(nodata)
    return float(scale if scale is not None else DEFAULT_SCALE), float(offset or 0.0), nodata


def read_asset(href: str, grid: Grid, *, categorical: bool = False, nodata: float = 0.0, what: str = "") -> np.ndarray:
    """Warp one COG band onto ``grid`` as float32 DN with NaN outside the data; reads only that window."""
    minx, miny, maxx, maxy = grid.bounds
    options = gdal.WarpOptions(
        format="MEM", outputBounds=(minx, miny, maxx, maxy), width=grid.width, height=grid.height,
        dstSRS=grid.crs.to_wkt(), resampleAlg="near" if categorical else "bilinear",
        srcNodata=nodata if not math.isnan(nodata) else "nan", dstNodata="nan", outputType=gdal.GDT_Float32,
        overviewLevel="NONE", warpOptions=["INIT_DEST=NO_DATA"], multithread=False,
    )
    ds = None
    with _gdal_config(GDAL_HTTP_CONFIG), _gdal_errors() as errors:
        data = src = None
        try:
            src = gdal.OpenEx(_gdal_path(href), gdal.OF_RASTER | gdal.OF_READONLY | gdal.OF_VERBOSE_ERROR)
            ds = gdal.Warp("", src, options=options) if src is not None else None
            data = ds.GetRasterBand(1).ReadAsArray() if ds is not None else None
        except (RuntimeError, TypeError) as exc:
            errors.append(str(exc))
        finally:
            ds = src = None
    if data is None or errors:
        detail = "; ".join(dict.fromkeys(errors))[:300] or "unknown GDAL error"
        raise LandCoverError(f"Could not read {href}{f' ({what})' if what else ''}: {detail}", "STAC_URL")
    return data.astype(np.float32, copy=False)


def _item_date(item: dict) -> date:
    props = item.get("properties") or {}
    text = props.get("datetime") or props.get("start_datetime")
    if not text:
        raise LandCoverError(f"STAC item {item.get('id')} has no datetime.", "STAC_URL")
    return parse_date(text)


def _as_date(value: date | str, parameter: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return parse_date(str(value))
    except ValueError:
        raise LandCoverError(f"{value!r} is not a date (expected YYYY-MM-DD).", parameter) from None


def download_patch(
    patch: Patch,
    out_path: str,
    *,
    start: date,
    end: date,
    stac_url: str = DEFAULT_STAC_URL,
    collection: str = DEFAULT_COLLECTION,
    max_cloud: float = 80.0,
    bands: list[str] = DEFAULT_BANDS,
    monitor: Monitor | None = None,
) -> dict:
    """Write the patch's time stack (reflectance 0-1, SCL classes, NaN = no data); return a summary.

    Items of the same calendar date (neighbouring tiles or orbits) are merged into one frame,
    the least cloudy item first; pixels outside every footprint stay NaN.
    """
    monitor = ensure_monitor(monitor)
    start, end = _as_date(start, "START_DATE"), _as_date(end, "END_DATE")
    if start > end:
        raise LandCoverError(f"The start date {start} is after the end date {end}.", "END_DATE")
    if not 0 <= max_cloud <= 100:
        raise LandCoverError(f"The maximum cloud cover must be between 0 and 100 %, got {max_cloud}.", "MAX_CLOUD")
    bands = list(bands)
    if not bands or len(set(bands)) != len(bands):
        raise LandCoverError(f"Choose at least one band, each once (got {bands}).", "BANDS")
    grid = patch.grid

    bbox = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
    items = search_items(stac_url, collection, bbox, start, end, max_cloud, monitor=monitor.sub(0.0, 0.05))
    if not items:
        raise LandCoverError(
            f"No scenes of {collection} at {stac_url} over patch {patch.id} between {start} and {end} with cloud cover "
            f"≤ {max_cloud:g} %; widen the date range or raise the maximum cloud cover.", "START_DATE")

    by_date: dict[date, list[dict]] = {}
    for item in items:
        by_date.setdefault(_item_date(item), []).append(item)
    dates = sorted(by_date)
    # Resolve every asset first, so a missing band fails before any download.
    assets = {item["id"]: [find_asset(item, b) for b in bands] for item in items}

    progress = monitor.sub(0.05, 0.97)
    data = np.full((len(dates), len(bands), grid.height, grid.width), np.nan, dtype=np.float32)
    used_ids: list[list[str]] = []
    baselines: list[list[str | None]] = []
    done, total = 0, len(items)
    for ti, day in enumerate(dates):
        frame = data[ti]
        ids: list[str] = []
        pbs: list[str | None] = []
        day_items = sorted(by_date[day], key=lambda i: (_cloud_cover(i), i["id"]))
        for item in day_items:
            if not np.isnan(frame).any():  # already complete: skip the other tiles of that day
                done += 1
                continue
            for bi, band in enumerate(bands):
                progress.update((done + bi / len(bands)) / total)
                asset = assets[item["id"]][bi]
                scale, offset, nodata = _scaling(item, asset)
                values = read_asset(asset["href"], grid, categorical=band in CATEGORICAL_BANDS, nodata=nodata,
                                    what=f"band {band} of item {item['id']}")
                if band not in CATEGORICAL_BANDS:
                    values = values * np.float32(scale) + np.float32(offset)
                fill = np.isnan(frame[bi]) & ~np.isnan(values)
                frame[bi][fill] = values[fill]
            ids.append(item["id"])
            pbs.append((item.get("properties") or {}).get("s2:processing_baseline"))
            done += 1
            progress.update(done / total)
        used_ids.append(ids)
        baselines.append(pbs)

    tags = {
        "SOURCE": "stac",
        "STAC_URL": stac_url,
        "COLLECTION": collection,
        "PATCH_ID": patch.id,
        "ITEM_IDS": json.dumps(used_ids),
        "PROCESSING_BASELINE": json.dumps(baselines),
    }
    monitor.check()
    write_stack(out_path, TimeStack(data, dates, bands, grid, tags))
    monitor.update(1.0)
    return {"path": out_path, "dates": [d.isoformat() for d in dates], "items": [i for ids in used_ids for i in ids]}


def download_patches(
    grid_path: str,
    out_dir: str,
    *,
    patch_ids: list[str] | None = None,
    layer: str | None = None,
    monitor: Monitor | None = None,
    **kwargs: object,
) -> list[str]:
    """Download every (or the chosen) patch of a grid to ``<out_dir>/<patch_id>.tif``.

    ``kwargs`` go to ``download_patch`` (start, end, stac_url, collection, max_cloud, bands).
    """
    monitor = ensure_monitor(monitor)
    patches = read_patches(grid_path, patch_ids, layer=layer)
    if not patches:
        raise LandCoverError(f"The patch grid {grid_path} has no patches.", "PATCHES")
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for i, patch in enumerate(patches):
        path = os.path.join(out_dir, f"{patch.id}.tif")
        monitor.info(f"Patch {patch.id} ({i + 1}/{len(patches)})")
        download_patch(patch, path, monitor=monitor.sub(i / len(patches), (i + 1) / len(patches)), **kwargs)
        paths.append(path)
    return paths
