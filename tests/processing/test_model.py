"""The shipped graphical-modeler model: registered in the toolbox's Models, runs the chain headless."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from lc_plugin.io.rasters import read_class_raster

MODEL_ID = "model:landcover_chain"
MODEL_FILE = Path(__file__).resolve().parents[2] / "resources" / "models" / "landcover_chain.model3"


def test_model_is_registered_in_the_models_provider(qgis_app):
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    model = registry.algorithmById(MODEL_ID)
    assert model is not None, [a.id() for a in registry.providerById("model").algorithms()]
    children = model.childAlgorithms()
    ids = {child.algorithmId() for child in children.values()}
    assert ids == {
        f"landcover:{a}"
        for a in ("creategrid", "download", "cloudmasks", "filterscenes", "interpolate", "rasterizereference", "train", "classify", "accuracyreport")
    }
    assert model.shortHelpString()
    # refreshing the Models provider (as saving a model does) keeps the shipped model
    registry.providerById("model").refreshAlgorithms()
    assert registry.algorithmById(MODEL_ID) is not None


def test_model_help_gives_each_input_its_help_and_default_as_defined(qgis_app):
    """Each model input has its help (tooltip) and, in the model's help, its default read from its definition."""
    from qgis.core import QgsProcessingModelAlgorithm
    from qgis.PyQt.QtCore import QDate

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL_FILE))
    content = model.helpContent()
    inputs = [d for d in model.parameterDefinitions() if not d.isDestination()]
    for definition in inputs:
        text, default = content[definition.name()], definition.defaultValue()
        assert definition.help() and text.startswith(definition.help()), definition.name()
        if default is None:
            assert "Default" not in text, definition.name()
        elif isinstance(default, (int, float)):
            assert float(re.search(r"Default: ([\d.]+)\.$", text).group(1)) == float(default), text
        else:
            shown = default.toString("yyyy-MM-dd") if isinstance(default, QDate) else str(default)
            assert text.endswith(f"Default: {shown}.") or text.endswith(f"Default: <code>{shown}</code>."), text
    assert content["MAX_CLOUD"].endswith("Default: 80.") and sum("Default" in content[d.name()] for d in inputs) >= 9


def test_shipped_model_is_valid_with_inputs_in_workflow_order(qgis_app):
    """What the modeler's "Run Model" checks: every required parameter of every step is set; the dialog
    lists the inputs as the chain uses them (the Start date before the End date)."""
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL_FILE))
    valid, errors = model.validate()
    assert valid and not errors, errors
    for child_id in model.childAlgorithms():
        assert model.validateChildAlgorithm(child_id) == (True, [])
    names = [d.name() for d in model.parameterDefinitions() if not d.isDestination()]
    assert names[:5] == ["AOI", "PATCH_SIZE", "PATCH_ID", "START_DATE", "END_DATE"]
    assert names.index("REFERENCE") < names.index("REFERENCE_FIELD") < names.index("N_ESTIMATORS")
    assert model.parameterDefinition("START_DATE").type() == "datetime"


def test_model_runs_the_chain_on_one_patch(qgis_app, demo_scene, tmp_path, monkeypatch):
    """Run as the dialog does (outputs loaded into the project, inside desktop QGIS): the chain's map,
    model and report come out, the map is loaded with its legend, intermediate stacks are not loaded."""
    import processing
    import qgis.utils
    from qgis.core import QgsPalettedRasterRenderer, QgsProcessingContext, QgsProcessingFeedback, QgsProject

    scene, server = demo_scene
    monkeypatch.setattr(qgis.utils, "iface", object())  # what desktop QGIS has and qgis_process lacks
    project = QgsProject.instance()
    project.clear()
    context = QgsProcessingContext()
    context.setProject(project)
    params = {
        "AOI": scene.aoi_path,
        "PATCH_SIZE": 100,
        "PATCH_ID": "465_5079",
        "START_DATE": scene.start.isoformat(),
        "END_DATE": scene.end.isoformat(),
        "MAX_CLOUD": 100,
        "STAC_URL": server.url,
        "COLLECTION": scene.collection,
        "REFERENCE": scene.reference_path,
        "REFERENCE_FIELD": "LULC_ID",
        "STEP_DAYS": 16,
        "SAMPLES_PER_CLASS": 1000,  # smaller than the defaults (5000, 300 trees) to keep the test quick
        "N_ESTIMATORS": 100,
        "classify:MAP": str(tmp_path / "map.tif"),
        "train:MODEL": str(tmp_path / "model.onnx"),
        "report:REPORT_HTML": str(tmp_path / "report.html"),
        "report:REPORT_JSON": str(tmp_path / "report.json"),
    }
    result = processing.runAndLoadResults(MODEL_ID, params, feedback=QgsProcessingFeedback(), context=context)
    assert result and os.path.samefile(result["classify:MAP"], tmp_path / "map.tif")
    labels, classes, grid = read_class_raster(str(tmp_path / "map.tif"))
    assert grid.width == grid.height == 100 and classes is not None
    assert set(np.unique(labels)) <= {0, *classes.ids} and (labels > 0).mean() > 0.3  # the patch is partly outside the demo scene
    metrics = json.loads((tmp_path / "report.json").read_text())
    assert 0.5 < metrics["overall_accuracy"] <= 1.0
    assert (tmp_path / "model.onnx").stat().st_size > 1000

    layers = list(project.mapLayers().values())
    assert not [layer.name() for layer in layers if layer.name().startswith("Time stack")]
    [map_layer] = [layer for layer in layers if layer.source().endswith("map.tif")]
    assert isinstance(map_layer.renderer(), QgsPalettedRasterRenderer)
    assert {c.label for c in map_layer.renderer().classes()} == set(classes.names)
    project.clear()
