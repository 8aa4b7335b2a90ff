"""Accuracy reports from class rasters, reference polygons and held-out predictions."""

from __future__ import annotations

import base64
import csv
import html
import json
import os
import re

import numpy as np
import pytest
from osgeo import ogr, osr
from rasterio.crs import CRS
from rasterio.transform import from_origin
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    f1_score,
    precision_recall_fscore_support,
)

from lc_plugin.core.classes import ClassTable, LandCoverClass
from lc_plugin.core.errors import Cancelled, LandCoverError
from lc_plugin.core.monitor import Monitor
from lc_plugin.io.rasters import Grid, write_class_raster
from lc_plugin.validation.report import accuracy_report_file, confusion_csv_path, predictions_report_file

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMG_RE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"')

GRID = Grid(CRS.from_epsg(32633), from_origin(500000.0, 5000000.0, 10.0, 10.0), 50, 40)
CLASSES = ClassTable(
    [
        LandCoverClass(1, "cultivated land", "#ffff00"),
        LandCoverClass(2, "forest <old> & young", "#054907"),
        LandCoverClass(3, "grassland", "#ffa500"),
        LandCoverClass(4, "water", "#069af3"),
    ]
)


def _strict_json(path) -> dict:
    def no_constants(name):
        raise AssertionError(f"{name} in JSON")

    with open(path, encoding="utf-8") as f:
        doc = json.load(f, parse_constant=no_constants)
    json.dumps(doc, allow_nan=False)
    return doc


def _maps(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A reference with classes 1–4 (some no data) and a map that never predicts 4."""
    rng = np.random.default_rng(seed)
    ref = rng.choice([0, 1, 2, 3, 4], size=(GRID.height, GRID.width)).astype(np.uint8)
    noise = rng.choice([0, 1, 2, 3], size=ref.shape).astype(np.uint8)
    pred = np.where(rng.random(ref.shape) < 0.7, ref, noise).astype(np.uint8)
    pred[pred == 4] = 3
    pred[:3, :5] = 0
    return pred, ref


def _check_against_sklearn(doc: dict, pred: np.ndarray, ref: np.ndarray, labels: list[int]) -> None:
    keep = (pred != 0) & (ref != 0)
    t, p = ref[keep], pred[keep]
    assert doc["n"] == t.size
    assert doc["labels"] == labels
    assert doc["overall_accuracy"] == pytest.approx(accuracy_score(t, p))
    assert doc["kappa"] == pytest.approx(cohen_kappa_score(t, p))
    prec, rec, f1, sup = precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    # Undefined accuracies are None ("n/a", issue 15) where scikit-learn's zero_division gives 0.
    assert [0.0 if c["precision"] is None else c["precision"] for c in doc["per_class"]] == pytest.approx(prec.tolist())
    assert [0.0 if c["recall"] is None else c["recall"] for c in doc["per_class"]] == pytest.approx(rec.tolist())
    assert [0.0 if c["f1"] is None else c["f1"] for c in doc["per_class"]] == pytest.approx(f1.tolist())
    assert [c["support"] for c in doc["per_class"]] == sup.tolist()
    assert doc["macro_f1"] == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
    assert doc["weighted_f1"] == pytest.approx(f1_score(t, p, labels=labels, average="weighted", zero_division=0))


def _check_html(html_path, doc: dict) -> str:
    with open(html_path, encoding="utf-8") as f:
        page = f.read()
    images = IMG_RE.findall(page)
    alts = [alt for _, alt in images]
    assert alts[:3] == [
        "Confusion matrix (pixel counts)",
        "Confusion matrix normalised by reference (recall)",
        "Confusion matrix normalised by prediction (precision)",
    ]
    if doc.get("roc") and any(c["auc"] is not None for c in doc["roc"]["per_class"]):
        assert "ROC curves one-vs-rest" in alts
    else:
        assert html.escape(doc["roc_note"]) in page
    for data, _ in images:
        assert base64.b64decode(data).startswith(PNG_SIGNATURE)
    assert f"{doc['overall_accuracy']:.4f}" in page
    assert f"{doc['kappa']:.4f}" in page
    return page


def _csv_total(path) -> int:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return int(np.array([[int(v) for v in row[1:]] for row in rows[1:]]).sum())


def test_report_from_class_rasters_matches_sklearn(tmp_path):
    pred, ref = _maps()
    write_class_raster(str(tmp_path / "map.tif"), pred, GRID, CLASSES)
    write_class_raster(str(tmp_path / "ref.tif"), ref, GRID, CLASSES)
    json_out, html_out = tmp_path / "out" / "report.json", tmp_path / "out" / "report.html"
    seen = []
    written = accuracy_report_file(str(tmp_path / "map.tif"), str(tmp_path / "ref.tif"), str(json_out), str(html_out), monitor=Monitor(seen.append))
    assert seen[-1] == pytest.approx(100.0)
    doc = _strict_json(json_out)
    assert doc == json.loads(json.dumps(written.document))
    assert (written.json_path, written.html_path, written.csv_path) == (str(json_out), str(html_out), confusion_csv_path(str(json_out)))
    assert [os.path.basename(p) for p in written.svg_paths] == [f"report_confusion_{i}.svg" for i in (1, 2, 3)]
    _check_against_sklearn(doc, pred, ref, [1, 2, 3, 4])
    assert doc["names"] == CLASSES.names
    assert doc["title"] and doc["created"]
    assert doc["inputs"]["reference_kind"] == "raster"
    assert doc["inputs"]["classification"] == "map.tif"  # no absolute paths in a report (issue 15)
    # Class 4 is never predicted: precision undefined (None, "n/a" on the page), no NaN anywhere (checked by _strict_json).
    water = doc["per_class"][3]
    assert water["predicted"] == 0 and water["precision"] is None and water["support"] > 0
    assert any("'water' (id 4) was never predicted" in n for n in doc["notes"])

    page = _check_html(html_out, doc)
    assert "forest &lt;old&gt; &amp; young" in page and "forest <old>" not in page
    assert "background:#069af3" in page
    assert "never predicted" in page

    csv_path = confusion_csv_path(str(json_out))
    assert csv_path == str(tmp_path / "out" / "report_confusion.csv")
    assert _csv_total(csv_path) == doc["n"]
    svgs = [f"report_confusion_{i}.svg" for i in (1, 2, 3)]  # every figure also as SVG (issue 15)
    assert sorted(os.listdir(tmp_path / "out")) == ["report.html", "report.json", "report_confusion.csv", *svgs]
    for name in svgs:
        text = (tmp_path / "out" / name).read_text(encoding="utf-8")
        assert "<svg" in text and "</svg>" in text and name in page


def test_reference_without_class_table_and_extra_ids(tmp_path):
    """Labels are the union of the tables plus ids only found in the data; names come from the map's table."""
    pred, ref = _maps(1)
    ref[ref == 3] = 7  # an id no table knows: never matched by the map
    write_class_raster(str(tmp_path / "map.tif"), pred, GRID, CLASSES)
    from lc_plugin.io.rasters import write_raster

    write_raster(str(tmp_path / "ref.tif"), ref, GRID, nodata=0)
    doc = accuracy_report_file(str(tmp_path / "map.tif"), str(tmp_path / "ref.tif"), str(tmp_path / "r.json"), str(tmp_path / "r.html")).document
    assert doc["labels"] == [1, 2, 3, 4, 7]
    assert doc["names"][-1] == "class 7"
    _check_against_sklearn(doc, pred, ref, [1, 2, 3, 4, 7])
    assert any("(id 3) has no reference samples" in n for n in doc["notes"])
    _strict_json(tmp_path / "r.json")


def _write_polygons(path, polygons: list[tuple[tuple[float, float, float, float], int, str]]) -> None:
    driver = ogr.GetDriverByName("GPKG")
    ds = driver.CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    lyr = ds.CreateLayer("landcover", srs, ogr.wkbPolygon)
    lyr.CreateField(ogr.FieldDefn("code", ogr.OFTInteger))
    lyr.CreateField(ogr.FieldDefn("label", ogr.OFTString))
    for (x0, y0, x1, y1), code, label in polygons:
        feature = ogr.Feature(lyr.GetLayerDefn())
        feature.SetField("code", code)
        feature.SetField("label", label)
        ring = f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"
        feature.SetGeometry(ogr.CreateGeometryFromWkt(ring))
        lyr.CreateFeature(feature)
    ds = None


def test_vector_reference(tmp_path):
    from lc_plugin.reference.rasterize import rasterize_reference

    x0, y1 = 500000.0, 5000000.0  # grid origin (top left); 50 × 40 pixels of 10 m
    gpkg = tmp_path / "ref.gpkg"
    _write_polygons(
        gpkg,
        [
            ((x0, y1 - 400, x0 + 200, y1), 1, "cultivated land"),  # columns 0–19
            ((x0 + 250, y1 - 300, x0 + 500, y1), 2, "forest"),  # columns 25–49, rows 0–29
            ((x0 + 250, y1 - 400, x0 + 500, y1 - 300), 3, "grassland"),  # columns 25–49, rows 30–39
        ],
    )
    pred = np.zeros((GRID.height, GRID.width), dtype=np.uint8)
    pred[:, :22] = 1
    pred[:, 22:] = 2
    pred[35:, 25:] = 3
    pred[0, 0] = 0
    write_class_raster(str(tmp_path / "map.tif"), pred, GRID, CLASSES)

    with pytest.raises(LandCoverError) as info:
        accuracy_report_file(str(tmp_path / "map.tif"), str(gpkg), str(tmp_path / "v.json"), str(tmp_path / "v.html"))
    assert info.value.argument == "reference_field"
    with pytest.raises(LandCoverError, match="no field 'nope'") as info:  # raised by rasterize_reference, named as the caller knows it
        accuracy_report_file(str(tmp_path / "map.tif"), str(gpkg), str(tmp_path / "v.json"), str(tmp_path / "v.html"), reference_field="nope")
    assert info.value.argument == "reference_field"

    doc = accuracy_report_file(
        str(tmp_path / "map.tif"),
        str(gpkg),
        str(tmp_path / "v.json"),
        str(tmp_path / "v.html"),
        reference_field="code",
        reference_layer="landcover",
    ).document
    ref, _ = rasterize_reference(str(gpkg), "code", GRID, layer="landcover")
    assert (ref != 0).sum() == 40 * 20 + 40 * 25
    _check_against_sklearn(doc, pred, ref, [1, 2, 3, 4])
    assert doc["inputs"]["reference_kind"] == "vector" and doc["inputs"]["reference_field"] == "code"
    assert doc["n"] == 40 * 20 - 1 + 40 * 25
    _check_html(tmp_path / "v.html", _strict_json(tmp_path / "v.json"))


def test_empty_classification_is_a_clear_error(tmp_path):
    _, ref = _maps()
    write_class_raster(str(tmp_path / "map.tif"), np.zeros_like(ref), GRID, CLASSES)
    write_class_raster(str(tmp_path / "ref.tif"), ref, GRID, CLASSES)
    with pytest.raises(LandCoverError, match="no classified pixel") as info:
        accuracy_report_file(str(tmp_path / "map.tif"), str(tmp_path / "ref.tif"), str(tmp_path / "r.json"), str(tmp_path / "r.html"))
    assert info.value.argument == "classification_path"
    assert sorted(os.listdir(tmp_path)) == ["map.qml", "map.tif", "map.tif.aux.xml", "ref.qml", "ref.tif", "ref.tif.aux.xml"]


def test_no_overlap_is_a_clear_error(tmp_path):
    pred, ref = _maps()
    pred[:, 25:] = 0
    ref[:, :25] = 0
    write_class_raster(str(tmp_path / "map.tif"), pred, GRID, CLASSES)
    write_class_raster(str(tmp_path / "ref.tif"), ref, GRID, CLASSES)
    with pytest.raises(LandCoverError, match="No pixel where both the map and the reference have a class") as info:
        accuracy_report_file(str(tmp_path / "map.tif"), str(tmp_path / "ref.tif"), str(tmp_path / "r.json"), str(tmp_path / "r.html"))
    assert info.value.argument == "reference_path"


def test_reference_on_another_grid(tmp_path):
    pred, ref = _maps()
    write_class_raster(str(tmp_path / "map.tif"), pred, GRID, CLASSES)
    other = Grid(GRID.crs, from_origin(500100.0, 5000000.0, 10.0, 10.0), GRID.width, GRID.height)
    write_class_raster(str(tmp_path / "ref.tif"), ref, other, CLASSES)
    with pytest.raises(LandCoverError) as info:
        accuracy_report_file(str(tmp_path / "map.tif"), str(tmp_path / "ref.tif"), str(tmp_path / "r.json"), str(tmp_path / "r.html"))
    assert info.value.argument == "reference_path"
    message = str(info.value)
    assert "origin (500100.000, 5000000.000)" in message and "origin (500000.000, 5000000.000)" in message


def test_outputs_must_not_overwrite_inputs_and_cancel_leaves_nothing(tmp_path):
    pred, ref = _maps()
    write_class_raster(str(tmp_path / "map.tif"), pred, GRID, CLASSES)
    write_class_raster(str(tmp_path / "ref.tif"), ref, GRID, CLASSES)
    with pytest.raises(LandCoverError) as info:
        accuracy_report_file(str(tmp_path / "map.tif"), str(tmp_path / "ref.tif"), str(tmp_path / "r.json"), str(tmp_path / "ref.tif"))
    assert info.value.argument == "html_out"
    calls = []

    def cancel_later() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        accuracy_report_file(
            str(tmp_path / "map.tif"),
            str(tmp_path / "ref.tif"),
            str(tmp_path / "r.json"),
            str(tmp_path / "r.html"),
            monitor=Monitor(is_cancelled=cancel_later),
        )
    assert sorted(os.listdir(tmp_path)) == ["map.qml", "map.tif", "map.tif.aux.xml", "ref.qml", "ref.tif", "ref.tif.aux.xml"]


def _write_predictions(path, y_true: np.ndarray, y_pred: np.ndarray, ids: list[int]) -> None:
    rng = np.random.default_rng(5)
    proba = rng.random((y_true.size, len(ids)))
    proba /= proba.sum(axis=1, keepdims=True)
    rows = np.column_stack([np.zeros(y_true.size), np.arange(y_true.size) // 10, np.arange(y_true.size) % 10, y_true, y_pred, proba])
    header = ",".join(["source", "row", "col", "y_true", "y_pred"] + [f"p_{c}" for c in ids])
    np.savetxt(path, rows, delimiter=",", header=header, comments="", fmt=["%d"] * 5 + ["%.6f"] * len(ids))


def test_predictions_report(tmp_path):
    rng = np.random.default_rng(3)
    y_true = rng.choice([1, 2, 3, 4], size=300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.choice([1, 2, 3], size=300))
    y_pred[y_pred == 4] = 2  # never predicted
    csv_in = tmp_path / "test_predictions.csv"
    _write_predictions(csv_in, y_true, y_pred, [1, 2, 3, 4])

    doc = predictions_report_file(str(csv_in), str(tmp_path / "p.json"), str(tmp_path / "p.html"), classes=CLASSES).document
    _check_against_sklearn(doc, y_pred, y_true, [1, 2, 3, 4])
    assert doc["names"] == CLASSES.names
    page = _check_html(tmp_path / "p.html", _strict_json(tmp_path / "p.json"))
    assert "grassland" in page
    assert _csv_total(tmp_path / "p_confusion.csv") == 300

    # Without a class table the ids (and the p_<id> columns' ids) name the classes.
    doc = predictions_report_file(str(csv_in), str(tmp_path / "q.json"), str(tmp_path / "q.html")).document
    assert doc["labels"] == [1, 2, 3, 4] and doc["names"] == ["class 1", "class 2", "class 3", "class 4"]


def test_predictions_report_bad_csv(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(LandCoverError, match="y_true") as info:
        predictions_report_file(str(bad), str(tmp_path / "p.json"), str(tmp_path / "p.html"))
    assert info.value.argument == "predictions_csv"
    empty = tmp_path / "empty.csv"
    empty.write_text("source,row,col,y_true,y_pred,p_1\n")
    with pytest.raises(LandCoverError, match="no row") as info:
        predictions_report_file(str(empty), str(tmp_path / "p.json"), str(tmp_path / "p.html"))
    assert info.value.argument == "predictions_csv"
    assert not (tmp_path / "p.json").exists()
