"""landcover:rungrid through processing.run on the demo scene: patches, mosaic, report, resume."""

from __future__ import annotations

import json
import os

import pytest
from qgis.core import QgsProcessingException


@pytest.fixture(scope="module")
def small_run(qgis_app, demo_scene, tmp_path_factory):
    from lc_plugin.download import download_patch
    from lc_plugin.grid import create_grid, read_patches
    from lc_plugin.interpolate import interpolate_file
    from lc_plugin.reference import rasterize_reference_file
    from lc_plugin.train import train_classifier

    scene, server = demo_scene
    out = tmp_path_factory.mktemp("rungrid")
    start, end = scene.start, scene.start.replace(month=4, day=30)
    one = str(out / "one.gpkg")
    create_grid(scene.aoi_path, one, patch_px=100)
    stack, interp, ref, model = (str(out / n) for n in ("s.tif", "i.tif", "r.tif", "m.onnx"))
    download_patch(read_patches(one)[0], stack, start=start, end=end, stac_url=server.url, collection=scene.collection, max_cloud=100)
    interpolate_file(stack, interp, step_days=30, start=start, end=end)
    rasterize_reference_file(scene.reference_path, "LULC_ID", interp, ref)
    train_classifier([interp], [ref], model, n_estimators=20, samples_per_class=300, drop_empty_classes=True)
    grid = str(out / "grid.gpkg")
    count = create_grid(scene.aoi_path, grid, patch_px=50)
    params = {
        "GRID": grid,
        "MODEL": model,
        "START_DATE": start.isoformat(),
        "END_DATE": end.isoformat(),
        "STAC_URL": server.url,
        "COLLECTION": scene.collection,
        "MAX_CLOUD": 100,
        "CLOUD_METHOD": 2,
        "STEP_DAYS": 30,
        "EXECUTOR": 1,  # a process pool started from inside QGIS
        "WORKERS": 2,
        "RUN_FOLDER": str(out / "run"),
    }
    return params, count


def test_rungrid_classifies_every_patch_and_resumes(run_alg, small_run):
    params, count = small_run
    result = run_alg("rungrid", params)
    assert result["DONE"] == count and result["FAILED"] == 0
    assert os.path.isfile(result["OUTPUT_MOSAIC"]) and os.path.isfile(result["OUTPUT_REPORT"])
    report = json.load(open(os.path.join(params["RUN_FOLDER"], "report.json"), encoding="utf-8"))
    assert report["counts"]["done"] == count
    again = run_alg(
        "rungrid",
        {
            "GRID": params["GRID"],
            "MODEL": params["MODEL"],
            "PARAMETERS_FILE": os.path.join(params["RUN_FOLDER"], "parameters.json"),
            "RUN_FOLDER": params["RUN_FOLDER"],
        },
    )
    assert again["DONE"] == count
    report = json.load(open(os.path.join(params["RUN_FOLDER"], "report.json"), encoding="utf-8"))
    assert report["counts"]["skipped"] == count


def test_rungrid_without_dates_names_the_parameter(run_alg, small_run, tmp_path):
    params, _ = small_run
    bad = {k: v for k, v in params.items() if k != "START_DATE"} | {"RUN_FOLDER": str(tmp_path / "run")}
    with pytest.raises(QgsProcessingException, match="START_DATE"):
        run_alg("rungrid", bad)
