"""The whole land-cover chain as a sequence of Processing algorithm calls.

``run_chain`` takes a runner (``processing.run``-like or ``qgis_process``-backed), so the
demo, the in-process test and the command-line test run exactly the same steps.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

Runner = Callable[[str, dict], dict]


@dataclass
class ChainSettings:
    aoi: str
    reference: str
    reference_field: str
    stac_url: str
    collection: str
    start: str
    end: str
    patch_size: int = 100
    max_cloud: float = 100.0
    cloud_method: int = 2  # 0 auto, 1 s2cloudless, 2 scl
    min_valid_fraction: float = 0.8
    step_days: int = 16
    samples_per_class: int = 2000

    @classmethod
    def for_demo(cls, scene, stac_url: str) -> ChainSettings:
        """Settings for the embedded demo scene (demo/scene.py) served at ``stac_url``."""
        return cls(
            aoi=scene.aoi_path,
            reference=scene.reference_path,
            reference_field="LULC_ID",
            stac_url=stac_url,
            collection=scene.collection,
            start=scene.start.isoformat(),
            end=scene.end.isoformat(),
        )


def run_chain(run: Runner, settings: ChainSettings, out_dir: str, log: Callable[[str], object] = lambda _: None) -> dict:
    """Run grid → download → clouds → filter → interpolate → reference → train → classify → report → mosaic."""
    os.makedirs(out_dir, exist_ok=True)
    path = lambda *parts: os.path.join(out_dir, *parts)  # noqa: E731
    grid = run("creategrid", {"AOI": settings.aoi, "PATCH_SIZE": settings.patch_size, "RESOLUTION": 10, "OUTPUT": path("grid.gpkg")})["OUTPUT"]
    log(f"grid: {grid}")
    stacks = run(
        "download",
        {
            "PATCHES": grid,
            "START_DATE": settings.start,
            "END_DATE": settings.end,
            "MAX_CLOUD": settings.max_cloud,
            "STAC_URL": settings.stac_url,
            "COLLECTION": settings.collection,
            "OUTPUT_FOLDER": path("stacks"),
        },
    )["STACKS"]
    log(f"downloaded {len(stacks)} patch stacks")
    interpolated, references = [], []
    for stack in sorted(stacks):
        patch = os.path.splitext(os.path.basename(stack))[0]
        os.makedirs(path(patch), exist_ok=True)
        mask = run("cloudmasks", {"INPUT": stack, "METHOD": settings.cloud_method, "OUTPUT": path(patch, "clm.tif")})["OUTPUT"]
        filtered = run(
            "filterscenes",
            {
                "INPUT": stack,
                "MASK": mask,
                "MIN_VALID_FRACTION": settings.min_valid_fraction,
                "OUTPUT": path(patch, "filtered.tif"),
                "OUTPUT_MASK": path(patch, "filtered_clm.tif"),
            },
        )
        interp = run(
            "interpolate",
            {
                "INPUT": filtered["OUTPUT"],
                "MASK": filtered["OUTPUT_MASK"],
                "STEP_DAYS": settings.step_days,
                "START_DATE": settings.start,
                "END_DATE": settings.end,
                "OUTPUT": path(patch, "interpolated.tif"),
            },
        )["OUTPUT"]
        ref = run(
            "rasterizereference",
            {"REFERENCE": settings.reference, "FIELD": settings.reference_field, "GRID": interp, "EROSION": 1, "OUTPUT": path(patch, "reference.tif")},
        )["OUTPUT"]
        interpolated.append(interp)
        references.append(ref)
        log(f"patch {patch}: prepared")
    trained = run(
        "train",
        {
            "INPUT": interpolated,
            "REFERENCE": references,
            "SAMPLES_PER_CLASS": settings.samples_per_class,
            "DROP_EMPTY_CLASSES": True,
            "OUTPUT_MODEL": path("model.onnx"),
            "OUTPUT_PREDICTIONS": path("test_predictions.csv"),
        },
    )
    log(f"model: {trained['OUTPUT_MODEL']}")
    maps = [
        run("classify", {"INPUT": interp, "MODEL": trained["OUTPUT_MODEL"], "OUTPUT": os.path.join(os.path.dirname(interp), "landcover.tif")})["OUTPUT"]
        for interp in interpolated
    ]
    report = run(
        "accuracyreport",
        {
            "PREDICTIONS": trained["OUTPUT_PREDICTIONS"],
            "MODEL": trained["OUTPUT_MODEL"],
            "OUTPUT_HTML": path("report.html"),
            "OUTPUT_JSON": path("report.json"),
        },
    )
    mosaic = run("mosaic", {"INPUT": maps, "OUTPUT_VRT": path("landcover.vrt"), "OUTPUT_COG": path("landcover_cog.tif")})
    return {
        "grid": grid,
        "stacks": stacks,
        "interpolated": interpolated,
        "references": references,
        "maps": maps,
        "model": trained["OUTPUT_MODEL"],
        "report": report,
        "mosaic": mosaic,
    }
