"""landcover:importproducts and landcover:buildstack through processing.run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from test_bad_input import expect_error

from lc_plugin.io.rasters import read_stack
from tests.safe_products import build_safe, zip_safe

TIMESERIES = Path(__file__).resolve().parents[1] / "data" / "s2-l2a-timeseries"


def test_importproducts_zip_over_an_extent(run_alg, tmp_path):
    """A zipped L2A 04.00 product (real XML) in a folder, an extent of 10 × 6 px inside the tile."""
    safe = build_safe(str(tmp_path / "downloads"), "L2A_N0400", {"B04": lambda r, c, res: 1000 + 10 * r + c}, ul=(499980, 8900040), epsg=32633)
    zip_safe(safe, safe[:-5] + ".zip")
    out = str(tmp_path / "stack.tif")
    extent = f"{499980 + 40},{499980 + 140},{8900040 - 100},{8900040 - 40} [EPSG:32633]"
    result = run_alg("importproducts", {"INPUT": [str(tmp_path / "downloads")], "EXTENT": extent, "OUTPUT": out})
    assert result["OUTPUT"] == out
    stack = read_stack(out)
    assert stack.bands == ["B04"] and stack.data.shape == (1, 1, 6, 10)
    rows, cols = np.mgrid[4:10, 4:14]
    np.testing.assert_allclose(stack.data[0, 0], (10 * rows + cols) / 10000, atol=1e-6)  # (DN − 1000) / 10000


def test_importproducts_bad_input_names_the_parameter(run_alg, tmp_path):
    broken = tmp_path / "S2A_MSIL2A_broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    out = str(tmp_path / "stack.tif")
    message = expect_error(run_alg, "importproducts", {"INPUT": [str(broken)], "OUTPUT": out}, "INPUT", "not a readable zip", outputs=[out])
    assert "S2A_MSIL2A_broken.zip" in message
    expect_error(
        run_alg, "importproducts", {"INPUT": [str(TIMESERIES)], "EXTENT": "0,1000,0,1000 [EPSG:32633]", "OUTPUT": out}, "EXTENT", "overlaps", outputs=[out]
    )
    assert os.listdir(tmp_path) == ["S2A_MSIL2A_broken.zip"]


def test_buildstack_from_per_band_files(run_alg, tmp_path):
    from osgeo import gdal

    inputs = []
    for day in ("20230813", "20230818"):
        product = next(TIMESERIES.glob(f"S2?_33TWM_{day}_0_L2A"))
        for band in ("B04", "B08"):
            path = str(tmp_path / f"sen2r_{day}_{band}.tif")
            gdal.Translate(path, str(product / f"{band}.tif"), format="GTiff")
            inputs.append(path)
    out = str(tmp_path / "stack.tif")
    run_alg("buildstack", {"INPUT": inputs, "DATE_PATTERN": r"sen2r_(\d{8})_", "OUTPUT": out})
    stack = read_stack(out)
    assert [d.isoformat() for d in stack.dates] == ["2023-08-13", "2023-08-18"] and stack.bands == ["B04", "B08"]
    assert 0.02 < float(np.nanmedian(stack.band("B04")[0])) < 0.05  # uint16 DN × 0.0001
    expect_error(run_alg, "buildstack", {"INPUT": inputs, "DATES": "2023-08-13", "OUTPUT": str(tmp_path / "x.tif")}, "DATES", "one per file",
                 outputs=[str(tmp_path / "x.tif")])


def test_importproducts_per_patch(run_alg, tmp_path):
    """PATCHES + PATCH_ID: one stack on the patch's grid in OUTPUT_FOLDER, like Download's."""
    import json

    from lc_plugin.runs.grid import create_grid, read_patches

    x0, y0 = 582780 + 1200, 5111220 - 2400
    ring = [[x0, y0], [x0 + 2400, y0], [x0 + 2400, y0 + 1200], [x0, y0 + 1200], [x0, y0]]
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32633"}},
                               "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    grid = str(tmp_path / "grid.gpkg")
    create_grid(str(aoi), grid, patch_px=60, resolution=20)
    patch = read_patches(grid)[0]
    folder = str(tmp_path / "stacks")
    result = run_alg("importproducts", {"INPUT": [str(TIMESERIES)], "PATCHES": grid, "PATCH_ID": patch.id, "BANDS": "b04,scl", "OUTPUT_FOLDER": folder})
    assert result["STACKS"] == [os.path.join(folder, f"{patch.id}.tif")]
    stack = read_stack(result["STACKS"][0])
    assert stack.bands == ["B04", "SCL"] and len(stack.dates) == 5 and stack.grid.transform == patch.grid.transform
    assert stack.tags["PATCH_ID"] == patch.id and stack.tags["SOURCE"] == "products"
