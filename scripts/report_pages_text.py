"""Render every HTML page of the plugin from fixed inputs and write what each says, to diff two versions.

    .venv/bin/python scripts/report_pages_text.py OUT_FOLDER

Writes ``OUT_FOLDER/<page>.txt`` for the accuracy report (raster reference, and a labelled point
sample read as a stratified sample), the held-out predictions report, the area estimate and the grid
run's page: the visible text (tables as ``| cell | cell``), each image as ``[IMG alt sha1]`` of its
embedded bytes, swatch and row styles; the creation time is masked. Run it before and after a
change to the pages and ``diff -r`` the folders: same words, numbers and figures means the change
kept what the pages say. Class names hold ``<`` and ``&`` to check escaping. The pages themselves
are kept in ``OUT_FOLDER/work/``.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from html.parser import HTMLParser

import numpy as np
from osgeo import ogr
from rasterio.crs import CRS
from rasterio.transform import from_origin

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lc_plugin.core.classes import make_class_table  # noqa: E402
from lc_plugin.io.rasters import Grid, write_class_raster  # noqa: E402
from lc_plugin.runs import batch  # noqa: E402
from lc_plugin.validation.area import area_estimate_file, sample_design_file  # noqa: E402
from lc_plugin.validation.report import accuracy_report_file, predictions_report_file  # noqa: E402

BLOCKS = ("tr", "p", "li", "h1", "h2", "div", "table", "ul", "summary", "pre")


class PageText(HTMLParser):
    """The visible text of a page, one block per line, with images and styles spelt out."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self.in_style = self.in_style or tag == "style"
        if tag == "img":
            src = a.get("src", "")
            digest = hashlib.sha1(src.encode()).hexdigest()[:10] if src.startswith("data:") else src
            self.parts.append(f"\n[IMG {a.get('alt')} {digest}]\n")
        if tag in BLOCKS:
            self.parts.append("\n")
        if tag in ("td", "th"):
            self.parts.append(" | ")
        if tag == "span" and "swatch" in (a.get("class") or ""):
            self.parts.append(f"[swatch {a.get('style')}]")
        if tag == "tr" and a.get("style"):
            self.parts.append(f"[row {a.get('style')}]")

    def handle_endtag(self, tag: str) -> None:
        self.in_style = self.in_style and tag != "style"

    def handle_data(self, data: str) -> None:
        if not self.in_style:
            self.parts.append(data)


def page_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        html = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[^<\s]*", "<DATE>", f.read())
    parser = PageText()
    parser.feed(html)
    text = re.sub(r"[ \t]+", " ", "".join(parser.parts))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip()) + "\n"


def label_sample(sample: str, reference: np.ndarray, grid: Grid) -> None:
    ds = ogr.Open(sample, 1)
    layer = ds.GetLayer(0)
    inverse = ~grid.transform
    for feature in layer:
        col, row = inverse * (feature.GetGeometryRef().GetX(), feature.GetGeometryRef().GetY())
        feature.SetField("reference", int(reference[int(row), int(col)]))
        layer.SetFeature(feature)
    ds = None


def render_all(work: str) -> dict[str, str]:
    """Every page from the same synthetic 60×60 map (80 % agreement with its reference); returns name → HTML path."""
    rng = np.random.default_rng(3)
    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 60, 60)
    ids = [1, 2, 3, 5]
    classes = make_class_table({1: "cultivated <land> & co", 2: "forest", 3: "grassland", 5: "water"})
    reference = rng.choice(ids, size=(60, 60)).astype("uint8")
    predicted = np.where(rng.random((60, 60)) < 0.8, reference, rng.choice(ids, size=(60, 60))).astype("uint8")
    path = {name: os.path.join(work, name) for name in ("map.tif", "ref.tif", "test_predictions.csv", "sample.gpkg", "run")}
    write_class_raster(path["map.tif"], predicted, grid, classes)
    write_class_raster(path["ref.tif"], reference, grid, classes)
    pages = {k: os.path.join(work, f"{k}.html") for k in ("accuracy", "predictions", "area", "points")}
    accuracy_report_file(path["map.tif"], path["ref.tif"], os.path.join(work, "accuracy.json"), pages["accuracy"], title="A <b>title</b> & more")

    y_true, y_pred = reference.ravel()[:400], predicted.ravel()[:400]
    proba = rng.random((400, len(ids)))
    proba[np.arange(400), [ids.index(v) for v in y_pred]] += 1.5
    proba /= proba.sum(axis=1, keepdims=True)
    rows = np.column_stack([np.zeros(400), np.arange(400) // 20, np.arange(400) % 20, y_true, y_pred, proba])
    header = ",".join(["source", "row", "col", "y_true", "y_pred"] + [f"p_{c}" for c in ids])
    np.savetxt(path["test_predictions.csv"], rows, delimiter=",", header=header, comments="", fmt=["%d"] * 5 + ["%.6f"] * len(ids))
    predictions_report_file(path["test_predictions.csv"], os.path.join(work, "predictions.json"), pages["predictions"], classes=classes)

    sample_design_file(path["map.tif"], path["sample.gpkg"], sample_size=120, min_per_class=20)
    label_sample(path["sample.gpkg"], reference, grid)
    area_estimate_file(path["map.tif"], path["sample.gpkg"], os.path.join(work, "area.json"), pages["area"])
    accuracy_report_file(path["map.tif"], path["sample.gpkg"], os.path.join(work, "points.json"), pages["points"], reference_field="reference")

    params = batch.BatchParameters(grid="g.gpkg", start="2020-01-01", end="2020-12-31")
    records = [
        {"patch": "p<1>", "status": "done", "duration_s": 1.5},
        {"patch": "p2", "status": "failed", "error": "boom & <bad>", "traceback": "Traceback <x>"},
        {"patch": "p3", "status": "skipped"},
    ]
    # Fixed versions, so the page does not depend on the venv (patched where write_report looks them up).
    sys.modules[batch.write_report.__module__].package_versions = lambda: {"numpy": "1.24", "gdal": "3.6"}
    os.makedirs(path["run"], exist_ok=True)
    _, pages["batch"] = batch.write_report(path["run"], params, records, None, executor="threads", workers=2, wall_s=3.25)
    return pages


def main(out: str) -> None:
    work = os.path.join(out, "work")
    os.makedirs(work, exist_ok=True)
    for name, html in render_all(work).items():
        with open(os.path.join(out, f"{name}.txt"), "w", encoding="utf-8") as f:
            f.write(page_text(html).replace(os.path.abspath(out), "<OUT>"))


if __name__ == "__main__":
    main(sys.argv[1])
