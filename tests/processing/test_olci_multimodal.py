"""Through processing.run: OLCI products → 300 m stack, CORINE codes → reference, a two-input network trained and
applied with both stacks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio
from test_bad_input import expect_error

from lc_plugin.io.rasters import read_class_raster, read_stack, write_raster
from tests import olci_products as op
from tests.test_corine import PATCH, _clc_layer
from tests.test_olci import START, _patch


def test_downloadolci_from_a_product_folder(run_alg, tmp_path):
    folder = tmp_path / "products"
    op.write_product(str(folder), START)
    op.zip_product(op.write_product(str(folder), START + dt.timedelta(days=2)))
    patch = _patch()
    grid_raster = str(tmp_path / "patch.tif")
    write_raster(grid_raster, np.zeros((patch.height, patch.width), np.uint8), patch)
    out = str(tmp_path / "olci.tif")
    result = run_alg("downloadolci", {"PRODUCTS_FOLDER": str(folder), "GRID": grid_raster, "OUTPUT": out})
    stack = read_stack(result["OUTPUT"])
    assert stack.dates == [START.date(), START.date() + dt.timedelta(days=2)] and len(stack.bands) == 21
    assert stack.grid.transform.a == 300 and np.isfinite(stack.data).all()
    empty = tmp_path / "empty"
    empty.mkdir()
    expect_error(run_alg, "downloadolci", {"PRODUCTS_FOLDER": str(empty), "GRID": grid_raster, "OUTPUT": str(tmp_path / "no.tif")},
                 "PRODUCTS_FOLDER", "no .SEN3", outputs=[str(tmp_path / "no.tif")])
    expect_error(run_alg, "downloadolci", {"PRODUCTS_FOLDER": str(folder), "GRID": grid_raster, "START_DATE": "2020-01-01",
                                           "OUTPUT": str(tmp_path / "no.tif")},
                 "PRODUCTS_FOLDER", "between the start and end", outputs=[str(tmp_path / "no.tif")])


def test_downloadolci_from_a_stac_api(run_alg, tmp_path):
    from demo.stac_server import StacServer
    from lc_plugin.sources import olci
    from tests.test_olci_stac import DAY, _catalogue

    product = _catalogue(str(tmp_path / "stac"))
    patch = _patch()
    grid_raster = str(tmp_path / "patch.tif")
    write_raster(grid_raster, np.zeros((patch.height, patch.width), np.uint8), patch)
    out, no = str(tmp_path / "olci.tif"), str(tmp_path / "no.tif")
    with StacServer(str(tmp_path / "stac")) as server:
        params = {"SOURCE": 1, "STAC_URL": server.url, "GRID": grid_raster, "START_DATE": DAY.isoformat(), "END_DATE": DAY.isoformat()}
        result = run_alg("downloadolci", {**params, "OUTPUT": out})
        expect_error(run_alg, "downloadolci", {**params, "START_DATE": "2020-01-01", "END_DATE": "2020-01-31", "OUTPUT": no},
                     "COLLECTION", "lists no item", outputs=[no])
        expect_error(run_alg, "downloadolci", {**params, "END_DATE": "", "OUTPUT": no}, "END_DATE", outputs=[no])
    np.testing.assert_array_equal(read_stack(result["OUTPUT"]).data, olci.olci_stack([product], patch).data)
    expect_error(run_alg, "downloadolci", {"GRID": grid_raster, "OUTPUT": no}, "PRODUCTS_FOLDER", outputs=[no])


def test_rasterize_corine_codes_with_the_official_colours(run_alg, tmp_path):
    vector = _clc_layer(tmp_path / "clc.gpkg", ["311", "231", "512"])
    like = str(tmp_path / "patch.tif")
    write_raster(like, np.zeros((PATCH.height, PATCH.width), np.uint8), PATCH)
    out = str(tmp_path / "clc.tif")
    run_alg("rasterizereference", {"REFERENCE": vector, "FIELD": "Code_18", "GRID": like, "EROSION": 0, "CLC_LEGEND": 1, "OUTPUT": out})
    labels, table, _ = read_class_raster(out)
    assert [labels[20, 10], labels[20, 30], labels[20, 50]] == [23, 18, 41] and len(table) == 44
    with rasterio.open(out) as src:
        assert src.colormap(1)[41][:3] == (128, 242, 230) and src.tags()["LEGEND"] == "CORINE Land Cover level 3"


def test_two_input_network_trained_and_applied(run_alg, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("zarr")
    from lc_plugin.reference.dataset import export_tiles
    from tests.test_multimodal import TILE, write_patch

    s2, refs, s3 = zip(*(write_patch(tmp_path, i) for i in range(2)))
    store = str(tmp_path / "tiles.zarr")
    export_tiles(list(s2), list(refs), store, tile_size=TILE, n_folds=4, extra_stacks={"S3OLCI": list(s3)})
    model = str(tmp_path / "s2s3.onnx")
    run_alg("trainsegmentation", {"DATASET": store, "SECOND_SENSOR": "S3OLCI", "EPOCHS": 1, "BATCH_SIZE": 4, "CONFIG": _tiny_config(tmp_path),
                                  "OUTPUT_MODEL": model, "OUTPUT_REPORT": str(tmp_path / "r.html")})
    out = str(tmp_path / "map.tif")
    run_alg("classify", {"INPUT": s2[0], "INPUT_2": s3[0], "MODEL": model, "OUTPUT": out})
    labels, _, _ = read_class_raster(out)
    assert labels.shape == (120, 120) and (labels > 0).all()
    expect_error(run_alg, "classify", {"INPUT": s2[0], "MODEL": model, "OUTPUT": str(tmp_path / "no.tif")}, "INPUT_2", "second stack",
                 outputs=[str(tmp_path / "no.tif")])


def _tiny_config(folder) -> str:
    path = folder / "tiny.json"
    path.write_text('{"width": 4, "depth": 2, "seed": 1}')
    return str(path)
