"""The HTML reports as a browser shows them: headless Debian chromium loads every image.

Chromium runs the page with a small script appended that records, after load, each image's
``naturalWidth`` into the DOM; ``--dump-dom`` returns it. A screenshot is kept in
build/artefacts/reports/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.classes import make_class_table
from lc_plugin.io.rasters import Grid, write_class_raster

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "build" / "artefacts" / "reports"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (`make test` installs it)")

PROBE = """
<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var report = images.map(function (img) { return img.complete + ':' + img.naturalWidth + ':' + img.naturalHeight; });
  var out = document.createElement('pre');
  out.id = 'lc-image-probe';
  out.textContent = 'IMAGES ' + images.length + ' ' + report.join(' ') + ' END';
  document.body.appendChild(out);
});
</script>
"""


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-default-apps",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def check_in_chromium(html: Path, name: str, tmp_path: Path) -> list[tuple[bool, int, int]]:
    """Load ``html`` in headless chromium: returns (complete, naturalWidth, naturalHeight) per image; keeps a screenshot."""
    probe = tmp_path / f"{name}_probe.html"
    probe.write_text(html.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = chromium(tmp_path / "chromium-profile", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    match = re.search(r"IMAGES (\d+)((?: [a-z]+:\d+:\d+)*) END", dom.stdout)
    assert match, f"no probe output from chromium (rc {dom.returncode}): {dom.stderr[-2000:]}"
    images = [tuple(part.split(":")) for part in match.group(2).split()]
    assert len(images) == int(match.group(1))
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path / "chromium-profile", f"--screenshot={shot}", "--window-size=1280,3600", html.as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000, f"chromium wrote no screenshot of {html}"
    return [(c == "true", int(w), int(h)) for c, w, h in images]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """The plugin's HTML reports: map vs reference, held-out test predictions (with ROC curves), area estimate."""
    from osgeo import ogr

    from lc_plugin.validation.area import area_estimate_file, sample_design_file
    from lc_plugin.validation.report import accuracy_report_file, predictions_report_file

    tmp = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(3)
    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 60, 60)
    ids = [1, 2, 3, 5]
    classes = make_class_table({1: "cultivated land", 2: "forest", 3: "grassland", 5: "water"})
    reference = rng.choice(ids, size=(60, 60)).astype("uint8")
    predicted = np.where(rng.random((60, 60)) < 0.8, reference, rng.choice(ids, size=(60, 60))).astype("uint8")
    write_class_raster(str(tmp / "map.tif"), predicted, grid, classes)
    write_class_raster(str(tmp / "ref.tif"), reference, grid, classes)
    accuracy_report_file(str(tmp / "map.tif"), str(tmp / "ref.tif"), str(tmp / "accuracy.json"), str(tmp / "accuracy.html"))

    y_true, y_pred = reference.ravel()[:400], predicted.ravel()[:400]
    proba = rng.random((400, len(ids)))
    proba[np.arange(400), [ids.index(v) for v in y_pred]] += 1.5
    proba /= proba.sum(axis=1, keepdims=True)
    rows = np.column_stack([np.zeros(400), np.arange(400) // 20, np.arange(400) % 20, y_true, y_pred, proba])
    header = ",".join(["source", "row", "col", "y_true", "y_pred"] + [f"p_{c}" for c in ids])
    np.savetxt(tmp / "test_predictions.csv", rows, delimiter=",", header=header, comments="", fmt=["%d"] * 5 + ["%.6f"] * len(ids))
    predictions_report_file(str(tmp / "test_predictions.csv"), str(tmp / "test.json"), str(tmp / "test.html"), classes=classes)

    sample_design_file(str(tmp / "map.tif"), str(tmp / "sample.gpkg"), sample_size=120, min_per_class=20)
    ds = ogr.Open(str(tmp / "sample.gpkg"), 1)
    layer = ds.GetLayer(0)
    inverse = ~grid.transform
    for feature in layer:
        col, row = inverse * (feature.GetGeometryRef().GetX(), feature.GetGeometryRef().GetY())
        feature.SetField("reference", int(reference[int(row), int(col)]))
        layer.SetFeature(feature)
    ds = None
    area_estimate_file(str(tmp / "map.tif"), str(tmp / "sample.gpkg"), str(tmp / "area.json"), str(tmp / "area.html"))
    return {"accuracy_report": tmp / "accuracy.html", "test_predictions_report": tmp / "test.html", "area_report": tmp / "area.html"}


@pytest.fixture(scope="module")
def accuracy_report(reports) -> Path:
    return reports["accuracy_report"]


@pytest.mark.parametrize("name", ["accuracy_report", "test_predictions_report", "area_report"])
def test_report_images_load_in_chromium(reports, name, tmp_path):
    images = check_in_chromium(reports[name], name, tmp_path)
    if name != "area_report":
        assert len(images) >= 2, "the report draws its confusion matrices as images"
    broken = [i for i, (complete, width, height) in enumerate(images) if not (complete and width > 0 and height > 0)]
    assert not broken, f"images that did not load: {broken} of {images}"


def test_probe_catches_a_broken_image(accuracy_report, tmp_path):
    """The check is real: a report whose image is broken is caught."""
    broken = tmp_path / "broken.html"
    broken.write_text(accuracy_report.read_text(encoding="utf-8").replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1))
    images = check_in_chromium(broken, "broken_report", tmp_path)
    assert any(width == 0 for _, width, _ in images)
    (ARTEFACTS / "broken_report.png").unlink(missing_ok=True)
