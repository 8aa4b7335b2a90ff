"""The whole chain on the demo scene, through processing.run and through the qgis_process binary."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from osgeo import ogr
from test_help import ALGORITHM_IDS  # the fixed ids scripts depend on, listed once

from demo.chain import ChainSettings, run_chain
from demo.qgis_cli import list_algorithms, run_algorithm
from lc_plugin.io.rasters import read_class_raster, read_stack_info


def settings_for(scene, server) -> ChainSettings:
    return ChainSettings.for_demo(scene, server.url)


@pytest.fixture(scope="module")
def chain_in_process(qgis_app, demo_scene, tmp_path_factory):
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    scene, server = demo_scene

    def run(alg: str, params: dict) -> dict:
        return processing.run(f"landcover:{alg}", params, context=QgsProcessingContext(), feedback=QgsProcessingFeedback())

    out = tmp_path_factory.mktemp("chain")
    return run_chain(run, settings_for(scene, server), str(out))


def test_provider_has_every_algorithm_with_help(qgis_app):
    from qgis.core import QgsApplication

    provider = QgsApplication.processingRegistry().providerById("landcover")
    assert provider is not None and provider.name() == "Land cover"
    ids = sorted(a.name() for a in provider.algorithms())
    assert ids == sorted(ALGORITHM_IDS)
    for algorithm in provider.algorithms():
        assert len(algorithm.shortHelpString()) > 200, algorithm.name()
        assert algorithm.group()[0] in "12345", algorithm.name()  # numbered workflow groups
        for parameter in algorithm.parameterDefinitions():
            assert parameter.name() in algorithm.shortHelpString() or parameter.description(), parameter.name()


def test_chain_produces_a_validated_map(chain_in_process):
    result = chain_in_process
    grid = ogr.Open(result["grid"])
    ids = sorted(f.GetField("patch_id") for f in grid.GetLayer())
    assert ids == ["465_5079", "465_5080", "466_5079", "466_5080"]  # 1 km patches snapped to the UTM grid
    assert len(result["stacks"]) == 4
    dates, bands, grid_info, _ = read_stack_info(result["interpolated"][0])
    assert dates[0].isoformat() == "2017-01-01" and (dates[1] - dates[0]).days == 16 and len(dates) == 23
    assert bands == ["B02", "B03", "B04", "B08", "B11", "B12"]
    assert grid_info.width == grid_info.height == 100
    with open(result["report"]["OUTPUT_JSON"]) as f:
        metrics = json.load(f)
    assert 0.6 < metrics["overall_accuracy"] <= 1.0
    assert metrics["overall_accuracy"] == pytest.approx(result["report"]["OVERALL_ACCURACY"])
    labels, classes, _ = read_class_raster(result["maps"][0])
    assert classes is not None and "forest" in classes.names
    assert set(np.unique(labels)) <= {0, *classes.ids}


def test_mosaic_values_equal_patch_values(chain_in_process):
    cog = chain_in_process["mosaic"]["OUTPUT_COG"]
    with rasterio.open(cog) as mosaic:
        for patch in chain_in_process["maps"]:
            with rasterio.open(patch) as src:
                labels = src.read(1)
                for row, col in [(0, 0), (50, 50), (99, 0), (10, 90)]:
                    x, y = src.xy(row, col)
                    assert next(mosaic.sample([(x, y)]))[0] == labels[row, col]
        assert mosaic.colormap(1)[2][:3] == (5, 73, 7)  # forest green travels with the mosaic


def test_qgis_process_lists_the_provider(qgis_app):
    listing = list_algorithms()
    for alg in ALGORITHM_IDS:
        assert f"landcover:{alg}" in listing


def test_chain_through_qgis_process_matches_in_process(chain_in_process, demo_scene, tmp_path):
    scene, server = demo_scene
    result = run_chain(run_algorithm, settings_for(scene, server), str(tmp_path / "cli"))
    with open(result["report"]["OUTPUT_JSON"]) as f, open(chain_in_process["report"]["OUTPUT_JSON"]) as g:
        cli, in_process = json.load(f), json.load(g)
    assert cli["confusion_matrix"] == in_process["confusion_matrix"]  # same seed, same data, same model
    for cli_map, map_ in zip(result["maps"], chain_in_process["maps"]):
        assert np.array_equal(read_class_raster(cli_map)[0], read_class_raster(map_)[0])


def test_map_against_reference_polygons(run_alg, chain_in_process, demo_scene, tmp_path):
    scene, _ = demo_scene
    out = run_alg(
        "accuracyreport",
        {
            "INPUT": chain_in_process["maps"][0],
            "REFERENCE": scene.reference_path,
            "REFERENCE_FIELD": "LULC_ID",
            "OUTPUT_HTML": str(tmp_path / "r.html"),
            "OUTPUT_JSON": str(tmp_path / "r.json"),
        },
    )
    assert 0.5 < out["OVERALL_ACCURACY"] <= 1.0
    assert "<img" in (tmp_path / "r.html").read_text()


def test_training_tiles_from_the_chain(run_alg, chain_in_process, tmp_path):
    """The chain's interpolated stacks and references as a tile store: pixels, labels and georeferencing
    read back equal the GeoTIFFs', and every class is spread over the folds."""
    pytest.importorskip("zarr")
    from rasterio.windows import Window

    from lc_plugin.io.rasters import read_stack
    from lc_plugin.reference.dataset import open_tile_store

    stacks, references = chain_in_process["interpolated"], chain_in_process["references"]
    out = run_alg("exportdataset", {"INPUT": stacks, "REFERENCE": references, "TILE_SIZE": 32, "OVERLAP": 8, "FOLDS": 4, "OUTPUT": str(tmp_path / "t.zarr")})
    store = open_tile_store(out["OUTPUT"])
    assert 0 < store.n_tiles <= 4 * 16 and store.n_tiles == out["N_TILES"]  # starts 0, 24, 48, 68 per axis and patch
    dates, bands, _, _ = read_stack_info(stacks[0])
    assert store.dates == dates and store.bands == bands and "forest" in store.classes.names
    for i in (0, store.n_tiles // 2, store.n_tiles - 1):
        patch, (row, col) = store.patches[i], store.offsets[i]
        window = Window(int(col), int(row), 32, 32)
        expected = read_stack(stacks[patch], window)
        assert np.array_equal(store.inputs()[i], expected.data, equal_nan=True)
        assert np.array_equal(store.labels[i], read_class_raster(references[patch])[0][row : row + 32, col : col + 32])
        assert tuple(store.transforms[i]) == tuple(expected.grid.transform)[:6]
    presence = np.array([np.isin(store.classes.ids, np.unique(store.labels[i])) for i in range(store.n_tiles)])
    per_fold = np.array([presence[store.folds == k].sum(axis=0) for k in range(4)])
    assert (np.abs(per_fold - presence.sum(axis=0) / 4) <= 1).all(), per_fold
