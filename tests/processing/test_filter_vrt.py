"""Filter scenes to a VRT: QGIS opens it as the same time stack, and the later steps read it."""

from __future__ import annotations

import datetime as dt

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.io.rasters import Grid, TimeStack, read_stack, write_stack

DATES = [dt.date(2017, 1, 1), dt.date(2017, 2, 1), dt.date(2017, 3, 1)]


def test_filterscenes_vrt_opens_in_qgis(run_alg, tmp_path):
    from qgis.core import QgsRasterLayer

    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 8, 6)
    data = np.arange(3 * 2 * 6 * 8, dtype=np.float32).reshape(3, 2, 6, 8) / 1000
    mask = np.zeros((3, 1, 6, 8), np.uint8)
    mask[1] = 1  # the February date is all cloud: dropped
    stack, clm = str(tmp_path / "stack.tif"), str(tmp_path / "clm.tif")
    write_stack(stack, TimeStack(data, DATES, ["B04", "B08"], grid))
    write_stack(clm, TimeStack(mask, DATES, ["CLM"], grid), kind="cloudmask", nodata=255)
    out = run_alg("filterscenes", {"INPUT": stack, "MASK": clm, "OUTPUT": str(tmp_path / "f.vrt"), "OUTPUT_MASK": str(tmp_path / "f_clm.vrt")})
    layer = QgsRasterLayer(out["OUTPUT"], "filtered")
    assert layer.isValid() and layer.bandCount() == 4 and layer.width() == 8
    assert "2017-03-01 B08" in layer.bandName(4)
    block = layer.dataProvider().block(4, layer.extent(), 8, 6)
    assert block.value(0, 0) == data[2, 1, 0, 0]
    filtered = read_stack(out["OUTPUT"])
    assert filtered.dates == [DATES[0], DATES[2]]
    np.testing.assert_array_equal(filtered.data, data[[0, 2]])
    assert QgsRasterLayer(out["OUTPUT_MASK"], "mask").isValid()


def test_intermediate_encodings_open_in_qgis(qgis_app, tmp_path):
    """The encodings chosen for intermediate stacks (bench_encoding.py) are lossless and QGIS 3.22 reads them."""
    import rasterio
    from qgis.core import QgsRasterLayer

    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 8, 6)
    values = np.random.default_rng(0).random((3, 2, 6, 8)).astype(np.float32)
    values[0, 0, 0, 0] = np.nan
    mask = (values[:, :1] > 0.5).astype(np.uint8)
    write_stack(str(tmp_path / "i.tif"), TimeStack(values, DATES, ["B04", "B08"], grid), kind="interpolated")
    write_stack(str(tmp_path / "m.tif"), TimeStack(mask, DATES, ["CLM"], grid), kind="cloudmask", nodata=255)
    for name, data, compression in (("i.tif", values, "deflate"), ("m.tif", mask, "zstd")):
        with rasterio.open(tmp_path / name) as src:
            assert src.compression.value.lower() == compression
        np.testing.assert_array_equal(read_stack(str(tmp_path / name)).data, data)
        layer = QgsRasterLayer(str(tmp_path / name), name)
        assert layer.isValid() and layer.bandCount() == data.shape[0] * data.shape[1]
        assert layer.dataProvider().block(2, layer.extent(), 8, 6).value(1, 2) == data.reshape(-1, 6, 8)[1, 1, 2]
