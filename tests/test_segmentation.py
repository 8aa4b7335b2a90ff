"""Segmentation networks: shapes, learning, determinism, ONNX export, tiled inference, config files."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.classes import make_class_table
from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import Grid, TimeStack, read_class_raster, write_class_raster, write_stack
from lc_plugin.ml.segmentation import ARCHITECTURES
from lc_plugin.ml.segmentation.training import TrainConfig, class_weight_vector, load_config, save_config, targets
from lc_plugin.reference.dataset import export_tiles

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
# One intra-op thread: on 2 cores shared with other test runs, OpenMP's spinning threads made these tiny
# networks ~10× slower (1.1 s vs 11 s for the overfitting test under load).
torch.set_num_threads(1)

from lc_plugin.io.rasters import tile_starts  # noqa: E402
from lc_plugin.ml.classify import SegmentationModel, classify_file, iter_tiled_predictions, load_model, predict_array, taper_window  # noqa: E402
from lc_plugin.ml.segmentation.models import build_model  # noqa: E402
from lc_plugin.ml.segmentation.pipeline import TileSet, train_on_tiles  # noqa: E402
from lc_plugin.ml.segmentation.training import fit  # noqa: E402

T, C, S = 4, 3, 16
DATES = [dt.date(2019, 3, 1) + dt.timedelta(days=30 * i) for i in range(T)]
BANDS = ["B04", "B08", "B11"]
CLASSES = make_class_table({1: "cultivated land", 2: "forest", 3: "water"})
CLEAR = {"LC_CLOUD_MASKED": "synthetic, cloud-free"}  # stacks pass the cloud check of Classify (issue 15)


def make_scene(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(T, C, H, W) values and (H, W) labels: three classes in blobs, each with its own temporal signature."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    phase = rng.uniform(0, 2 * np.pi, 2)
    field = np.sin(yy / 3.0 + phase[0]) + np.cos(xx / 4.0 + phase[1])
    labels = np.digitize(field, [-0.5, 0.6]).astype(np.uint8) + 1
    signature = np.array([[[0.1, 0.3, 0.2]] * T, [[0.05, 0.4, 0.1]] * T, [[0.02, 0.01, 0.01]] * T], dtype=np.float32)
    signature[0, :, 1] = [0.2, 0.5, 0.6, 0.3]  # crops: NDVI rises and falls
    data = signature[labels - 1].transpose(2, 3, 0, 1) + rng.normal(0, 0.02, (T, C, height, width)).astype(np.float32)
    return data.astype(np.float32), labels


def make_tiles(n: int = 8, seed: int = 0) -> TileSet:
    xs, ys = zip(*(make_scene(S, S, seed + i) for i in range(n)))
    x, y = np.stack(xs), np.stack(ys)
    x[0, 1, :, 3, 4] = np.nan  # a pixel without data on one date
    y[1, :2, :] = 0  # unlabelled rows
    folds = np.arange(n) % 4
    return TileSet(x, y, folds, CLASSES, DATES, BANDS)


TINY = dict(width=4, depth=2, batch_size=4, learning_rate=0.01, seed=1)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_forward_shapes_probabilities_and_missing_values(architecture):
    torch.manual_seed(0)
    model = build_model(architecture, T, C, 3, width=4, depth=3).eval()
    x = torch.rand(2, T, C, S, S)
    x[0, :, :, 5, 5] = float("nan")
    with torch.no_grad():
        proba = model(x)
    assert proba.shape == (2, 3, S, S)
    assert torch.isfinite(proba).all()
    assert torch.allclose(proba.sum(dim=1), torch.ones(2, S, S), atol=1e-5)


def test_targets_ignore_unlabelled_missing_and_invalid_pixels():
    x = np.ones((1, 2, 1, 2, 2), np.float32)
    x[0, 1, 0, 1, 1] = np.nan
    y = np.array([[[2, 0], [7, 3]]], np.uint8)  # 7: not a kept class
    valid = np.array([[[True, True], [True, True]]])
    assert targets(x, y, [2, 3], valid).tolist() == [[[0, -1], [-1, -1]]]
    valid[0, 0, 0] = False
    assert targets(x, y, [2, 3], valid).tolist() == [[[-1, -1], [-1, -1]]]


def test_class_weights_balance_the_classes():
    # N = 100, K = 2 present: 80 → 100 / (2·80), 20 → 100 / (2·20); absent class 0
    assert class_weight_vector(np.array([80, 20, 0])).tolist() == pytest.approx([0.625, 2.5, 0.0])


def test_tiny_network_overfits_a_tiny_dataset():
    tiles = make_tiles()
    config = TrainConfig(architecture="tfcn", epochs=25, patience=25, **TINY)
    idx = np.arange(len(tiles.folds))
    result = fit(tiles.x, tiles.y, idx, idx, CLASSES, config)
    history = result.history
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert max(h["val_miou"] for h in history) > history[0]["val_miou"] + 0.2
    assert max(h["val_miou"] for h in history) > 0.8
    assert result.best_epoch == 1 + int(np.argmin([h["val_loss"] for h in history]))


def test_two_runs_with_the_same_seed_are_identical():
    tiles = make_tiles()
    config = TrainConfig(architecture="unet", epochs=2, class_weights=True, **TINY)
    runs = [fit(tiles.x, tiles.y, np.arange(6), np.arange(6, 8), CLASSES, config) for _ in range(2)]
    keys = ("train_loss", "val_loss", "val_miou", "lr")
    assert [[h[k] for k in keys] for h in runs[0].history] == [[h[k] for k in keys] for h in runs[1].history]
    for a, b in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("segmentation")
    tiles = make_tiles()
    model_path = str(folder / "tfcn.onnx")
    config = TrainConfig(architecture="tfcn", epochs=3, **TINY)
    result, metrics, extras = train_on_tiles(tiles, config, model_path)
    return {"folder": folder, "tiles": tiles, "path": model_path, "result": result, "metrics": metrics, "extras": extras}


def test_train_on_tiles_holds_out_the_test_and_validation_folds(trained):
    metrics = trained["metrics"]
    # fold 0 (tiles 0 and 4) is the test fold; 16·16 px each, one pixel without data in tile 0
    assert metrics["n"] == 2 * S * S - 1
    assert 0.0 <= metrics["miou"] <= 1.0 and len(metrics["per_class"]) == 3
    assert set(trained["extras"]) >= {"history", "architecture", "training_counts", "roc"}
    # training folds 2 and 3 (fold 1 validates): tiles 2, 3, 6, 7
    assert sum(trained["result"].train_counts.values()) == 4 * S * S


def test_exported_metadata(trained):
    model = load_model(trained["path"])
    assert isinstance(model, SegmentationModel)
    assert model.classes == CLASSES and model.dates == DATES and model.bands == BANDS
    assert (model.tile_size, model.overlap) == (S, 4)
    norm = json.loads(model.metadata["lc_normalisation"])
    assert len(norm["mean"]) == C and len(norm["std"]) == C
    assert json.loads(model.metadata["lc_architecture"]) == {"name": "tfcn", "width": 4, "depth": 2}
    assert json.loads(model.metadata["lc_params"])["epochs"] == 3


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_onnx_matches_pytorch(tmp_path, architecture):
    from lc_plugin.ml.segmentation.export import save_model, to_onnx_bytes, with_metadata

    torch.manual_seed(0)
    net = build_model(architecture, T, C, 3, width=4, depth=3, mean=[0.1, 0.2, 0.3], std=[0.5, 0.5, 0.5]).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for module in net.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    meta = {"lc_model_type": "segmentation", "lc_classes": CLASSES.to_json(), "lc_dates": json.dumps([d.isoformat() for d in DATES]),
            "lc_bands": json.dumps(BANDS), "lc_tile_size": str(S), "lc_tile_overlap": "4", "lc_normalisation": "{}", "lc_architecture": "{}"}
    path = str(tmp_path / "m.onnx")
    save_model(with_metadata(to_onnx_bytes(net, T, C, S), meta), path)
    x, _ = make_scene(32, 48, seed=5)
    x[:, :, 3, 3] = np.nan
    batch = np.stack([x, x[:, :, ::-1].copy()])
    with torch.no_grad():
        expected = net(torch.from_numpy(batch)).numpy()
    got = load_model(path).predict(batch)
    assert got.shape == (2, 3, 32, 48)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_tiled_inference_of_a_raster_that_fits_one_tile_equals_a_single_pass(trained):
    model = load_model(trained["path"])
    x, _ = make_scene(S, S, seed=11)
    labels, proba = predict_array(model, x)
    single = model.predict(x[np.newaxis])[0]
    np.testing.assert_allclose(proba, single, atol=1e-6)
    assert labels.tolist() == np.asarray(CLASSES.ids)[single.argmax(axis=0)].tolist()


class _PixelwiseModel:
    """A stand-in network whose output at a pixel depends on that pixel only: blending must give it back exactly."""

    classes, tile_size, overlap = CLASSES, S, 5
    dates, bands = DATES, BANDS

    def predict(self, tiles: np.ndarray) -> np.ndarray:
        v = np.nan_to_num(tiles[:, 0, :3], nan=0.0)  # (n, 3, h, w): date 0's bands as class scores
        e = np.exp(v * 10)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("shape", [(37, 53), (16, 40), (10, 12)])
def test_blended_tiles_have_no_seams(shape):
    model = _PixelwiseModel()
    x, _ = make_scene(*shape, seed=3)
    x[:, :, 7, 9] = np.nan
    strips = []
    for row0, labels, proba in iter_tiled_predictions(model, lambda r, c, h, w: x[:, :, r:r + h, c:c + w], *shape, batch_size=3):
        strips.append((row0, labels, proba))
    assert [s[0] for s in strips] == [0] + [s[0] + s[1].shape[0] for s in strips[:-1]]  # contiguous strips
    proba = np.concatenate([s[2] for s in strips], axis=1)
    labels = np.concatenate([s[1] for s in strips], axis=0)
    expected = model.predict(x[np.newaxis])[0]
    expected[:, 7, 9] = np.nan
    np.testing.assert_allclose(proba, expected, atol=1e-6)
    assert labels[7, 9] == 0 and (labels > 0).sum() == shape[0] * shape[1] - 1


def test_tile_layout_and_taper():
    assert tile_starts(10, 16, 4) == [0]
    assert tile_starts(40, 16, 4) == [0, 12, 24]
    assert tile_starts(37, 16, 5) == [0, 11, 21]
    w = taper_window(8, 3)
    assert w[0, 0] == pytest.approx(1 / 16) and w[3, 4] == 1.0 and w.min() > 0
    assert taper_window(4, 0).tolist() == np.ones((4, 4)).tolist()


def test_classify_file_with_a_segmentation_model(trained, tmp_path):

    x, _ = make_scene(40, 29, seed=21)
    grid = Grid(CRS.from_epsg(32633), from_origin(500000, 5100000, 10, 10), 29, 40)
    stack = str(tmp_path / "stack.tif")
    write_stack(stack, TimeStack(x, DATES, BANDS, grid, CLEAR))
    out, proba_out = str(tmp_path / "map.tif"), str(tmp_path / "proba.tif")
    classify_file(trained["path"], stack, out, probabilities_out=proba_out)
    labels, table, _ = read_class_raster(out)
    expected_labels, expected_proba = predict_array(load_model(trained["path"]), x)
    assert table == CLASSES and labels.tolist() == expected_labels.tolist()
    with rasterio.open(proba_out) as src:
        np.testing.assert_allclose(src.read(), expected_proba, atol=1e-6)
    shifted = str(tmp_path / "shifted.tif")
    write_stack(shifted, TimeStack(x, [d + dt.timedelta(days=1) for d in DATES], BANDS, grid, CLEAR))
    with pytest.raises(LandCoverError, match="does not match the model") as err:
        classify_file(trained["path"], shifted, str(tmp_path / "no.tif"))
    assert err.value.argument == "stack_path"


def test_config_round_trip_json_and_yaml(tmp_path):
    config = TrainConfig(architecture="segnet", epochs=7, class_weights=True)
    for name in ("run.json", "run.yaml"):
        if name.endswith("yaml"):
            pytest.importorskip("yaml")
        save_config(config, str(tmp_path / name))
        assert load_config(str(tmp_path / name)) == config
    (tmp_path / "partial.json").write_text('{"epochs": "12", "class_weights": "yes"}')
    loaded = load_config(str(tmp_path / "partial.json"), base=TrainConfig(architecture="unet"))
    assert (loaded.architecture, loaded.epochs, loaded.class_weights) == ("unet", 12, True)
    (tmp_path / "bad.json").write_text('{"epoch": 3}')
    with pytest.raises(LandCoverError, match="Unknown training setting") as err:
        load_config(str(tmp_path / "bad.json"))
    assert err.value.argument == "config"
    with pytest.raises(LandCoverError) as err:
        TrainConfig(architecture="vgg").validate()
    assert err.value.argument == "architecture"


def write_tile_store(folder, n_patches: int = 2, size: int = 32) -> str:
    """Two small patches (stack + class raster) cut into 16-px tiles with 4 folds by the dataset exporter."""

    stacks, refs = [], []
    for i in range(n_patches):
        x, y = make_scene(size, size, seed=40 + i)
        grid = Grid(CRS.from_epsg(32633), from_origin(500000 + 1000 * i, 5100000, 10, 10), size, size)
        stacks.append(str(folder / f"stack_{i}.tif"))
        refs.append(str(folder / f"ref_{i}.tif"))
        write_stack(stacks[-1], TimeStack(x, DATES, BANDS, grid, CLEAR))
        write_class_raster(refs[-1], y, grid, CLASSES)
    out = str(folder / "tiles.zarr")
    export_tiles(stacks, refs, out, tile_size=S, n_folds=4, seed=0)
    return out


def test_train_segmentation_from_a_tile_store(tmp_path):
    from lc_plugin.ml.segmentation.pipeline import train_segmentation

    pytest.importorskip("zarr")
    store = write_tile_store(tmp_path)
    model, report = str(tmp_path / "m.onnx"), str(tmp_path / "report.html")
    summary = train_segmentation(store, model, report, TrainConfig(architecture="resunet", epochs=2, **TINY))
    assert summary.epochs == 2 and summary.test_miou is not None
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["miou"] == pytest.approx(summary.test_miou) and len(doc["training_history"]["epochs"]) == 2
    page = (tmp_path / "report.html").read_text()
    assert "Training curves" in page and "MIoU" in page and page.count("data:image/png") >= 4
    with pytest.raises(LandCoverError) as err:
        train_segmentation(store, model, None, TrainConfig(test_fold=9, epochs=1, **TINY))
    assert err.value.argument == "test_fold"
