"""A coarse second modality (OLCI-like, 300 m) beside the 10 m stacks: tiles at their own resolution, two-input
networks, ONNX with two inputs, classification with both stacks."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import Grid, TimeStack, read_class_raster, write_class_raster, write_stack
from lc_plugin.reference.dataset import export_tiles, open_tile_store
from lc_plugin.timeseries.modalities import coarse_tile_size, coarse_tiles, tile_corners
from tests.test_segmentation import BANDS, CLASSES, DATES, TINY, make_scene

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("zarr")
torch.set_num_threads(1)

from lc_plugin.ml.classify import classify_file, load_model, predict_array, second_reader  # noqa: E402
from lc_plugin.ml.segmentation import MULTIMODAL_ARCHITECTURES  # noqa: E402
from lc_plugin.ml.segmentation.models import build_model  # noqa: E402
from lc_plugin.ml.segmentation.pipeline import train_segmentation  # noqa: E402
from lc_plugin.ml.segmentation.training import TrainConfig  # noqa: E402

OLCI_DATES = [dt.date(2019, 4, 1), dt.date(2019, 7, 1)]
OLCI_BANDS = ["Oa08", "Oa17"]
PATCH_PX, TILE = 120, 60  # 1.2 km patches, 600 m tiles: 2 × 2 OLCI pixels each


def grids(index: int) -> tuple[Grid, Grid]:
    """The 10 m patch grid and the 300 m grid from the same corner (as landcover:downloadolci makes it)."""
    x0, y0 = 500_000 + 3000 * index, 5_100_000
    return (Grid(CRS.from_epsg(32633), from_origin(x0, y0, 10, 10), PATCH_PX, PATCH_PX),
            Grid(CRS.from_epsg(32633), from_origin(x0, y0, 300, 300), PATCH_PX // 30, PATCH_PX // 30))


def coarse_of(x: np.ndarray) -> np.ndarray:
    """(T2, C2, h, w): the fine scene's bands 1 and 0 averaged over 30 × 30 pixels, at two dates."""
    t, c, h, w = x.shape
    blocks = x.reshape(t, c, h // 30, 30, w // 30, 30).mean(axis=(3, 5))
    return np.stack([blocks[1, [1, 0]], blocks[2, [1, 0]]]).astype(np.float32)


def write_patch(folder, index: int) -> tuple[str, str, str]:
    fine, coarse = grids(index)
    x, y = make_scene(PATCH_PX, PATCH_PX, seed=60 + index)
    paths = [str(folder / f"{name}_{index}.tif") for name in ("s2", "ref", "s3")]
    write_stack(paths[0], TimeStack(x, DATES, BANDS, fine, {"LC_CLOUD_MASKED": "synthetic, cloud-free"}))  # Classify checks (issue 15)
    write_class_raster(paths[1], y, fine, CLASSES)
    write_stack(paths[2], TimeStack(coarse_of(x), OLCI_DATES, OLCI_BANDS, coarse))
    return paths[0], paths[1], paths[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("multimodal")
    s2, refs, s3 = zip(*(write_patch(folder, i) for i in range(2)))
    path = str(folder / "tiles.zarr")
    export_tiles(list(s2), list(refs), path, tile_size=TILE, n_folds=4, seed=0, extra_stacks={"S3OLCI": list(s3)})
    return {"folder": folder, "path": path, "s2": s2, "s3": s3}


def test_coarse_tiles_by_hand():
    fine, coarse = grids(0)
    data = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    assert coarse_tile_size(60, fine, coarse, "X") == 2
    tiles = coarse_tiles(data, coarse, tile_corners(fine, np.array([[30, 60], [90, 90]])), 2)
    np.testing.assert_array_equal(tiles[0, 0, 0], [[6, 7], [10, 11]])  # coarse rows 1–2, columns 2–3
    np.testing.assert_array_equal(tiles[1, 1, 0], [[31, np.nan], [np.nan, np.nan]])  # row 3, col 3, then beyond the stack
    with pytest.raises(LandCoverError, match="multiple of 30 pixels") as err:
        coarse_tile_size(64, fine, coarse, "TILE_SIZE")
    assert err.value.argument == "TILE_SIZE"


def test_store_keeps_each_modality_at_its_own_resolution(store):
    tiles = open_tile_store(store["path"])
    assert tiles.sensors == ["S2L2A", "S3OLCI"] and tiles.n_tiles == 8
    assert tiles.inputs().shape == (8, len(DATES), len(BANDS), TILE, TILE)
    assert tiles.inputs("S3OLCI").shape == (8, 2, 2, 2, 2)
    assert tiles.sensor_resolution("S3OLCI") == 300 and tiles.sensor_resolution() == 10 and tiles.sensor_tile_size("S3OLCI") == 2
    x, _ = make_scene(PATCH_PX, PATCH_PX, seed=60)
    expected = coarse_of(x)
    for i, (row, col) in enumerate(tiles.offsets[:4].tolist()):  # patch 0's tiles: the 300 m pixels under each
        np.testing.assert_allclose(tiles.inputs("S3OLCI")[i], expected[:, :, row // 30:row // 30 + 2, col // 30:col // 30 + 2])


def test_export_refuses_a_tile_that_is_not_whole_coarse_pixels(store, tmp_path):
    with pytest.raises(LandCoverError, match="multiple of 30 pixels") as err:
        export_tiles(list(store["s2"]), [p.replace("s2_", "ref_") for p in store["s2"]], str(tmp_path / "t.zarr"), tile_size=40,
                     n_folds=2, extra_stacks={"S3OLCI": list(store["s3"])})
    assert err.value.argument == "extra_stacks"


@pytest.mark.parametrize("architecture", MULTIMODAL_ARCHITECTURES)
def test_two_input_networks_forward_and_onnx(tmp_path, architecture):
    from lc_plugin.ml.segmentation.export import save_model, to_onnx_bytes, with_metadata

    torch.manual_seed(0)
    net = build_model(architecture, 4, 3, 3, width=4, depth=3, second=(2, 2, [0.1, 0.2], [0.5, 0.5])).eval()
    x, _ = make_scene(32, 48, seed=5)
    x2 = np.random.default_rng(0).normal(0.2, 0.1, (2, 2, 2, 2, 3)).astype(np.float32)
    x2[0, 1, 0, 1, 1] = np.nan
    batch = np.stack([x, x[:, :, ::-1].copy()])
    with torch.no_grad():
        expected = net(torch.from_numpy(batch), torch.from_numpy(x2)).numpy()
    assert expected.shape == (2, 3, 32, 48) and np.allclose(expected.sum(axis=1), 1, atol=1e-5)
    meta = {"lc_model_type": "segmentation", "lc_classes": CLASSES.to_json(), "lc_dates": json.dumps([d.isoformat() for d in DATES]),
            "lc_bands": json.dumps(BANDS), "lc_tile_size": "16", "lc_tile_overlap": "4", "lc_normalisation": "{}", "lc_architecture": "{}",
            "lc_second_input": json.dumps({"name": "input_2", "sensor": "S3OLCI", "dates": ["2019-04-01", "2019-07-01"], "bands": OLCI_BANDS,
                                           "tile_size": 1, "resolution": 160.0, "primary_resolution": 10.0})}
    path = str(tmp_path / "m.onnx")
    save_model(with_metadata(to_onnx_bytes(net, 4, 3, 16, (2, 2, 1)), meta), path)  # traced at 16 px + 1 px, run at 32×48 + 2×3
    model = load_model(path)
    assert [i.name for i in model.session.get_inputs()] == ["input", "input_2"] and model.second.sensor == "S3OLCI"
    np.testing.assert_allclose(model.predict(batch, x2), expected, atol=1e-4)


def test_segnet_has_no_second_branch(store, tmp_path):
    with pytest.raises(LandCoverError, match="takes one input") as err:
        train_segmentation(store["path"], str(tmp_path / "m.onnx"), None, TrainConfig(architecture="segnet", epochs=1, **TINY), second_sensor="S3OLCI")
    assert err.value.argument == "architecture"
    with pytest.raises(LandCoverError, match="no second sensor 'OLCI'") as err:
        train_segmentation(store["path"], str(tmp_path / "m.onnx"), None, TrainConfig(epochs=1, **TINY), second_sensor="OLCI")
    assert err.value.argument == "second_sensor"


@pytest.fixture(scope="module")
def two_input_model(store):
    path = str(store["folder"] / "tfcn_s2s3.onnx")
    summary = train_segmentation(store["path"], path, None, TrainConfig(architecture="tfcn", epochs=2, **TINY), second_sensor="S3OLCI")
    return path, summary


def test_trained_two_input_model_describes_both_inputs(two_input_model):
    path, summary = two_input_model
    assert summary.epochs == 2 and summary.test_miou is not None
    model = load_model(path)
    second = json.loads(model.metadata["lc_second_input"])
    assert second["sensor"] == "S3OLCI" and second["dates"] == ["2019-04-01", "2019-07-01"] and second["bands"] == OLCI_BANDS
    assert (second["tile_size"], second["resolution"], second["primary_resolution"]) == (2, 300.0, 10.0)
    assert len(second["normalisation"]["mean"]) == 2 and model.tile_size == TILE


def test_classify_with_both_stacks_and_refuse_mismatches(store, two_input_model, tmp_path):
    path, _ = two_input_model
    s2, s3 = store["s2"][1], store["s3"][1]
    out = str(tmp_path / "map.tif")
    classify_file(path, s2, out, second_path=s3)
    labels, table, _ = read_class_raster(out)
    model = load_model(path)
    fine, _ = grids(1)
    x, _ = make_scene(PATCH_PX, PATCH_PX, seed=61)
    expected, _ = predict_array(model, x, read_second=second_reader(model, s3, fine))
    assert table == CLASSES and labels.tolist() == expected.tolist() and (labels > 0).all()
    with pytest.raises(LandCoverError, match="two-input network: give its second stack") as err:
        classify_file(path, s2, str(tmp_path / "no.tif"))
    assert err.value.argument == "second_path"
    _, coarse = grids(1)
    wrong = str(tmp_path / "s3_wrong.tif")
    write_stack(wrong, TimeStack(np.zeros((1, 2, 4, 4), np.float32), [dt.date(2019, 4, 1)], OLCI_BANDS, coarse))
    with pytest.raises(LandCoverError, match="does not match the model's second input") as err:
        classify_file(path, s2, str(tmp_path / "no.tif"), second_path=wrong)
    assert err.value.argument == "second_path"
    coarser = str(tmp_path / "s3_600m.tif")
    grid600 = Grid(coarse.crs, from_origin(coarse.transform.c, coarse.transform.f, 600, 600), 2, 2)
    write_stack(coarser, TimeStack(np.zeros((2, 2, 2, 2), np.float32), OLCI_DATES, OLCI_BANDS, grid600))
    with pytest.raises(LandCoverError, match="600 m pixels"):
        classify_file(path, s2, str(tmp_path / "no.tif"), second_path=coarser)
    assert not list(tmp_path.glob("no*.tif"))
    one_input = load_model(path)
    one_input.second = None  # as a model trained without a second modality
    with pytest.raises(LandCoverError, match="takes one input stack") as err:
        second_reader(one_input, s3, fine)
    assert err.value.argument == "second_path"
