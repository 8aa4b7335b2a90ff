"""Sentinel-3 OLCI L1B EFR products found through a STAC API → the same 300 m stack as local products.

What the services publish, and so what this module relies on:

- An OLCI EFR STAC item lists the product's files one asset each, not the product as one file:
  stactools-packages/sentinel3 (the package that defines these items) gives the manifest (``safe-manifest``,
  ``xfdumanifest.xml``) and the 21 radiance files (``oa01-radiance`` … in its latest example,
  ``Oa01_radiance`` in older ones), but **not** ``geo_coordinates.nc``, ``tie_geometries.nc``,
  ``instrument_data.nc`` or ``qualityFlags.nc``, which the reflectance and georeferencing need.
- So each file is taken from the item's asset whose href names it (asset keys differ between catalogues,
  file names are fixed by the product format), else from the product's own table of contents: the
  manifest's ``dataObjectSection`` lists every file by a path relative to the manifest.
- Copernicus Data Space Ecosystem (``https://stac.dataspace.copernicus.eu/v1``, collection
  ``sentinel-3-olci-1-efr-ntc``) gives ``s3://eodata/…/<product>.SEN3/<file>.nc`` hrefs: they are read with
  GDAL's ``/vsis3/`` on CDSE's S3 endpoint with the user's CDSE S3 keys (``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY``), http(s) hrefs with the plugin's HTTP client (retries, truncation checks).

Each product's files are fetched whole (NetCDF-4 cannot be read by byte ranges here) into a per-run
folder laid out as a ``.SEN3`` product, read by ``lc_plugin.sources.olci`` and removed before the next one is
fetched; a product whose swath misses the patch is dropped after its ``geo_coordinates.nc``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

from rasterio.warp import transform_bounds

from ..core.atomic import atomic_output, check_not_input
from ..core.errors import DataError, InputError, ServiceError
from ..core.monitor import Monitor, ensure_monitor
from ..io.gdal_errors import gdal_errors
from ..io.http import DEFAULT_POLICY, HttpClient, HttpError, RetryPolicy
from ..io.rasters import Grid, TimeStack, write_stack
from . import olci
from .base import item_date
from .stac import PRESETS
from .stac_assets import gdal_config, gdal_path
from .stac_search import search_items

DEFAULT_STAC_URL = PRESETS["cdse"].url
DEFAULT_COLLECTION = "sentinel-3-olci-1-efr-ntc"
MANIFEST = "xfdumanifest.xml"
# CDSE's S3 endpoint (as the Sentinel-2 preset reads it); GDAL retries transient S3 failures itself.
S3_CONFIG = {**PRESETS["cdse"].gdal_config, "GDAL_HTTP_MAX_RETRY": "5", "GDAL_HTTP_RETRY_DELAY": "2", "GDAL_HTTP_TIMEOUT": "120"}
_CHUNK = 4 << 20


def _file_name(href: str) -> str:
    return os.path.basename(urlsplit(href).path)


def _hrefs_by_file(item: dict) -> dict[str, str]:
    return {
        _file_name(asset["href"]): asset["href"]
        for asset in (item.get("assets") or {}).values()
        if isinstance(asset, dict) and isinstance(asset.get("href"), str) and asset["href"]
    }


def _label(item: dict) -> str:
    return f"STAC item {item.get('id')}"


def manifest_href(item: dict) -> str:
    """The href of the item's ``xfdumanifest.xml`` asset."""
    href = _hrefs_by_file(item).get(MANIFEST)
    if href is None:
        keys = ", ".join(sorted(item.get("assets") or {})) or "none"
        raise InputError(
            f"{_label(item)} has no asset for the product manifest ({MANIFEST}; its assets: {keys}); "
            "is {argument} a Sentinel-3 OLCI Level-1B full-resolution collection?",
            "collection",
        )
    return href


def manifest_files(path: str) -> set[str]:
    """The file names the manifest's ``dataObjectSection`` lists beside it (``./geo_coordinates.nc`` …)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return set()
    hrefs = (el.get("href") or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "fileLocation")
    return {h[2:] if h.startswith("./") else h for h in hrefs} - {""}


def product_hrefs(item: dict, manifest_path: str) -> dict[str, str]:
    """Where each file the reader needs is: the item's asset naming it, else beside the manifest if the
    manifest lists it."""
    assets = _hrefs_by_file(item)
    listed = manifest_files(manifest_path)
    folder = manifest_href(item).rsplit("/", 1)[0]
    hrefs = {name: assets.get(name) or (f"{folder}/{name}" if name in listed else None) for name in olci.NEEDED_FILES}
    missing = [name for name, href in hrefs.items() if href is None]
    if missing:
        raise DataError(
            f"{_label(item)}: neither its assets nor its manifest list {', '.join(missing[:4])}"
            + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
            + "; it cannot be read as an OLCI EFR product.",
            "collection",
        )
    return {name: href for name, href in hrefs.items() if href is not None}


def _public(href: str) -> str:
    """The href without its query (which may hold a signature), for messages."""
    parts = urlsplit(href)
    return urlunsplit(parts._replace(query="", fragment=""))


class AssetFetcher:
    """Whole files from http(s) hrefs (the shared HTTP client) or s3:// hrefs (GDAL ``/vsis3/``), written atomically."""

    def __init__(self, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self._queries: set[str] = set()
        self.client = HttpClient("The asset server", "stac_url", policy=policy, secrets=lambda: self._queries)

    def close(self) -> None:
        self.client.close()

    def fetch(self, item: dict, href: str, target: str, monitor: Monitor) -> None:
        name = _file_name(href)
        with atomic_output(target) as tmp:
            if href.startswith(("http://", "https://")):
                self._http(item, href, name, tmp, monitor)
            elif href.startswith("s3://"):
                self._s3(item, href, name, tmp, monitor)
            else:
                raise DataError(f"{_label(item)}: {name} has an href this step cannot fetch ({_public(href)}).", "stac_url")

    def _http(self, item: dict, href: str, name: str, tmp: str, monitor: Monitor) -> None:
        query = urlsplit(href).query
        if query:
            self._queries.add(query)

        def on_status(resp) -> str:
            return f"{_label(item)}: the server answered HTTP {resp.status_code} for {name} ({_public(href)})."

        try:
            resp = self.client.request("GET", href, monitor=monitor, on_status=on_status)
        except HttpError as exc:
            if str(exc).startswith(_label(item)):
                raise
            raise ServiceError(f"{_label(item)}: fetching {name} failed: {exc}", exc.argument) from None
        with open(tmp, "wb") as f:
            f.write(resp.content)

    def _s3(self, item: dict, href: str, name: str, tmp: str, monitor: Monitor) -> None:
        from osgeo import gdal

        path = gdal_path(href)
        with gdal_config(S3_CONFIG), gdal_errors() as errors:
            stat = gdal.VSIStatL(path)
            handle = gdal.VSIFOpenL(path, "rb") if stat is not None else None
            if handle is None:
                keys = "" if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY") else (
                    " Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to your CDSE S3 keys (see the README)."
                )
                raise ServiceError(f"{_label(item)}: cannot read {name} at {_public(href)} ({'; '.join(errors) or 'not found'}).{keys}", "stac_url")
            written = 0
            try:
                with open(tmp, "wb") as f:
                    while True:
                        monitor.check()
                        chunk = gdal.VSIFReadL(1, _CHUNK, handle)
                        if not chunk:
                            break
                        f.write(chunk)
                        written += len(chunk)
            finally:
                gdal.VSIFCloseL(handle)
        if written != stat.size:
            raise ServiceError(f"{_label(item)}: {name} was cut short ({written} of {stat.size} bytes); try again later.", "stac_url")


def _product_folder(item: dict, workdir: str) -> str:
    """``<workdir>/<product>.SEN3``, named as the manifest's folder (else the item id)."""
    parent = _file_name(manifest_href(item).rsplit("/", 1)[0])
    name = parent if parent.endswith(".SEN3") else f"{os.path.basename(str(item.get('id')))}.SEN3"
    return os.path.join(workdir, name)


def fetch_product(item: dict, grid: Grid, fetcher: AssetFetcher, workdir: str, monitor: Monitor) -> str | None:
    """Fetch the item's files into a ``.SEN3`` folder; None (nothing left behind) when its swath misses ``grid``."""
    folder = _product_folder(item, workdir)
    os.makedirs(folder, exist_ok=True)
    manifest = os.path.join(folder, MANIFEST)
    fetcher.fetch(item, manifest_href(item), manifest, monitor)
    hrefs = product_hrefs(item, manifest)
    fetcher.fetch(item, hrefs["geo_coordinates.nc"], os.path.join(folder, "geo_coordinates.nc"), monitor)
    if not olci.swath_meets(folder, grid):
        monitor.info(f"{_label(item)}: its swath misses the patch; its other files were not fetched.")
        shutil.rmtree(folder, ignore_errors=True)
        return None
    rest = [name for name in hrefs if not os.path.isfile(os.path.join(folder, name))]
    for k, name in enumerate(rest):
        fetcher.fetch(item, hrefs[name], os.path.join(folder, name), monitor)
        monitor.update((k + 1) / len(rest))
    return folder


def _products(items: list[dict], grid: Grid, fetcher: AssetFetcher, workdir: str, monitor: Monitor) -> Iterator[olci.OlciProduct]:
    """Each item's product, fetched when reached and removed when the next is asked for."""
    for k, item in enumerate(items):
        monitor.info(f"Fetching {_label(item)} ({k + 1}/{len(items)})")
        folder = fetch_product(item, grid, fetcher, workdir, monitor.sub(k / len(items), (k + 0.9) / len(items)))
        if folder is None:
            continue
        try:
            yield olci.open_product(folder, workdir)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _item_key(item: dict) -> tuple[str, str]:
    props = item.get("properties") or {}
    return str(props.get("datetime") or props.get("start_datetime") or ""), str(item.get("id"))


def olci_stac_stack(
    stac_url: str,
    collection: str,
    patch: Grid,
    start: dt.date | None,
    end: dt.date | None,
    *,
    resolution: float = olci.OLCI_RESOLUTION,
    policy: RetryPolicy = DEFAULT_POLICY,
    monitor: Monitor | None = None,
) -> TimeStack:
    """The OLCI stack of every item of ``collection`` over the patch in [start, end], as ``olci.olci_stack`` makes it."""
    monitor = ensure_monitor(monitor)
    if start is None or end is None:
        raise InputError("A STAC search needs both a start and an end date.", "start" if start is None else "end")
    grid = olci.olci_grid(patch, olci.check_resolution(resolution))
    bbox = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
    items = search_items(stac_url, collection, bbox, start, end, None, policy=policy, monitor=monitor.sub(0.0, 0.02))
    items = sorted((i for i in items if start <= item_date(i) <= end), key=_item_key)
    if not items:
        raise DataError(
            f"The STAC API at {stac_url} lists no item of {collection} over the patch between {start} and {end}; "
            f"check {{argument}} (OLCI Level-1B full resolution on CDSE: {DEFAULT_COLLECTION}) and the dates.",
            "collection",
        )
    monitor.info(f"{len(items)} item(s) of {collection} over the patch.")
    fetcher = AssetFetcher(policy)
    try:
        with tempfile.TemporaryDirectory(prefix="lc_olci_stac_") as workdir:
            products = _products(items, grid, fetcher, workdir, monitor.sub(0.02, 1.0))
            return olci.merge_products(products, len(items), grid, f"STAC {collection}", monitor.sub(0.02, 1.0))
    finally:
        fetcher.close()


def olci_stac_stack_file(
    stac_url: str, collection: str, grid_raster: str, out_path: str, *, start: dt.date | None, end: dt.date | None,
    resolution: float = olci.OLCI_RESOLUTION, policy: RetryPolicy = DEFAULT_POLICY, monitor: Monitor | None = None,
) -> TimeStack:
    """File-level entry point of landcover:downloadolci with SOURCE = STAC API."""
    check_not_input(out_path, [grid_raster], "out_path")
    stack = olci_stac_stack(stac_url, collection, olci.patch_grid(grid_raster), start, end, resolution=resolution, policy=policy, monitor=monitor)
    write_stack(out_path, stack)
    return stack
