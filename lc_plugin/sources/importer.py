"""Import Sentinel-2 products the user already has into time stacks exactly like Download's.

Why a download source: a folder of products is just another place scenes come from. Wrapped as a
``sources.base.Source`` (find the products over a grid, read one on the grid) it goes through
Download's own patch writer (``download.download_patch``): same merge of one day's tiles and orbits
(least cloudy first), same stack layout, band descriptions and metadata tags, same atomic write, so
every later step takes the result as it takes a download.

Two kinds of products: SAFE folders and .zip (``products.py``: the product XML's offsets and
quantification), and STAC items on disk (one item, a FeatureCollection or a static catalogue, hrefs
relative or absolute): those are read by the STAC source itself (``StacSource.read``), so a local
item gets exactly the scaling rules a searched one gets. Only assets that are files on disk count;
remote hrefs in a local item are ignored (nothing is downloaded).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from datetime import date

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import transform_bounds

from ..core.atomic import check_not_input
from ..core.bands import CATEGORICAL_BANDS
from ..core.errors import DataError, InputError, LandCoverError
from ..core.monitor import Monitor, ensure_monitor
from ..io.http import RetryPolicy
from ..io.rasters import Grid
from ..runs.grid import Patch, read_patches
from .base import Scene, Source, cloud_cover, item_date
from .download import DownloadResult, download_patch
from .products import S2_BANDS, SafeProduct, open_safe_folder, open_safe_zip, safe_metadata_file
from .stac import StacSource
from .stac_assets import find_asset, read_asset

LOCAL_READS = RetryPolicy(retries=0)  # a local file that fails once fails again
_READ_THREADS = 2


# --------------------------------------------------------------------------- finding products


def _safe_scene(product: SafeProduct) -> Scene:
    """A SAFE product as a scene; its footprint is read from one of its band files."""
    path = next(iter(product.files[next(iter(product.files))].values()))
    return Scene(product.name, product.date, product.cloud, product.baseline, payload={"safe": product, "footprint": path, "level": product.level})


def _local_assets(item: dict, base_dir: str) -> dict:
    """The item with only the assets that are files on disk, hrefs made absolute."""
    assets = {}
    for key, asset in (item.get("assets") or {}).items():
        if not isinstance(asset, dict):
            continue
        href = str(asset.get("href") or "")
        href = href[7:] if href.startswith("file://") else href
        if not href or "://" in href:
            continue
        path = href if os.path.isabs(href) else os.path.normpath(os.path.join(base_dir, href))
        if os.path.isfile(path):
            assets[key] = {**asset, "href": path}
    return {**item, "assets": assets}


def item_bands(item: dict) -> list[str]:
    """The Sentinel-2 bands an item has an asset for."""
    bands = []
    for band in S2_BANDS:
        try:
            find_asset(item, band)
        except LandCoverError:
            continue
        bands.append(band)
    return bands


def _item_scene(item: dict, base_dir: str) -> Scene | None:
    local = _local_assets(item, base_dir)
    bands = item_bands(local)
    if not bands:
        return None
    props = item.get("properties") or {}
    kind = f"{props.get('s2:product_type', '')} {item.get('collection', '')}".lower()
    level = "L1C" if ("1c" in kind and "2a" not in kind) else "L2A"
    baseline = props.get("s2:processing_baseline") or props.get("processing:version")
    footprint = find_asset(local, bands[0])["href"]
    return Scene(str(item.get("id")), item_date(item, "inputs"), cloud_cover(item), baseline, payload={"item": local, "footprint": footprint, "level": level})


def _read_json(path: str) -> object:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not readable JSON ({exc}).", "inputs") from None


def _stac_scenes(path: str, seen: set[str]) -> list[Scene]:
    """Scenes of a STAC item, FeatureCollection or static catalogue/collection file ([] for other JSON)."""
    real = os.path.realpath(path)
    if real in seen:
        return []
    seen.add(real)
    doc = _read_json(path)
    if not isinstance(doc, dict):
        return []
    base = os.path.dirname(os.path.abspath(path))
    kind = doc.get("type")
    if kind == "Feature":
        scene = _item_scene(doc, base)
        return [scene] if scene else []
    if kind == "FeatureCollection":
        return [s for item in doc.get("features") or [] if isinstance(item, dict) for s in [_item_scene(item, base)] if s]
    if kind in ("Catalog", "Collection"):
        scenes = []
        for link in doc.get("links") or []:
            href = str(link.get("href") or "")
            if link.get("rel") in ("item", "child") and href and "://" not in href:
                target = href if os.path.isabs(href) else os.path.normpath(os.path.join(base, href))
                if os.path.isfile(target):
                    scenes += _stac_scenes(target, seen)
        return scenes
    return []


def _scenes_of(path: str, walking: bool, seen: set[str]) -> list[Scene]:
    lower = path.lower()
    if os.path.isdir(path):
        if safe_metadata_file(path):
            return [_safe_scene(p) for p in open_safe_folder(path)]
        return _walk(path, seen)
    if lower.endswith(".zip"):
        return [_safe_scene(p) for p in open_safe_zip(path, required=not walking)]
    if lower.endswith(".json"):
        try:
            return _stac_scenes(path, seen)
        except LandCoverError:
            if walking:  # some other JSON file in the folder
                return []
            raise
    if os.path.basename(path) in ("MTD_MSIL1C.xml", "MTD_MSIL2A.xml"):
        return [_safe_scene(p) for p in open_safe_folder(os.path.dirname(path))]
    if walking:
        return []
    raise InputError(f"{path} is not a SAFE folder, a zipped SAFE product or a STAC item/catalogue (.json).", "inputs")


def _walk(folder: str, seen: set[str]) -> list[Scene]:
    scenes = []
    for dirpath, dirnames, filenames in os.walk(folder):
        if safe_metadata_file(dirpath):
            scenes += [_safe_scene(p) for p in open_safe_folder(dirpath)]
            dirnames[:] = []
            continue
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith((".zip", ".json")):
                scenes += _scenes_of(os.path.join(dirpath, name), True, seen)
    return scenes


def find_products(inputs: list[str]) -> list[Scene]:
    """Every product in ``inputs`` (SAFE folders, .zip, STAC JSON, or folders holding them), once each,
    sorted by date; all of one processing level."""
    if not inputs:
        raise InputError("Choose a folder or files of Sentinel-2 products.", "inputs")
    scenes: dict[str, Scene] = {}
    seen: set[str] = set()
    for path in inputs:
        if not os.path.exists(path):
            raise InputError(f"{path} does not exist.", "inputs")
        for scene in _scenes_of(path, False, seen):
            scenes.setdefault(scene.id, scene)
    if not scenes:
        raise InputError(
            f"No Sentinel-2 products in {', '.join(inputs)}: expected SAFE folders, zipped SAFE products or STAC items "
            "whose band assets are files on disk.",
            "inputs",
        )
    levels = {s.payload["level"] for s in scenes.values()}
    if len(levels) > 1:
        raise InputError(
            "The products mix Level-1C (top of atmosphere) and Level-2A (surface) reflectance; import each level into its own stack.", "inputs"
        )
    return sorted(scenes.values(), key=lambda s: (s.date, s.id))


def footprint(scene: Scene) -> tuple[CRS, tuple[float, float, float, float]]:
    """CRS and bounds of a product, from its band file (never from metadata, which may describe another grid)."""
    if "bounds" not in scene.payload:
        try:
            with rasterio.open(scene.payload["footprint"]) as src:
                scene.payload["crs"], scene.payload["bounds"] = src.crs, tuple(src.bounds)
        except (rasterio.errors.RasterioError, OSError) as exc:
            raise InputError(f"Could not read {scene.payload['footprint']} of product {scene.id}: {exc}", "inputs") from None
    return scene.payload["crs"], scene.payload["bounds"]


# --------------------------------------------------------------------------- the source


class ProductSource(Source):
    """Local products as a download source: ``search`` keeps those over the grid, ``read`` scales them."""

    kind = "products"
    merge_by_date = True

    def __init__(self, scenes: list[Scene], resolution: float, area_argument: str = "extent") -> None:
        self.scenes = scenes
        self.resolution = resolution
        self.area_argument = area_argument  # what chose the area: the extent, or the patch grid
        self._stac = StacSource("file://local", "local", policy=LOCAL_READS)

    def overlapping(self, grid: Grid) -> list[Scene]:
        minx, miny, maxx, maxy = grid.bounds
        found = []
        for scene in self.scenes:
            crs, bounds = footprint(scene)
            x0, y0, x1, y1 = _in_crs(bounds, crs, grid.crs)
            if x0 < maxx and x1 > minx and y0 < maxy and y1 > miny:
                found.append(scene)
        return found

    def search(self, grid: Grid, start: date, end: date, max_cloud: float, monitor: Monitor) -> list[Scene]:
        found = self.overlapping(grid)
        if not found:
            raise InputError(
                f"None of the {len(self.scenes)} products ({', '.join(s.id for s in self.scenes[:3])}{', …' if len(self.scenes) > 3 else ''}) "
                f"overlaps the area {_describe(grid)}; choose an area inside the products' tiles.",
                self.area_argument,
            )
        for scene in self.scenes:
            if scene not in found:
                monitor.info(f"{scene.id} does not overlap the area; skipped")
        return found

    def available_bands(self, scenes: list[Scene]) -> list[str]:
        """The bands every product has, in Sentinel-2 order."""
        common = set(S2_BANDS)
        for scene in scenes:
            common &= set(_scene_bands(scene))
        return [b for b in S2_BANDS if b in common]

    def validate_bands(self, bands: list[str]) -> None:
        unknown = [b for b in bands if b not in S2_BANDS]
        if unknown:
            raise InputError(f"Unknown band(s) {', '.join(unknown)}; Sentinel-2 bands are {', '.join(S2_BANDS)}.", "bands")

    def check_bands(self, scenes: list[Scene], bands: list[str]) -> None:
        for scene in scenes:
            missing = [b for b in bands if b not in _scene_bands(scene)]
            if missing:
                raise InputError(
                    f"Product {scene.id} has no {', '.join(missing)} (it has {', '.join(_scene_bands(scene))}); remove the band(s).", "bands"
                )

    def read(self, scene: Scene, grid: Grid, bands: list[str], monitor: Monitor) -> np.ndarray:
        if "item" in scene.payload:
            try:
                return self._stac.read(Scene(scene.id, scene.date, scene.cloud, scene.baseline, payload=scene.payload["item"]), grid, bands, monitor)
            except LandCoverError as exc:
                raise InputError(str(exc), "inputs") from None
        try:
            return _read_safe(scene.payload["safe"], grid, bands, self.resolution, monitor)
        except LandCoverError as exc:
            raise InputError(f"{exc}. The product looks damaged; download it again.", "inputs") from None

    def signature(self) -> str:
        ids = json.dumps(sorted(s.id for s in self.scenes))
        return f"products|{hashlib.sha256(ids.encode()).hexdigest()[:16]}|{self.resolution:g}"

    def tags(self) -> dict[str, str]:
        return {"SOURCE": self.kind, "PROCESSING_LEVEL": self.scenes[0].payload["level"]}

    def describe(self) -> str:
        return f"{len(self.scenes)} local products"

    def close(self) -> None:
        self._stac.close()


def _scene_bands(scene: Scene) -> list[str]:
    if "item" in scene.payload:
        return item_bands(scene.payload["item"])
    return [b for b in S2_BANDS if b in scene.payload["safe"].files]


def _read_safe(product: SafeProduct, grid: Grid, bands: list[str], resolution: float, monitor: Monitor) -> np.ndarray:
    out = np.empty((len(bands), grid.height, grid.width), dtype=np.float32)
    for bi, band in enumerate(bands):
        monitor.check()
        dn = read_asset(
            product.band_path(band, resolution),
            grid,
            categorical=band in CATEGORICAL_BANDS,
            nodata=0.0,
            what=f"band {band} of {product.name}",
            policy=LOCAL_READS,
        )
        out[bi] = product.to_reflectance(band, dn)
    return out


def _describe(grid: Grid) -> str:
    x0, y0, x1, y1 = grid.bounds
    return f"{x0:.0f}, {y0:.0f} – {x1:.0f}, {y1:.0f} ({grid.crs.to_string()})"


# --------------------------------------------------------------------------- output grids and runs


def area_grid(
    bounds: tuple[float, float, float, float],
    bounds_crs: CRS | str | None,
    crs: CRS,
    resolution: float,
    origin: tuple[float, float] = (0.0, 0.0),
) -> Grid:
    """``bounds`` (in ``bounds_crs``, default ``crs``) as a grid in ``crs``, snapped outward to whole pixels
    from ``origin`` (a product's corner), so output pixels line up with the Sentinel-2 tile's pixels."""
    if not resolution or resolution <= 0 or not math.isfinite(resolution):
        raise InputError(f"The resolution must be a positive number of metres, got {resolution}.", "resolution")
    bounds = _in_crs(bounds, CRS.from_user_input(bounds_crs) if bounds_crs is not None else crs, crs)
    minx, miny, maxx, maxy = bounds
    ox, oy = origin
    x0, y0 = ox + math.floor((minx - ox) / resolution) * resolution, oy + math.floor((miny - oy) / resolution) * resolution
    x1, y1 = ox + math.ceil((maxx - ox) / resolution) * resolution, oy + math.ceil((maxy - oy) / resolution) * resolution
    width, height = round((x1 - x0) / resolution), round((y1 - y0) / resolution)
    if width < 1 or height < 1:
        raise InputError(f"The extent {bounds} is empty.", "extent")
    return Grid(crs, Affine(resolution, 0.0, x0, 0.0, -resolution, y1), width, height)


def _in_crs(bounds: tuple[float, float, float, float], src: CRS, dst: CRS) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = bounds if src == dst else transform_bounds(src, dst, *bounds, densify_pts=21)
    return x0, y0, x1, y1


def _union_bounds(scenes: list[Scene], crs: CRS) -> tuple[float, float, float, float]:
    boxes = [_in_crs(b, c, crs) for c, b in map(footprint, scenes)]
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def _write(source: ProductSource, patch: Patch, out_path: str, bands: list[str] | None, monitor: Monitor) -> DownloadResult:
    scenes = source.overlapping(patch.grid)
    bands = list(bands) if bands else source.available_bands(scenes or source.scenes)
    if not bands:
        raise DataError("The products have no Sentinel-2 band in common.", "bands")
    days = [s.date for s in source.scenes]
    return download_patch(
        patch, out_path, start=min(days), end=max(days), max_cloud=100.0, bands=bands, source=source, threads=_READ_THREADS, monitor=monitor
    )


def import_products(
    inputs: list[str],
    out_path: str,
    *,
    extent: tuple[float, float, float, float] | None = None,
    extent_crs: CRS | str | None = None,
    resolution: float = 10.0,
    bands: list[str] | None = None,
    monitor: Monitor | None = None,
) -> DownloadResult:
    """One time stack of the products over ``extent`` (any CRS; default: all the products' area) on a
    ``resolution`` m grid in the first product's CRS. ``bands`` default: every band all products have.
    Returns Download's result (path, dates, item ids)."""
    monitor = ensure_monitor(monitor)
    check_not_input(out_path, inputs, "out_path")
    scenes = find_products(inputs)
    crs, (left, _, _, top) = footprint(scenes[0])
    area = extent if extent is not None else _union_bounds(scenes, crs)
    grid = area_grid(area, extent_crs if extent is not None else None, crs, resolution, origin=(left, top))
    monitor.info(f"{len(scenes)} products, {len({s.date for s in scenes})} dates; output grid {grid.width} × {grid.height} px at {resolution:g} m")
    source = ProductSource(scenes, resolution)
    try:
        name = os.path.splitext(os.path.basename(out_path))[0]
        return _write(source, Patch(name, grid), out_path, bands, monitor)
    finally:
        source.close()


def import_patches(
    inputs: list[str],
    grid_path: str,
    out_dir: str,
    *,
    patch_ids: list[str] | None = None,
    layer: str | None = None,
    bands: list[str] | None = None,
    monitor: Monitor | None = None,
) -> list[str]:
    """``<out_dir>/<patch_id>.tif`` for every patch (or those named) that the products overlap, on the
    patch grid, like Download's stacks; patches no product reaches are skipped and logged."""
    monitor = ensure_monitor(monitor)
    patches = read_patches(grid_path, patch_ids, layer=layer)
    scenes = find_products(inputs)
    covered = []
    source = ProductSource(scenes, abs(patches[0].grid.transform.a) if patches else 10.0, area_argument="grid_path")
    try:
        for patch in patches:
            if source.overlapping(patch.grid):
                covered.append(patch)
            else:
                monitor.info(f"Patch {patch.id}: no product overlaps it; skipped")
        if not covered:
            raise InputError(f"No patch of {grid_path} is overlapped by the {len(scenes)} products.", "grid_path")
        os.makedirs(out_dir, exist_ok=True)
        paths = []
        for i, patch in enumerate(covered):
            path = os.path.join(out_dir, f"{patch.id}.tif")
            monitor.info(f"Patch {patch.id} ({i + 1}/{len(covered)})")
            source.resolution = abs(patch.grid.transform.a)
            _write(source, patch, path, bands, monitor.sub(i / len(covered), (i + 1) / len(covered)))
            paths.append(path)
    finally:
        source.close()
    return paths
