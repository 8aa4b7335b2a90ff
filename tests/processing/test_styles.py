"""Outputs loaded as from the GUI (processing.runAndLoadResults) carry the style of their kind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.io.rasters import Grid, TimeStack, write_raster, write_stack

ROOT = Path(__file__).resolve().parents[2]
LULC = ROOT / "demo" / "data" / "eo-learn-testpatch" / "TestEOPatch" / "vector_timeless" / "LULC.gpkg"
DATES = [dt.date(2017, 5, 1), dt.date(2017, 6, 10), dt.date(2017, 7, 20)]
BANDS = ["B02", "B03", "B04", "B08", "SCL"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> str:
    """A 3-date, 100 × 100 px stack over the eo-learn test patch (UTM 33N), the middle date cloud-free."""
    rng = np.random.default_rng(0)
    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 100, 100)
    data = rng.uniform(0.02, 0.3, (3, 5, 100, 100)).astype("float32")
    data[:, 4] = 4  # SCL vegetation
    data[0, 4, :50] = 9  # high-probability cloud on the first date
    data[2, :4, 60:] = np.nan  # the last date is half outside the footprint
    path = tmp_path_factory.mktemp("styles") / "stack.tif"
    write_stack(str(path), TimeStack(data, DATES, BANDS, grid))
    return str(path)


@pytest.fixture
def project(qgis_app):
    from qgis.core import QgsProject

    project = QgsProject.instance()
    project.clear()
    yield project
    project.clear()


def run_and_load(alg: str, params: dict, project):
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    context = QgsProcessingContext()
    context.setProject(project)
    result = processing.runAndLoadResults(f"landcover:{alg}", params, feedback=QgsProcessingFeedback(), context=context)
    assert result, f"{alg} failed"
    return result


def only_layer(project, name_start: str):
    layers = [layer for layer in project.mapLayers().values() if layer.name().startswith(name_start)]
    assert len(layers) == 1, [layer.name() for layer in project.mapLayers().values()]
    return layers[0]


def test_class_raster_is_paletted_with_class_colours_and_names(project, stack, tmp_path):
    from qgis.core import QgsPalettedRasterRenderer

    run_and_load("rasterizereference", {"REFERENCE": str(LULC), "FIELD": "LULC_ID", "GRID": stack, "OUTPUT": str(tmp_path / "ref.tif")}, project)
    layer = only_layer(project, "Reference raster")
    renderer = layer.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    classes = {c.value: (c.label, c.color.name()) for c in renderer.classes()}
    assert classes[2] == ("forest", "#054907") and classes[1] == ("cultivated land", "#ffff00")
    legend = [label for label, _ in renderer.legendSymbologyItems()]
    assert "forest" in legend and "grassland" in legend


def test_time_stack_is_true_colour_of_the_clearest_date(project, stack, tmp_path):
    from qgis.core import QgsMultiBandColorRenderer

    run_and_load("interpolate", {"INPUT": stack, "STEP_DAYS": 40, "OUTPUT": str(tmp_path / "i.tif")}, project)
    layer = only_layer(project, "Interpolated time stack")
    renderer = layer.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer)
    n_bands = 4  # SCL is not interpolated
    red, green, blue = renderer.redBand(), renderer.greenBand(), renderer.blueBand()
    date_index = (red - 1) // n_bands
    assert (red - 1) % n_bands == 2 and green == red - 1 and blue == red - 2  # B04/B03/B02 of one date
    assert layer.dataProvider().generateBandName(red) and "B04" in layer.bandName(red)
    assert layer.name().endswith("true colour)") and date_index in (0, 1)
    assert renderer.redContrastEnhancement().maximumValue() == pytest.approx(0.3)


def test_cloud_mask_has_a_ramp_and_split_layers_are_dated(project, stack, tmp_path):
    from qgis.core import QgsMultiBandColorRenderer, QgsSingleBandPseudoColorRenderer

    run_and_load("cloudmasks", {"INPUT": stack, "METHOD": 2, "OUTPUT": str(tmp_path / "clm.tif")}, project)
    mask = only_layer(project, "Cloud mask stack")
    assert isinstance(mask.renderer(), QgsSingleBandPseudoColorRenderer)
    assert mask.renderer().band() == 2  # the cloud-free June date
    items = mask.renderer().shader().rasterShaderFunction().colorRampItemList()
    assert [i.label for i in items] == ["clear", "cloud"]

    run_and_load("splitstack", {"INPUT": stack, "OUTPUT_FOLDER": str(tmp_path / "dates")}, project)
    dated = sorted((layer for layer in project.mapLayers().values() if layer.name().startswith("stack 2017")), key=lambda x: x.name())
    assert [layer.name().split(" (")[0] for layer in dated] == [f"stack {d.isoformat()}" for d in DATES]
    for layer, date in zip(dated, DATES):
        props = layer.temporalProperties()
        assert props.isActive()
        begin = props.fixedTemporalRange().begin().date()
        assert (begin.year(), begin.month(), begin.day()) == (date.year, date.month, date.day)
        assert isinstance(layer.renderer(), QgsMultiBandColorRenderer) and layer.renderer().redBand() == 3


def test_probability_and_valid_count_styles(qgis_app, tmp_path):
    from landcover.algorithms.styling import STYLES_DIR, apply_style
    from qgis.core import QgsRasterLayer, QgsSingleBandPseudoColorRenderer

    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 20, 20)
    proba = tmp_path / "proba.tif"
    classes = '[{"id": 1, "name": "forest", "color": "#054907"}, {"id": 2, "name": "water", "color": "#069af3"}]'
    probabilities = np.random.default_rng(1).random((2, 20, 20)).astype("float32")
    write_raster(str(proba), probabilities, grid, tags={"LC_KIND": "probabilities", "LC_CLASSES": classes})
    layer = QgsRasterLayer(str(proba), "Class probabilities")
    assert apply_style(layer) == "probability"
    assert isinstance(layer.renderer(), QgsSingleBandPseudoColorRenderer) and layer.renderer().band() == 1
    assert layer.renderer().classificationMax() == pytest.approx(1.0)

    count = tmp_path / "count.tif"
    write_raster(str(count), np.full((20, 20), 7, dtype="uint16"), grid, tags={"LC_KIND": "validcount", "LC_N_DATES": "23"})
    layer = QgsRasterLayer(str(count), "Valid observations")
    assert apply_style(layer) == "validcount"
    items = layer.renderer().shader().rasterShaderFunction().colorRampItemList()
    assert items[0].value == 0 and items[-1].value == pytest.approx(23)
    for qml in ("classes", "probability", "truecolor", "cloudmask", "cloudprob", "validcount"):
        assert (Path(STYLES_DIR) / f"{qml}.qml").is_file(), qml


def test_download_from_the_dialog_loads_the_first_stack_in_true_colour(project, demo_scene, tmp_path, monkeypatch):
    """Download's stacks are not destination parameters; inside desktop QGIS the first one is loaded anyway."""
    import qgis.utils
    from qgis.core import QgsMultiBandColorRenderer

    scene, server = demo_scene
    grid = run_and_load("creategrid", {"AOI": scene.aoi_path, "PATCH_SIZE": 100, "OUTPUT": str(tmp_path / "grid.gpkg")}, project)["OUTPUT"]
    project.clear()
    monkeypatch.setattr(qgis.utils, "iface", object())  # what desktop QGIS has and qgis_process lacks
    params = {
        "PATCHES": grid,
        "PATCH_ID": "465_5079",
        "START_DATE": "2017-06-01",
        "END_DATE": "2017-08-31",
        "MAX_CLOUD": 100,
        "STAC_URL": server.url,
        "COLLECTION": scene.collection,
        "OUTPUT_FOLDER": str(tmp_path / "stacks"),
    }
    result = run_and_load("download", params, project)
    layer = only_layer(project, "Time stack")
    assert layer.source() == result["OUTPUT"]
    assert isinstance(layer.renderer(), QgsMultiBandColorRenderer)
    assert "B04" in layer.bandName(layer.renderer().redBand()) and "2017-0" in layer.name()


def test_valid_count_is_counted_and_shown_as_a_gradient(project, stack, tmp_path):
    import rasterio
    from qgis.core import QgsSingleBandPseudoColorRenderer

    clm = run_and_load("cloudmasks", {"INPUT": stack, "METHOD": 2, "OUTPUT": str(tmp_path / "clm.tif")}, project)["OUTPUT"]
    project.clear()
    out = run_and_load("validcount", {"INPUT": stack, "MASK": clm, "OUTPUT": str(tmp_path / "count.tif")}, project)["OUTPUT"]
    with rasterio.open(out) as src:
        count = src.read(1)
    # date 1 cloudy in rows 0-49, date 3 without data in rows 60-99
    assert count[0, 0] == count[0, 99] == 2 and count[55, 0] == count[55, 99] == 3 and count[99, 0] == 2
    layer = only_layer(project, "Valid observations")
    assert isinstance(layer.renderer(), QgsSingleBandPseudoColorRenderer)
    items = layer.renderer().shader().rasterShaderFunction().colorRampItemList()
    assert items[0].value == 0 and items[-1].value == 3 and items[0].color.name() == "#d7191c"


def test_probabilities_load_unchecked_below_the_map(project, stack, tmp_path):
    """Processing adds its outputs in file-name order (here the map first, so the ramp would land on top):
    the probabilities end up under the class map and unchecked, so the canvas shows the classes."""
    from qgis.core import QgsPalettedRasterRenderer, QgsSingleBandPseudoColorRenderer

    ref = run_and_load("rasterizereference", {"REFERENCE": str(LULC), "FIELD": "LULC_ID", "GRID": stack, "OUTPUT": str(tmp_path / "ref.tif")}, project)
    interp = run_and_load("interpolate", {"INPUT": stack, "STEP_DAYS": 40, "OUTPUT": str(tmp_path / "i.tif")}, project)
    # A synthetic stack interpolated without cloud masks: accepted explicitly (issue 15 refuses it by default).
    train = {"INPUT": [interp["OUTPUT"]], "REFERENCE": [ref["OUTPUT"]], "N_ESTIMATORS": 5, "SAMPLES_PER_CLASS": 200, "DROP_EMPTY_CLASSES": True}
    train.update(ALLOW_UNMASKED=True, CV_FOLDS=0)
    model = run_and_load("train", {**train, "OUTPUT_MODEL": str(tmp_path / "m.onnx")}, project)["OUTPUT_MODEL"]
    project.clear()
    map_path, proba_path = str(tmp_path / "a_map.tif"), str(tmp_path / "b_proba.tif")
    classify = {"INPUT": interp["OUTPUT"], "MODEL": model, "ALLOW_UNMASKED": True, "OUTPUT": map_path, "OUTPUT_PROBABILITIES": proba_path}
    run_and_load("classify", classify, project)
    order = [node.layer() for node in project.layerTreeRoot().findLayers()]
    assert [layer.source() for layer in order] == [map_path, proba_path]
    nodes = project.layerTreeRoot().findLayers()
    assert isinstance(order[0].renderer(), QgsPalettedRasterRenderer) and nodes[0].itemVisibilityChecked()
    assert isinstance(order[1].renderer(), QgsSingleBandPseudoColorRenderer) and not nodes[1].itemVisibilityChecked()
    assert "(band 1 = " in order[1].name()


def test_mosaic_cog_opened_by_hand_shows_the_class_legend(project, stack, tmp_path):
    """A class mosaic opened as a plain raster (not through the plugin) gets its .qml: one legend entry per class,
    not 256 unnamed colour-table entries."""
    from qgis.core import QgsPalettedRasterRenderer, QgsRasterLayer

    ref = run_and_load("rasterizereference", {"REFERENCE": str(LULC), "FIELD": "LULC_ID", "GRID": stack, "OUTPUT": str(tmp_path / "ref.tif")}, project)
    vrt, cog = str(tmp_path / "mosaic.vrt"), str(tmp_path / "mosaic_cog.tif")
    run_and_load("mosaic", {"INPUT": [ref["OUTPUT"]], "OUTPUT_VRT": vrt, "OUTPUT_COG": cog}, project)
    project.clear()
    for path in (cog, vrt):
        layer = QgsRasterLayer(path, "by hand")
        assert layer.isValid()
        renderer = layer.renderer()
        assert isinstance(renderer, QgsPalettedRasterRenderer), renderer.type()
        classes = {c.value: (c.label, c.color.name()) for c in renderer.classes()}
        assert classes[2] == ("forest", "#054907") and classes[3][0] == "grassland"
        assert len(classes) < 20 and all(label for label, _ in classes.values())
    # without the .qml, QGIS still reads the names GDAL keeps (category names in the .aux.xml) with the colour table
    Path(cog).with_suffix(".qml").unlink()
    unstyled = QgsRasterLayer(cog, "no style")
    classes = {c.value: c.label for c in unstyled.renderer().classes()}
    assert classes[2] == "forest" and classes[0] == "no data" and len(classes) == 256  # GeoTIFF palettes have 256 entries
