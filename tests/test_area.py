"""Olofsson et al. (2014) area estimation: the paper's worked example, sample design, degenerate cases, files."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from osgeo import ogr
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import Grid, write_class_raster
from lc_plugin.validation.area import area_estimate_file, sample_design_file
from lc_plugin.validation.olofsson import allocate_sample, cochran_sample_size, draw_stratified_sample, olofsson_estimates
from tests.maps import CLASSES, truth_and_map

# Olofsson et al. (2014), section 5: strata = map classes deforestation, forest gain, stable forest,
# stable non-forest; 30 m pixels. Rows = map class, columns = reference class (the paper's Table 8).
PAPER_N = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
PAPER_MAPPED = np.array([200_000, 150_000, 3_200_000, 6_450_000])
PAPER_PIXEL_HA = 0.09
PAPER_IDS = [1, 2, 3, 4]
PAPER_NAMES = ["deforestation", "forest gain", "stable forest", "stable non-forest"]


def _strict(doc: dict) -> None:
    json.dumps(doc, allow_nan=False)


def test_olofsson_worked_example():
    est = olofsson_estimates(PAPER_N, PAPER_MAPPED, PAPER_PIXEL_HA, PAPER_IDS, PAPER_NAMES, z=1.96)
    _strict(est)
    c = {x["name"]: x for x in est["per_class"]}
    assert [x["sample_size"] for x in est["per_class"]] == [75, 75, 165, 325]
    assert est["total_area_ha"] == pytest.approx(900_000)
    # Estimated area proportions and areas (the paper's numbers, rounded as printed).
    assert [x["area_proportion"] for x in est["per_class"]] == pytest.approx([0.0235, 0.0130, 0.3175, 0.6460], abs=6e-5)
    assert c["deforestation"]["area_ha"] == pytest.approx(21_158, abs=1)
    assert c["deforestation"]["area_proportion_se"] == pytest.approx(0.0035, abs=5e-5)
    assert c["deforestation"]["area_ci95_ha"] == pytest.approx(6_158, abs=2)
    assert c["forest gain"]["area_ha"] == pytest.approx(11_686, abs=1)
    assert c["forest gain"]["area_ci95_ha"] == pytest.approx(3_756, abs=2)
    assert c["stable forest"]["area_ha"] == pytest.approx(285_770, abs=1)
    assert c["stable non-forest"]["area_ha"] == pytest.approx(581_386, abs=1)
    # User's accuracies 0.88 / 0.73 / 0.93 / 0.96 with ± 0.07 / 0.10 / 0.04 / 0.02.
    assert [x["users_accuracy"] for x in est["per_class"]] == pytest.approx([0.88, 0.73, 0.93, 0.96], abs=5e-3)
    assert [x["users_accuracy_ci95"] for x in est["per_class"]] == pytest.approx([0.07, 0.10, 0.04, 0.02], abs=5e-3)
    # Producer's accuracies 0.75 / 0.85 / 0.93 / 0.96 with ± 0.21 / 0.25 / 0.03 / 0.02.
    assert [x["producers_accuracy"] for x in est["per_class"]] == pytest.approx([0.75, 0.85, 0.93, 0.96], abs=5e-3)
    assert [x["producers_accuracy_ci95"] for x in est["per_class"]] == pytest.approx([0.21, 0.25, 0.03, 0.02], abs=6e-3)
    # Overall accuracy 0.95 ± 0.02.
    assert est["overall_accuracy"] == pytest.approx(0.95, abs=5e-3)
    assert est["overall_accuracy_ci95"] == pytest.approx(0.02, abs=2e-3)
    # The proportions sum to 1 and the areas to the mapped total.
    assert sum(x["area_ha"] for x in est["per_class"]) == pytest.approx(900_000)


def test_sample_size_and_allocation_follow_the_paper():
    w = PAPER_MAPPED / PAPER_MAPPED.sum()
    # Section 5.1: expected user's accuracies 0.7, 0.6, 0.9, 0.95 and S(Ô) = 0.01 give n ≈ 641.
    assert cochran_sample_size(w, [0.7, 0.6, 0.9, 0.95], 0.01) == 641
    olof = allocate_sample(641, PAPER_MAPPED, "olofsson", 100)
    assert olof.sum() == 641 and olof[0] == 100 and olof[1] == 100
    assert olof[3] / olof[2] == pytest.approx(PAPER_MAPPED[3] / PAPER_MAPPED[2], rel=0.02)  # rest proportional
    prop = allocate_sample(641, PAPER_MAPPED, "proportional")
    assert prop.sum() == 641 and prop.tolist() == pytest.approx((641 * w).tolist(), abs=1)
    equal = allocate_sample(640, PAPER_MAPPED, "equal")
    assert equal.tolist() == [160, 160, 160, 160]
    # Never more points than pixels; absent classes get none.
    assert allocate_sample(100, np.array([3, 0, 1000]), "olofsson", 50).tolist() == [3, 0, 50]
    with pytest.raises(LandCoverError) as info:
        cochran_sample_size(w, [0.7, 1.0, 0.9, 0.95], 0.01)
    assert info.value.argument == "users_accuracy"
    with pytest.raises(LandCoverError) as info:
        allocate_sample(100, PAPER_MAPPED, "random")
    assert info.value.argument == "allocation"


def test_draw_stratified_sample():
    labels = np.repeat(np.array([0, 1, 2, 3], dtype=np.uint8), 25).reshape(10, 10)
    idx = draw_stratified_sample(labels, {1: 5, 2: 30, 3: 0}, np.random.default_rng(0))
    got = np.bincount(labels.ravel()[idx], minlength=4)
    assert got.tolist() == [0, 5, 25, 0]
    assert np.unique(idx).size == idx.size


def test_degenerate_cases_are_clear():
    with pytest.raises(LandCoverError, match="no labelled point") as info:
        olofsson_estimates(np.zeros((2, 2)), [10, 10], 0.01, [1, 2])
    assert info.value.argument == "n"
    with pytest.raises(LandCoverError, match="no labelled sample point") as info:
        olofsson_estimates(np.array([[3, 1], [0, 0]]), [10, 10], 0.01, [1, 2], ["a", "b"])
    assert "'b'" in str(info.value)
    # A reference class never labelled: producer's accuracy null; single-point stratum: a note.
    est = olofsson_estimates(np.array([[3, 0, 0], [1, 0, 0], [0, 0, 4]]), [10, 5, 20], 0.01, [1, 2, 3])
    _strict(est)
    assert est["per_class"][1]["producers_accuracy"] is None
    assert any("single sample point" in n for n in est["notes"])
    assert any("No sample point has the reference class" in n for n in est["notes"])
    # A single class, perfectly mapped.
    est = olofsson_estimates(np.array([[5]]), [100], 0.01, [1])
    _strict(est)
    assert est["overall_accuracy"] == 1.0 and est["per_class"][0]["area_se_ha"] == 0.0


GRID = Grid(CRS.from_epsg(32633), from_origin(500000.0, 5000000.0, 10.0, 10.0), 60, 50)


def test_sample_design_and_estimate_files(tmp_path):
    truth, mapped = truth_and_map(GRID, 1, grass_from_col=40, water_from_row=40, water_to_col=10)
    mapped[0, :] = 0
    map_path = str(tmp_path / "map.tif")
    write_class_raster(map_path, mapped, GRID, CLASSES)

    design = sample_design_file(
        map_path, str(tmp_path / "sample.gpkg"), target_se=0.02, expected_accuracy=0.8, expected_accuracy_by_class="3:0.6", min_per_class=30
    ).design
    _strict(design)
    with pytest.raises(LandCoverError, match="strictly between 0 and 1") as info:
        sample_design_file(map_path, str(tmp_path / "x.gpkg"), expected_accuracy_by_class="3:1.5")
    assert info.value.argument == "expected_accuracy_by_class" and not (tmp_path / "x.gpkg").exists()
    sizes = {c["id"]: c["sample_size"] for c in design["classes"]}
    assert sizes[3] == 30 and design["sample_size"] == sum(sizes.values())
    assert design["sample_size"] >= design["cochran_sample_size"]

    # Label the points with the truth, leaving three unlabelled.
    ds = ogr.Open(str(tmp_path / "sample.gpkg"), 1)
    layer = ds.GetLayer(0)
    assert layer.GetFeatureCount() == design["sample_size"]
    features = list(layer)
    inv = ~GRID.transform
    for i, f in enumerate(features):
        assert f.IsFieldNull("reference")
        col, row = inv * (f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY())
        assert mapped[int(row), int(col)] == f.GetField("map_class")
        if i >= 3:
            f.SetField("reference", int(truth[int(row), int(col)]))
            layer.SetFeature(f)
    ds = None

    estimate = area_estimate_file(map_path, str(tmp_path / "sample.gpkg"), str(tmp_path / "a.json"), str(tmp_path / "a.html"))
    assert estimate.csv_path == str(tmp_path / "a_confusion.csv") and estimate.html_path == str(tmp_path / "a.html")
    doc = estimate.document
    _strict(json.loads((tmp_path / "a.json").read_text()))
    assert doc["n_sample"] == design["sample_size"] - 3
    assert any("3 point(s) without a reference label" in n for n in doc["notes"])
    true_area = {c: float((truth[mapped != 0] == c).sum()) * 0.01 for c in (1, 2, 3)}
    for c in doc["per_class"]:  # the estimate brackets the truth (3 SE: a fixed seed, not a coverage test)
        assert abs(c["area_ha"] - true_area[c["id"]]) <= 3 * c["area_se_ha"] + 1e-9
    page = (tmp_path / "a.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"', page)
    assert [alt for _, alt in images] == ["Mapped vs estimated area", "Error matrix (sample counts)", "Error matrix (estimated area proportions)"]
    assert all(base64.b64decode(d).startswith(b"\x89PNG") for d, _ in images)
    assert f"{doc['overall_accuracy']:.3f} ± {doc['overall_accuracy_ci95']:.3f}" in page
    for c in doc["per_class"]:
        assert f"{c['area_ha']:,.1f}" in page
    rows = (tmp_path / "a_confusion.csv").read_text().splitlines()
    assert len(rows) == 4 and sum(int(r.split(",")[-2]) for r in rows[1:]) == doc["n_sample"]

    # A missing field, or nothing labelled: a clear error naming the field, and no output.
    with pytest.raises(LandCoverError, match="has no field 'missing'") as info:
        area_estimate_file(map_path, str(tmp_path / "sample.gpkg"), str(tmp_path / "b.json"), str(tmp_path / "b.html"), label_field="missing")
    assert info.value.argument == "label_field"
    sample_design_file(map_path, str(tmp_path / "empty.gpkg"), sample_size=20, min_per_class=2)
    with pytest.raises(LandCoverError, match="No point") as info:
        area_estimate_file(map_path, str(tmp_path / "empty.gpkg"), str(tmp_path / "b.json"), str(tmp_path / "b.html"))
    assert info.value.argument == "label_field"
    assert not (tmp_path / "b.json").exists() and not (tmp_path / "b.html").exists()
