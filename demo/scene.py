"""Build the embedded demo scene: a small STAC catalogue of Sentinel-2 L2A-style COGs.

Why: ``make demo`` must run the whole land-cover chain offline, including the STAC download
step, on data that ships in the repository. The only real data small enough to embed is the
eo-learn test patch (``demo/data/eo-learn-testpatch``, MIT licence, see its README.md): a 1 km²
patch in Slovenia (EPSG:32633, 100 columns x 101 rows, ~10 m) with REAL NDVI, cloud masks
(CLM) and cloud probabilities (CLP) for 36 dates in 2017, REAL land-cover reference polygons,
and ONE real 13-band L1C scene (2015-07-11, the clearest of the five stored). It has no
per-band reflectance time series, so the COGs served here are GENERATED from it:

* Base spectrum per pixel: B02, B03, B04, B08, B11, B12 of the real 13-band scene (TOA
  reflectance, used as if it were surface reflectance).
* Date t: keep each pixel's base red+NIR sum ``s`` (times a tiny seeded jitter) and set
  ``NIR = s * (1 + NDVI_t) / 2``, ``red = s * (1 - NDVI_t) / 2``, so ``(NIR - red) / (NIR + red)``
  is the real NDVI of that date exactly (up to the uint16 quantisation).
  B02 and B03 scale with ``red_t / red_base`` (ratio clipped to [0.25, 4]); B11 and B12 are
  ``base * (1 - 0.3 * (NDVI_t - NDVI_base))``, at least 0.005. A fixed-seed noise of at most
  +-0.002 is added to those four bands.
* Where the real CLM of date t is 1 the pixel is cloud: every band is ``0.25 + 0.5 * CLP``
  (bright and flat) and SCL is 9 (high probability) if CLP >= 0.7, else 8 (medium).
  Clear pixels get SCL 4 (vegetation) if NDVI_t > 0.3, else 5 (not vegetated).
  NaN NDVI is no data: DN 0 and SCL 0.
* Reflectance is written as Earth Search v1 ``sentinel-2-l2a`` really serves baseline >= 04.00
  scenes: ESA's +1000 DN offset already subtracted, ``DN = round(reflectance * 10000)`` clipped
  to 1..65535 (0 = nodata), while each item still declares ``raster:bands`` offset -0.1 and
  says ``earthsearch:boa_offset_applied: true`` (the trap the STAC source must not fall into:
  ``reflectance = DN * 0.0001``).

So the NDVI time series, the clouds, the cloud cover per date and the reference are real; the
other reflectances are plausible but synthetic. Everything is deterministic.

Layout under the output folder: ``aoi.gpkg`` (layer "aoi": the patch bbox), ``reference.gpkg``
(the LULC polygons, fields LULC_ID, LULC_NAME), ``collection.json``, ``items/<id>.json`` (one
STAC Item per date, asset hrefs relative to the folder; ``demo.stac_server`` serves them),
``cogs/<id>/<asset>.tif`` and the marker ``scene.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from osgeo import gdal, ogr, osr

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lc_plugin.core.atomic import atomic_output  # noqa: E402

SCENE_VERSION = 2  # 2: Earth Search sentinel-2-l2a convention (offset already in the pixels)
COLLECTION_ID = "sentinel-2-l2a-demo"
START = date(2017, 1, 1)
END = date(2017, 12, 31)
EPSG = 32633
WIDTH, HEIGHT = 100, 101

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "eo-learn-testpatch")
NPZ_PATH = os.path.join(DATA_DIR, "testpatch_2017.npz")
BBOX_PATH = os.path.join(DATA_DIR, "TestEOPatch", "bbox.geojson")
LULC_PATH = os.path.join(DATA_DIR, "TestEOPatch", "vector_timeless", "LULC.gpkg")

# Order of the 13 bands in the real base scene.
L1C_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
# Sentinel-2 band -> Earth Search v1 asset key.
ASSETS = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16", "B12": "swir22", "SCL": "scl"}
REFLECTANCE_BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]
SCALE, OFFSET = 0.0001, -0.1
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
NOISE = 0.002
SEED = 20170101


@dataclass
class DemoScene:
    """Where the built scene lies and what the demo chain should ask of it."""

    root: str
    aoi_path: str
    reference_path: str
    collection: str = COLLECTION_ID
    start: date = START
    end: date = END
    bands: list[str] = field(default_factory=lambda: list(REFLECTANCE_BANDS))


# --------------------------------------------------------------------------- source data


def load_source() -> dict[str, np.ndarray]:
    """The embedded real data (see demo/data/README.md), as plain arrays."""
    with np.load(NPZ_PATH, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def patch_bbox() -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of the real patch in EPSG:32633."""
    with open(BBOX_PATH, encoding="utf-8") as f:
        ring = np.asarray(json.load(f)["coordinates"][0], dtype=np.float64)
    return float(ring[:, 0].min()), float(ring[:, 1].min()), float(ring[:, 0].max()), float(ring[:, 1].max())


def geotransform(bbox: tuple[float, float, float, float]) -> tuple[float, ...]:
    """GDAL geotransform equal to ``rasterio.transform.from_bounds(*bbox, WIDTH, HEIGHT)``."""
    minx, miny, maxx, maxy = bbox
    return (minx, (maxx - minx) / WIDTH, 0.0, maxy, 0.0, -(maxy - miny) / HEIGHT)


def item_id(timestamp: str) -> str:
    """Stable item id from the acquisition time, e.g. S2_DEMO_20170101T100407_L2A."""
    return "S2_DEMO_" + timestamp.replace("-", "").replace(":", "") + "_L2A"


# --------------------------------------------------------------------------- spectra


def base_spectra(base_scene: np.ndarray) -> dict[str, np.ndarray]:
    """The six used bands of the real 13-band scene, (H, W) float32 each."""
    return {b: base_scene[..., L1C_BANDS.index(b)].astype(np.float32) for b in REFLECTANCE_BANDS}


def synthesize_date(
    base: dict[str, np.ndarray], ndvi: np.ndarray, clm: np.ndarray, clp: np.ndarray, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Reflectances (float64, NaN = no data) and SCL (uint8) of one date; see module docstring."""
    red0 = base["B04"].astype(np.float64)
    nir0 = base["B08"].astype(np.float64)
    s = (red0 + nir0) + rng.uniform(-NOISE, NOISE, red0.shape)
    ndvi0 = (nir0 - red0) / (red0 + nir0)
    nd = ndvi.astype(np.float64)

    red = s * (1.0 - nd) / 2.0
    nir = s * (1.0 + nd) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.clip(red / np.maximum(red0, 1e-6), 0.25, 4.0)
    swir_factor = 1.0 - 0.3 * (nd - ndvi0)
    out = {
        "B02": base["B02"] * ratio + rng.uniform(-NOISE, NOISE, red0.shape),
        "B03": base["B03"] * ratio + rng.uniform(-NOISE, NOISE, red0.shape),
        "B04": red,
        "B08": nir,
        "B11": np.maximum(base["B11"] * swir_factor + rng.uniform(-NOISE, NOISE, red0.shape), 0.005),
        "B12": np.maximum(base["B12"] * swir_factor + rng.uniform(-NOISE, NOISE, red0.shape), 0.005),
    }
    out["B02"] = np.maximum(out["B02"], 0.0)
    out["B03"] = np.maximum(out["B03"], 0.0)

    cloud = clm == 1
    nodata = ~np.isfinite(nd)
    cloud_value = 0.25 + 0.5 * clp.astype(np.float64)
    for b in out:
        out[b] = np.where(cloud, cloud_value, out[b])
        out[b][nodata] = np.nan

    scl = np.where(nd > 0.3, 4, 5).astype(np.uint8)
    scl = np.where(cloud, np.where(clp >= 0.7, 9, 8), scl).astype(np.uint8)
    scl[nodata] = 0
    return out, scl


def to_dn(reflectance: np.ndarray) -> np.ndarray:
    """Earth Search's offset-corrected digital numbers: uint16, 0 = nodata (NaN)."""
    dn = np.round(np.nan_to_num(reflectance, nan=0.0) / SCALE)
    dn = np.clip(dn, 1, 65535).astype(np.uint16)
    dn[~np.isfinite(reflectance)] = 0
    return dn


# --------------------------------------------------------------------------- writers


def write_cog(
    path: str, array: np.ndarray, gt: tuple[float, ...], wkt: str, resampling: str = "NEAREST", *, blocksize: int = 128, overviews: str = "AUTO"
) -> None:
    """One-band COG (DEFLATE, with a predictor for UInt16; nodata 0); also the test and bench servers' files."""
    gdal_type = gdal.GDT_UInt16 if array.dtype == np.uint16 else gdal.GDT_Byte
    mem = gdal.GetDriverByName("MEM").Create("", array.shape[1], array.shape[0], 1, gdal_type)
    mem.SetGeoTransform(gt)
    mem.SetProjection(wkt)
    band = mem.GetRasterBand(1)
    band.SetNoDataValue(0)
    band.WriteArray(array)
    options = ["COMPRESS=DEFLATE", f"BLOCKSIZE={blocksize}", f"RESAMPLING={resampling}", f"OVERVIEWS={overviews}"]
    if gdal_type == gdal.GDT_UInt16:
        options.append("PREDICTOR=YES")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with atomic_output(path) as tmp:
        gdal.Translate(tmp, mem, format="COG", creationOptions=options)
    mem = None


def write_json(path: str, obj: object) -> None:
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")


def write_aoi(path: str, bbox: tuple[float, float, float, float], srs: osr.SpatialReference) -> None:
    """The patch bbox as a one-feature GeoPackage, layer "aoi"."""
    minx, miny, maxx, maxy = bbox
    with atomic_output(path) as tmp:
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(tmp)
        layer = ds.CreateLayer("aoi", srs, ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn("name", ogr.OFTString))
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("name", "eo-learn test patch")
        ring = f"{minx} {miny}, {maxx} {miny}, {maxx} {maxy}, {minx} {maxy}, {minx} {miny}"
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON (({ring}))"))
        layer.CreateFeature(feature)
        feature = layer = None
        ds = None


def wgs84_footprint(bbox: tuple[float, float, float, float], srs: osr.SpatialReference) -> tuple[list, list]:
    """GeoJSON polygon (lon/lat, counter-clockwise) and bbox of the patch in WGS84."""
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(srs, wgs84)
    minx, miny, maxx, maxy = bbox
    corners = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy)]
    ring = [[round(c, 7) for c in ct.TransformPoint(x, y)[:2]] for x, y in corners]
    ring.append(ring[0])
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    return [ring], [min(lons), min(lats), max(lons), max(lats)]


def asset_entry(item: str, band: str, gt: tuple[float, ...]) -> dict:
    key = ASSETS[band]
    entry: dict = {
        "href": f"cogs/{item}/{key}.tif",
        "type": COG_TYPE,
        "title": band,
        "roles": ["data"],
        "gsd": 10,
        "proj:shape": [HEIGHT, WIDTH],
        "proj:transform": [gt[1], gt[2], gt[0], gt[4], gt[5], gt[3]],
    }
    if band == "SCL":
        entry["raster:bands"] = [{"nodata": 0, "data_type": "uint8"}]
    else:
        entry["eo:bands"] = [{"name": band, "common_name": key}]
        entry["raster:bands"] = [{"nodata": 0, "data_type": "uint16", "scale": SCALE, "offset": OFFSET}]
    return entry


STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]


def make_item(item: str, timestamp: str, cloud_cover: float, geometry: list, bbox84: list, gt: tuple[float, ...]) -> dict:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": STAC_EXTENSIONS,
        "id": item,
        "collection": COLLECTION_ID,
        "bbox": bbox84,
        "geometry": {"type": "Polygon", "coordinates": geometry},
        "properties": {
            "datetime": timestamp + "Z",
            "platform": "sentinel-2",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": cloud_cover,
            "s2:processing_baseline": "04.00",
            "earthsearch:boa_offset_applied": True,
            "proj:epsg": EPSG,
            "demo:synthetic_reflectance": True,
        },
        "links": [
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
        ],
        "assets": {ASSETS[b]: asset_entry(item, b, gt) for b in ASSETS},
    }


def make_collection(bbox84: list, timestamps: list[str]) -> dict:
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "stac_extensions": STAC_EXTENSIONS,
        "id": COLLECTION_ID,
        "title": "Sentinel-2 L2A demo (eo-learn test patch, 2017)",
        "description": (
            "Offline demo collection for lc-plugin. Real NDVI, clouds and cloud cover of the eo-learn "
            "test patch (Slovenia, 2017, MIT licence, contains modified Copernicus Sentinel data); the "
            "per-band reflectances are synthesised from one real 13-band scene so that the real NDVI "
            "series is reproduced. Not for scientific use."
        ),
        "license": "MIT",
        "extent": {
            "spatial": {"bbox": [bbox84]},
            "temporal": {"interval": [[timestamps[0] + "Z", timestamps[-1] + "Z"]]},
        },
        "item_assets": {
            ASSETS[b]: {k: v for k, v in asset_entry("x", b, (0, 1, 0, 0, 0, -1)).items() if k not in ("href", "proj:transform")}
            for b in ASSETS
        },
        "links": [],
    }


# --------------------------------------------------------------------------- build


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _scene_from_marker(out_dir: str, marker: dict) -> DemoScene:
    return DemoScene(
        root=out_dir,
        aoi_path=os.path.join(out_dir, marker["aoi"]),
        reference_path=os.path.join(out_dir, marker["reference"]),
        collection=marker["collection_id"],
        start=date.fromisoformat(marker["start"]),
        end=date.fromisoformat(marker["end"]),
        bands=list(marker["bands"]),
    )


def _complete_marker(out_dir: str, source_sha: str) -> dict | None:
    """The marker of a finished build of this version from this data, else None."""
    try:
        with open(os.path.join(out_dir, "scene.json"), encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("version") != SCENE_VERSION or marker.get("source_sha256") != source_sha:
        return None
    files = marker.get("files")
    if not isinstance(files, list) or not files:
        return None
    if not all(os.path.isfile(os.path.join(out_dir, rel)) for rel in files):
        return None
    return marker


def build_scene(out_dir: str) -> DemoScene:
    """Write the demo scene into ``out_dir`` (see module docstring); reuse a complete one."""
    for module in (gdal, ogr, osr):
        module.UseExceptions()  # as the engine does; errors raise instead of returning None
    out_dir = os.path.abspath(out_dir)
    source_sha = _sha256(NPZ_PATH)
    marker = _complete_marker(out_dir, source_sha)
    if marker is not None:
        return _scene_from_marker(out_dir, marker)

    os.makedirs(out_dir, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(out_dir, "scene.json"))

    src = load_source()
    timestamps = [str(t) for t in src["timestamps"]]
    bbox = patch_bbox()
    gt = geotransform(bbox)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    wkt = srs.ExportToWkt()
    geometry, bbox84 = wgs84_footprint(bbox, srs)
    base = base_spectra(src["base_scene"])
    files: list[str] = []

    write_aoi(os.path.join(out_dir, "aoi.gpkg"), bbox, srs)
    with atomic_output(os.path.join(out_dir, "reference.gpkg")) as tmp:
        shutil.copyfile(LULC_PATH, tmp)
    files += ["aoi.gpkg", "reference.gpkg"]

    ids = []
    for t, timestamp in enumerate(timestamps):
        item = item_id(timestamp)
        ids.append(item)
        ndvi = src["ndvi"][t]
        clm = src["clm"][t]
        clp = src["clp_u8"][t].astype(np.float64) / 255.0
        rng = np.random.default_rng([SEED, t])
        reflectance, scl = synthesize_date(base, ndvi, clm, clp, rng)
        for b in REFLECTANCE_BANDS:
            rel = f"cogs/{item}/{ASSETS[b]}.tif"
            write_cog(os.path.join(out_dir, rel), to_dn(reflectance[b]), gt, wkt, "AVERAGE")
            files.append(rel)
        rel = f"cogs/{item}/{ASSETS['SCL']}.tif"
        write_cog(os.path.join(out_dir, rel), scl, gt, wkt, "NEAREST")
        files.append(rel)
        cloud_cover = round(float(np.mean(clm == 1)) * 100.0, 2)
        rel = f"items/{item}.json"
        write_json(os.path.join(out_dir, rel), make_item(item, timestamp, cloud_cover, geometry, bbox84, gt))
        files.append(rel)

    write_json(os.path.join(out_dir, "collection.json"), make_collection(bbox84, timestamps))
    files.append("collection.json")
    _remove_stale(out_dir, set(ids))

    marker = {
        "version": SCENE_VERSION,
        "source_sha256": source_sha,
        "collection_id": COLLECTION_ID,
        "collection": "collection.json",
        "aoi": "aoi.gpkg",
        "reference": "reference.gpkg",
        "start": START.isoformat(),
        "end": END.isoformat(),
        "bands": list(REFLECTANCE_BANDS),
        "assets": dict(ASSETS),
        "epsg": EPSG,
        "bbox": list(bbox),
        "shape": [HEIGHT, WIDTH],
        "dates": [ts + "Z" for ts in timestamps],
        "items": ids,
        "files": files,
    }
    write_json(os.path.join(out_dir, "scene.json"), marker)
    return _scene_from_marker(out_dir, marker)


def _remove_stale(out_dir: str, ids: set[str]) -> None:
    """Drop items and COG folders of an older build that this one did not write."""
    items_dir = os.path.join(out_dir, "items")
    for name in os.listdir(items_dir):
        if name.endswith(".json") and name[: -len(".json")] not in ids:
            os.remove(os.path.join(items_dir, name))
    cogs_dir = os.path.join(out_dir, "cogs")
    for name in os.listdir(cogs_dir):
        if name not in ids and os.path.isdir(os.path.join(cogs_dir, name)):
            shutil.rmtree(os.path.join(cogs_dir, name))


def main() -> None:
    """``python demo/scene.py [OUT_DIR]``: build (or reuse) the scene and print its folder."""
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "scene")
    scene = build_scene(out_dir)
    print(scene.root)  # noqa: T201


if __name__ == "__main__":
    main()
