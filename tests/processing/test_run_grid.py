"""landcover:rungrid through processing.run on the demo scene: patches, mosaic, report, resume."""

from __future__ import annotations

import json
import os

import pytest
from qgis.core import QgsProcessingException


def _report(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def small_run(qgis_app, demo_scene, tmp_path_factory):
    from demo.grid_run import train_demo_model
    from lc_plugin.runs.grid import create_grid

    scene, server = demo_scene
    out = tmp_path_factory.mktemp("rungrid")
    start, end = scene.start, scene.start.replace(month=4, day=30)
    model = train_demo_model(scene, server.url, str(out), start, end)
    grid = str(out / "grid.gpkg")
    count = create_grid(scene.aoi_path, grid, patch_px=50).count
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
    return params, count, scene.reference_path


def test_rungrid_classifies_every_patch_and_resumes(run_alg, small_run):
    params, count, _ = small_run
    result = run_alg("rungrid", params)
    assert result["DONE"] == count and result["FAILED"] == 0
    assert os.path.isfile(result["OUTPUT_MOSAIC"]) and os.path.isfile(result["OUTPUT_REPORT"])
    report = _report(os.path.join(params["RUN_FOLDER"], "report.json"))
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
    report = _report(os.path.join(params["RUN_FOLDER"], "report.json"))
    assert report["counts"]["skipped"] == count


def test_rungrid_without_dates_names_the_parameter(run_alg, small_run, tmp_path):
    params, _, _ = small_run
    bad = {k: v for k, v in params.items() if k != "START_DATE"} | {"RUN_FOLDER": str(tmp_path / "run")}
    with pytest.raises(QgsProcessingException, match="START_DATE"):
        run_alg("rungrid", bad)


def test_prepare_the_grid_train_on_it_then_classify(run_alg, small_run, tmp_path):
    """The country-scale training loop in the toolbox: rungrid without a model prepares stacks and
    references, train reads them all through RUN_FOLDER, rungrid with the model only classifies."""
    params, count, reference = small_run
    run = str(tmp_path / "run")
    prepare = {k: v for k, v in params.items() if k != "MODEL"} | {"RUN_FOLDER": run, "REFERENCE": reference, "REFERENCE_FIELD": "LULC_ID"}
    prepared = run_alg("rungrid", prepare)
    assert prepared["DONE"] == count and not prepared.get("OUTPUT_MOSAIC")
    model = str(tmp_path / "grid.onnx")
    trained = run_alg(
        "train", {"RUN_FOLDER": run, "SAMPLES_PER_CLASS": 200, "N_ESTIMATORS": 10, "DROP_EMPTY_CLASSES": True, "OUTPUT_MODEL": model}
    )
    assert trained["TEST_OVERALL_ACCURACY"] > 0.5
    classified = run_alg("rungrid", prepare | {"MODEL": model})
    assert classified["DONE"] == count and os.path.isfile(classified["OUTPUT_MOSAIC"])
    report = _report(os.path.join(run, "report.json"))
    assert all(p.get("reused_preparation") and list(p["steps"]) == ["classify"] for p in report["patches"])
    with pytest.raises(QgsProcessingException, match="INPUT"):
        run_alg("train", {"OUTPUT_MODEL": str(tmp_path / "none.onnx")})
    with pytest.raises(QgsProcessingException, match="RUN_FOLDER"):
        run_alg("train", {"RUN_FOLDER": str(tmp_path), "OUTPUT_MODEL": str(tmp_path / "none.onnx")})
