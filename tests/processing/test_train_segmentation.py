"""landcover:trainsegmentation through processing.run: a configuration file overrides the dialog's fields."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("zarr")

from test_segmentation import CLASSES, write_tile_store  # noqa: E402

from lc_plugin.ml.classify import load_model  # noqa: E402


def test_train_segmentation_algorithm_then_classify(run_alg, tmp_path):
    store = write_tile_store(tmp_path)
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"epochs": 2, "width": 4, "depth": 2, "batch_size": 4}))
    model, report = tmp_path / "unet.onnx", tmp_path / "unet.html"
    result = run_alg(
        "trainsegmentation",
        {"DATASET": store, "ARCHITECTURE": 1, "EPOCHS": 40, "CONFIG": str(config), "OUTPUT_MODEL": str(model), "OUTPUT_REPORT": str(report)},
    )
    assert result["OUTPUT_MODEL"] == str(model) and 0.0 <= result["TEST_MIOU"] <= 1.0
    loaded = load_model(str(model))
    assert loaded.classes == CLASSES and json.loads(loaded.metadata["lc_params"])["epochs"] == 2
    assert json.loads(loaded.metadata["lc_architecture"])["name"] == "unet"
    assert "Training curves" in report.read_text()
    out = tmp_path / "map.tif"
    run_alg("classify", {"INPUT": str(tmp_path / "stack_0.tif"), "MODEL": str(model), "OUTPUT": str(out)})
    assert out.exists()


def test_train_segmentation_refuses_a_folder_that_is_not_a_tile_store(run_alg, tmp_path):
    from qgis.core import QgsProcessingException

    model = tmp_path / "m.onnx"
    with pytest.raises(QgsProcessingException) as err:
        run_alg("trainsegmentation", {"DATASET": str(tmp_path), "EPOCHS": 1, "OUTPUT_MODEL": str(model)})
    assert "DATASET" in str(err.value) and "Traceback" not in str(err.value)
    assert not model.exists()
