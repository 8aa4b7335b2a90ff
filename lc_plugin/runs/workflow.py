"""The land-cover workbench's run: its settings, the scene list and the chain of Processing steps.

Why here and not in the panel: what a run does (which algorithms, in which order, with which
parameters) must be the same whether the "Land cover" dock starts it, a test drives it or a
script replays its ``settings.json``; and it must be reproducible from Processing's history and
``qgis_process``. So the chain is a plain function over a *runner* (``processing.run``-like:
algorithm id and parameters in, outputs out) and knows nothing of Qt; the dock only gathers the
settings, runs this in a background task and loads what ``show`` is told.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import date

from rasterio.crs import CRS
from rasterio.transform import from_bounds

from ..core.atomic import atomic_output
from ..core.classes import ClassTable
from ..core.errors import InputError
from ..core.monitor import Monitor, ensure_monitor
from ..io.rasters import Grid, parse_date, read_stack_info
from ..reference.rasterize import rasterize_reference
from ..sources.download import DEFAULT_BANDS, DEFAULT_COLLECTION, DEFAULT_STAC_URL, make_source
from .parameters import CLOUD_METHODS, BatchParameters

SOURCES = ["stac", "sentinelhub", "local"]
STAC_PRESETS = ["", "earth-search", "planetary-computer", "cdse"]  # download's PRESET enum, in order
SETTINGS_FILE = "settings.json"
STEPS_FILE = "steps.json"

Runner = Callable[[str, dict, str], dict]  # (algorithm id, parameters, step label) → outputs
Show = Callable[[str, str], object]  # (path, layer name): a result ready to be loaded


@dataclass
class WorkbenchSettings:
    """Everything the dock lets the user choose; saved in the project and as ``settings.json``."""

    aoi: str = ""  # polygon file (the dock writes a drawn rectangle or the canvas extent to one)
    start: str = ""
    end: str = ""
    source: str = "stac"
    stac_preset: str = ""  # "" = stac_url/collection below
    stac_url: str = DEFAULT_STAC_URL
    collection: str = DEFAULT_COLLECTION
    sh_endpoint: str = "sentinel-hub"
    authcfg: str = ""  # a QGIS authentication configuration id, never the secret itself
    local_stacks: list[str] = field(default_factory=list)
    bands: list[str] = field(default_factory=lambda: list(DEFAULT_BANDS))
    max_cloud: float = 80.0
    excluded_dates: list[str] = field(default_factory=list)
    patch_size: int = 1000
    cloud_method: str = "auto"
    min_valid_fraction: float = 0.8
    step_days: int = 16
    reference: str = ""
    reference_field: str = ""
    erosion: int = 1
    model: str = ""  # an existing ONNX model: classify with it instead of training
    samples_per_class: int = 5000
    n_estimators: int = 300
    split: int = 0  # 0 test pixels drawn at random, 1 whole patches held out
    min_pixels: int = 0  # sieve after classification when ≥ 2
    legend: list[list] = field(default_factory=list)  # [class id, name, colour] the user renamed or recoloured
    output_folder: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkbenchSettings:
        """Settings from JSON; entries this version does not know are ignored (an older or newer project)."""
        try:
            data = json.loads(text) if text else {}
        except ValueError as exc:
            raise InputError(f"The saved workbench settings are not JSON: {exc}", "text") from exc
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def check(self) -> None:
        """Refuse what would only fail later, naming the settings field at fault."""
        if self.source not in SOURCES:
            raise InputError(f"Unknown source {self.source!r}; choose one of {', '.join(SOURCES)}.", "source")
        if self.source == "local":
            missing = [p for p in self.local_stacks if not os.path.isfile(p)]
            if not self.local_stacks or missing:
                raise InputError(f"Choose the local time stacks (missing: {', '.join(missing) or 'none chosen'}).", "local_stacks")
        elif not self.aoi:
            raise InputError("Choose the area: a polygon layer, the canvas extent or a rectangle drawn on the map.", "aoi")
        for name in ("start", "end"):
            try:
                parse_date(getattr(self, name))
            except ValueError:
                raise InputError(f"The {name} date {getattr(self, name)!r} is not a date (YYYY-MM-DD).", name) from None
        if self.cloud_method not in CLOUD_METHODS:
            raise InputError(f"Unknown cloud-mask method {self.cloud_method!r}; choose one of {', '.join(CLOUD_METHODS)}.", "cloud_method")
        if not self.model and not (self.reference and self.reference_field):
            raise InputError("Choose a reference layer and its class field to train on, or an existing model.", "reference")
        if not self.output_folder:
            raise InputError("Choose the output folder.", "output_folder")

    def batch_parameters(self, grid: str, model: str | None) -> BatchParameters:
        """The same run as ``landcover:rungrid`` parameters, for a whole country's grid."""
        return BatchParameters(
            grid=grid,
            start=self.start,
            end=self.end,
            model=model,
            stac_url=self.stac_url,
            collection=self.collection,
            bands=list(self.bands),
            max_cloud=self.max_cloud,
            cloud_method=self.cloud_method,
            min_valid_fraction=self.min_valid_fraction,
            step_days=self.step_days,
            reference=self.reference or None,
            reference_field=self.reference_field or None,
            erosion_px=self.erosion,
        )


@dataclass
class SceneRow:
    """One acquisition date over the area, as the scene list shows it (scenes of one date are merged)."""

    date: date
    cloud: float  # the highest eo:cloud_cover of the date's scenes
    tiles: list[str]
    ids: list[str]
    quicklook: str = ""  # an image URL of the first scene of the date that has one


QUICKLOOK_TYPES = ("image/jpeg", "image/png")


def scene_quicklook(item: dict) -> str:
    """The URL of a STAC item's quick-look a panel can show: a JPEG/PNG thumbnail or overview over http(s), else "".

    Earth Search calls it ``thumbnail``, Planetary Computer ``rendered_preview`` (its ``preview`` is a
    GeoTIFF), CDSE ``thumbnail``; the roles say which asset it is, whatever its key.
    """
    for asset in (item.get("assets") or {}).values():
        roles, kind, href = asset.get("roles") or [], (asset.get("type") or "").split(";")[0], str(asset.get("href") or "")
        if {"thumbnail", "overview"} & set(roles) and kind in QUICKLOOK_TYPES and href.startswith(("http://", "https://")):
            return href
    return ""


def scene_tile(item: dict) -> str:
    """The Sentinel-2 MGRS tile of a STAC item (Earth Search, Planetary Computer, CDSE spell it differently)."""
    props = item.get("properties") or {}
    for key in ("s2:mgrs_tile", "grid:code", "tile_id"):
        if props.get(key):
            return str(props[key]).replace("MGRS-", "")
    parts = [props.get(k) for k in ("mgrs:utm_zone", "mgrs:latitude_band", "mgrs:grid_square")]
    return "".join(str(p) for p in parts) if all(parts) else ""


def list_scenes(settings: WorkbenchSettings, bounds: tuple[float, float, float, float], crs: str, monitor: Monitor | None = None) -> list[SceneRow]:
    """The scenes the run would use over ``bounds`` (in ``crs``), one row per date; for local stacks, their dates."""
    monitor = ensure_monitor(monitor)
    if settings.source == "local":
        return _local_dates(settings.local_stacks)
    grid = Grid(CRS.from_user_input(crs), from_bounds(*bounds, 1, 1), 1, 1)
    source = make_source(
        settings.source, stac_url=settings.stac_url, collection=settings.collection, preset=settings.stac_preset or None, endpoint=settings.sh_endpoint
    )
    try:
        scenes = source.search(grid, parse_date(settings.start), parse_date(settings.end), settings.max_cloud, monitor)
    finally:
        source.close()
    rows: dict[date, SceneRow] = {}
    for scene in sorted(scenes, key=lambda s: (s.date, s.id)):
        row = rows.setdefault(scene.date, SceneRow(scene.date, 0.0, [], []))
        row.cloud = max(row.cloud, scene.cloud)
        tile = scene_tile(scene.payload)
        if tile and tile not in row.tiles:
            row.tiles.append(tile)
        row.ids.extend(scene.item_ids)
        row.quicklook = row.quicklook or scene_quicklook(scene.payload)
    return list(rows.values())


def _local_dates(stacks: list[str]) -> list[SceneRow]:
    """Every date of the local stacks (cloud cover unknown before the cloud masks: NaN), the stacks as ids."""
    rows: dict[date, SceneRow] = {}
    for path in stacks:
        for day in read_stack_info(path)[0]:
            rows.setdefault(day, SceneRow(day, float("nan"), [], [])).ids.append(os.path.basename(path))
    return [rows[d] for d in sorted(rows)]


def run_workbench(run: Runner, settings: WorkbenchSettings, out_dir: str, show: Show = lambda *_: None, preview: bool = False) -> dict:
    """Grid → download → clouds → filter → interpolate → reference → train → classify → sieve → report → mosaic.

    ``preview`` runs the same chain on the patch at the centre of the area (or the first local stack) only, in
    ``out_dir/preview``. ``show(path, name)`` is called as each result a user looks at is written.
    """
    settings.check()
    out_dir = os.path.join(out_dir, "preview") if preview else out_dir
    os.makedirs(out_dir, exist_ok=True)
    path = lambda *parts: os.path.join(out_dir, *parts)  # noqa: E731
    with open(path(SETTINGS_FILE), "w", encoding="utf-8") as f:
        f.write(settings.to_json())
    run = _logged(run, path(STEPS_FILE))
    grid, stacks = _stacks(run, settings, path, preview)
    prepared = [_prepare_patch(run, settings, stack, path(_patch_name(stack)), show) for stack in stacks]
    interpolated = [p["interpolated"] for p in prepared]
    references = [p["reference"] for p in prepared if p["reference"]]
    result: dict = {"grid": grid, "stacks": stacks, "interpolated": interpolated, "references": references}
    model, predictions = settings.model, None
    if not model:
        trained = run(
            "train",
            {
                "INPUT": interpolated,
                "REFERENCE": references,
                "SAMPLES_PER_CLASS": settings.samples_per_class,
                "N_ESTIMATORS": settings.n_estimators,
                "SPLIT": settings.split,
                "DROP_EMPTY_CLASSES": True,
                "OUTPUT_MODEL": path("model.onnx"),
                "OUTPUT_PREDICTIONS": path("test_predictions.csv"),
            },
            "Train classifier",
        )
        model, predictions = trained["OUTPUT_MODEL"], trained["OUTPUT_PREDICTIONS"]
    result["model"] = model
    if grid:
        settings.batch_parameters(grid, model).save(path("parameters.json"))
        result["parameters"] = path("parameters.json")
    result["maps"] = [_classify(run, settings, model, p, show) for p in prepared]
    if predictions:
        report = run(
            "accuracyreport",
            {"PREDICTIONS": predictions, "MODEL": model, "OUTPUT_HTML": path("report.html"), "OUTPUT_JSON": path("report.json")},
            "Accuracy report",
        )
        result["report"] = report["OUTPUT_HTML"]
    if len(result["maps"]) > 1:
        mosaic = run("mosaic", {"INPUT": result["maps"], "OUTPUT_VRT": path("landcover.vrt"), "OUTPUT_COG": path("landcover_cog.tif")}, "Mosaic")
        result["mosaic"] = mosaic["OUTPUT_COG"]
        show(result["mosaic"], "Land cover (mosaic)")
    return result


def _logged(run: Runner, steps_path: str) -> Runner:
    """The runner, recording every step (algorithm id, parameters) in ``steps.json`` to replay with qgis_process."""
    steps: list[dict] = []

    def logged(alg: str, params: dict, label: str) -> dict:
        steps.append({"algorithm": f"landcover:{alg}", "label": label, "parameters": params})
        with atomic_output(steps_path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump(steps, f, indent=1)
        return run(alg, params, label)

    return logged


def _patch_name(stack: str) -> str:
    return os.path.splitext(os.path.basename(stack))[0]


def _stacks(run: Runner, s: WorkbenchSettings, path: Callable[..., str], preview: bool) -> tuple[str | None, list[str]]:
    if s.source == "local":
        return None, list(s.local_stacks[:1] if preview else s.local_stacks)
    grid = run("creategrid", {"AOI": s.aoi, "PATCH_SIZE": s.patch_size, "RESOLUTION": 10, "OUTPUT": path("grid.gpkg")}, "Create patch grid")["OUTPUT"]
    params = {
        "PATCHES": grid,
        "START_DATE": s.start,
        "END_DATE": s.end,
        "MAX_CLOUD": s.max_cloud,
        "BANDS": ",".join(s.bands),
        "SOURCE": SOURCES.index(s.source),
        "PRESET": STAC_PRESETS.index(s.stac_preset) if s.stac_preset in STAC_PRESETS else 0,
        "STAC_URL": s.stac_url,
        "COLLECTION": s.collection,
        "SH_ENDPOINT": s.sh_endpoint,
        "AUTHCFG": s.authcfg,
        "OUTPUT_FOLDER": path("stacks"),
    }
    if preview:
        params["PATCH_ID"] = _central_patch(grid, s.aoi)
    stacks = run("download", params, "Download")["STACKS"]
    return grid, sorted(stacks)


def _central_patch(grid: str, aoi: str) -> str:
    """The id of the patch nearest the centre of the area (a preview of its middle, not of an edge)."""
    from osgeo import ogr, osr

    area, patches = ogr.Open(aoi), ogr.Open(grid)  # kept in names: a layer dies with its dataset
    area_layer, patch_layer = area.GetLayer(0), patches.GetLayer(0)
    x0, x1, y0, y1 = area_layer.GetExtent()
    centre = ogr.CreateGeometryFromWkt(f"POINT ({(x0 + x1) / 2} {(y0 + y1) / 2})")
    source, target = area_layer.GetSpatialRef(), patch_layer.GetSpatialRef()
    for srs in (source, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    centre.Transform(osr.CoordinateTransformation(source, target))
    return min((f.GetGeometryRef().Distance(centre), str(f.GetField("patch_id"))) for f in patch_layer)[1]


def _prepare_patch(run: Runner, s: WorkbenchSettings, stack: str, folder: str, show: Show) -> dict:
    os.makedirs(folder, exist_ok=True)
    name = _patch_name(stack)
    show(stack, f"Time stack {name}")
    mask = run("cloudmasks", {"INPUT": stack, "METHOD": CLOUD_METHODS.index(s.cloud_method), "OUTPUT": os.path.join(folder, "clm.tif")}, f"Cloud masks {name}")
    show(mask["OUTPUT"], f"Cloud masks {name}")
    filtered = run(
        "filterscenes",
        {
            "INPUT": stack,
            "MASK": mask["OUTPUT"],
            "MIN_VALID_FRACTION": s.min_valid_fraction,
            "EXCLUDE_DATES": ",".join(s.excluded_dates),
            "OUTPUT": os.path.join(folder, "filtered.tif"),
            "OUTPUT_MASK": os.path.join(folder, "filtered_clm.tif"),
        },
        f"Filter cloudy scenes {name}",
    )
    interpolated = run(
        "interpolate",
        {
            "INPUT": filtered["OUTPUT"],
            "MASK": filtered["OUTPUT_MASK"],
            "STEP_DAYS": s.step_days,
            "START_DATE": s.start,
            "END_DATE": s.end,
            "OUTPUT": os.path.join(folder, "interpolated.tif"),
        },
        f"Interpolate {name}",
    )["OUTPUT"]
    show(interpolated, f"Interpolated {name}")
    reference = None
    if s.reference and s.reference_field:
        reference = run(
            "rasterizereference",
            {"REFERENCE": s.reference, "FIELD": s.reference_field, "GRID": interpolated, "EROSION": s.erosion, "OUTPUT": os.path.join(folder, "reference.tif")},
            f"Rasterize reference {name}",
        )["OUTPUT"]
        if s.legend:  # the user's names and colours, carried from the reference into the model and the maps
            table = [str(cell) for class_id, label, colour in s.legend for cell in (class_id, class_id, label, colour)]
            reference = run(
                "reclassify", {"INPUT": reference, "TABLE": table, "OUTPUT": os.path.join(folder, "reference_legend.tif")}, f"Legend of the reference {name}"
            )["OUTPUT"]
    return {"name": name, "folder": folder, "interpolated": interpolated, "reference": reference, "mask": mask["OUTPUT"]}


def _classify(run: Runner, s: WorkbenchSettings, model: str, patch: dict, show: Show) -> str:
    folder, name = patch["folder"], patch["name"]
    classified = run(
        "classify",
        {
            "INPUT": patch["interpolated"],
            "MODEL": model,
            "OUTPUT": os.path.join(folder, "landcover.tif"),
            "OUTPUT_PROBABILITIES": os.path.join(folder, "probabilities.tif"),
        },
        f"Classify {name}",
    )
    out = classified["OUTPUT"]
    show(classified["OUTPUT_PROBABILITIES"], f"Class probabilities {name}")
    if s.min_pixels >= 2:
        out = run("sieve", {"INPUT": out, "MIN_PIXELS": s.min_pixels, "OUTPUT": os.path.join(folder, "landcover_sieved.tif")}, f"Sieve {name}")["OUTPUT"]
    show(out, f"Land cover {name}")
    return out


def reference_legend(vector_path: str, class_field: str, layer: str | None = None) -> ClassTable:
    """The class table Rasterize reference will embed for this layer and field (ids, names, colours).

    Computed by the rasterizer itself on a one-pixel grid, so the legend the dock shows before a
    run is the one the maps will carry.
    """
    from osgeo import ogr

    ds = ogr.Open(vector_path)
    if ds is None:
        raise InputError(f"Could not open the reference layer {vector_path}.", "vector_path")
    lyr = ds.GetLayerByName(layer) if layer else ds.GetLayer(0)
    srs = lyr.GetSpatialRef() if lyr is not None else None
    if srs is None:
        raise InputError(f"The reference layer {vector_path} has no layer with a coordinate reference system.", "vector_path")
    x0, x1, y0, y1 = lyr.GetExtent()
    grid = Grid(CRS.from_wkt(srs.ExportToWkt()), from_bounds(x0, y0, max(x1, x0 + 1), max(y1, y0 + 1), 1, 1), 1, 1)
    return rasterize_reference(vector_path, class_field, grid, layer=layer)[1]


def write_area(bounds: tuple[float, float, float, float], crs: str, path: str) -> str:
    """A rectangle (the canvas extent or one drawn on the map) as a one-polygon GeoPackage, for Create patch grid."""
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.SetFromUserInput(crs)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x0, y0, x1, y1 = bounds
    ring = f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"
    with atomic_output(path) as tmp:
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(tmp)
        lyr = ds.CreateLayer("area", srs, ogr.wkbPolygon)
        feature = ogr.Feature(lyr.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(ring))
        lyr.CreateFeature(feature)
        ds = None
    return path
