"""Validation algorithms through processing.run: sample design → labelling → area estimation, full report."""

from __future__ import annotations

import json

import pytest
from osgeo import ogr
from qgis.core import QgsProcessingException
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.io.rasters import Grid, write_class_raster
from tests.maps import CLASSES, truth_and_map

GRID = Grid(CRS.from_epsg(32633), from_origin(465000.0, 5080000.0, 10.0, 10.0), 60, 50)


@pytest.fixture
def maps(tmp_path):
    truth, mapped = truth_and_map(GRID, 2, grass_from_col=35, water_from_row=35, water_to_col=12)
    path = str(tmp_path / "map.tif")
    write_class_raster(path, mapped, GRID, CLASSES)
    return path, mapped, truth


def test_sample_design_then_area_estimate(run_alg, maps, tmp_path):
    map_path, mapped, truth = maps
    sample = str(tmp_path / "sample.gpkg")
    result = run_alg("sampledesign", {"INPUT": map_path, "SAMPLE_SIZE": 150, "MIN_PER_CLASS": 30, "OUTPUT": sample})
    assert result["N_POINTS"] == 150
    ds = ogr.Open(sample, 1)
    layer = ds.GetLayer(0)
    inv = ~GRID.transform
    for f in layer:
        col, row = inv * (f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY())
        f.SetField("reference", int(truth[int(row), int(col)]))
        layer.SetFeature(f)
    ds = None

    out = run_alg("areaestimate", {"INPUT": map_path, "SAMPLE": sample, "OUTPUT_HTML": str(tmp_path / "a.html"), "OUTPUT_JSON": str(tmp_path / "a.json")})
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["n_sample"] == 150 and out["OVERALL_ACCURACY"] == pytest.approx(doc["overall_accuracy"])
    assert sum(c["sample_size"] for c in doc["per_class"]) == 150
    assert (tmp_path / "a_confusion.csv").exists() and "Olofsson" in (tmp_path / "a.html").read_text()


def test_validation_errors_name_the_parameter(run_alg, maps, tmp_path):
    map_path, _, _ = maps
    sample = str(tmp_path / "sample.gpkg")
    run_alg("sampledesign", {"INPUT": map_path, "SAMPLE_SIZE": 20, "MIN_PER_CLASS": 2, "OUTPUT": sample})
    with pytest.raises(QgsProcessingException, match="REFERENCE_FIELD"):
        run_alg("areaestimate", {"INPUT": map_path, "SAMPLE": sample, "OUTPUT_HTML": str(tmp_path / "b.html"), "OUTPUT_JSON": str(tmp_path / "b.json")})
    assert not (tmp_path / "b.json").exists() and not (tmp_path / "b.html").exists()
    with pytest.raises(QgsProcessingException, match="EXPECTED_ACCURACY_BY_CLASS"):
        run_alg("sampledesign", {"INPUT": map_path, "EXPECTED_ACCURACY_BY_CLASS": "9:0.5", "OUTPUT": str(tmp_path / "c.gpkg")})
    assert not (tmp_path / "c.gpkg").exists()


def test_train_with_cv_and_full_report(run_alg, tmp_path):
    from tests.test_train import make_dataset

    stacks, refs, _ = make_dataset(tmp_path, n_patches=2)
    run_alg(
        "train",
        {
            "INPUT": stacks,
            "REFERENCE": refs,
            "SAMPLES_PER_CLASS": 150,
            "N_ESTIMATORS": 20,
            "NUM_LEAVES": 8,
            "CV_FOLDS": 2,
            "SPLIT": 1,
            "OUTPUT_MODEL": str(tmp_path / "m.onnx"),
            "OUTPUT_PREDICTIONS": str(tmp_path / "t.csv"),
        },
    )
    out = run_alg(
        "accuracyreport",
        {
            "PREDICTIONS": str(tmp_path / "t.csv"),
            "MODEL": str(tmp_path / "m.onnx"),
            "OUTPUT_HTML": str(tmp_path / "r.html"),
            "OUTPUT_JSON": str(tmp_path / "r.json"),
        },
    )
    doc = json.loads((tmp_path / "r.json").read_text())
    assert out["OVERALL_ACCURACY"] == pytest.approx(doc["overall_accuracy"])
    assert doc["roc"]["macro_auc"] is not None and doc["feature_importance"]["gain"]
    assert doc["cross_validation"]["group"] == "patch" and len(doc["cross_validation"]["folds"]) == 2
    assert (tmp_path / "r_confusion.csv").exists()
