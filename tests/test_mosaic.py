"""Mosaics of class-raster patches: VRT + COG pixel values, metadata, errors and cancel."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import rasterio
from osgeo import gdal
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.core.classes import make_class_table
from lc_plugin.core.errors import Cancelled, LandCoverError
from lc_plugin.core.monitor import Monitor
from lc_plugin.io.mosaic import MosaicResult, mosaic_files
from lc_plugin.io.rasters import TAG_CLASSES, Grid, write_class_raster, write_raster

CLASSES = make_class_table({1: "cultivated land", 2: "forest", 3: "grassland", 4: "shrubland", 5: "water"})
X0, Y0, PX = 500000.0, 5000000.0, 10.0
SIZE = 300  # 2 × 300 px > the COG's 512-px block, so the COG gets an overview


def _grid(col: int, row: int, width: int = SIZE, height: int = SIZE, epsg: int = 32633) -> Grid:
    """A patch whose top-left pixel is (col, row) of the common 10 m grid."""
    return Grid(CRS.from_epsg(epsg), from_origin(X0 + col * PX, Y0 - row * PX, PX, PX), width, height)


def _patch(k: int, shape=(SIZE, SIZE)) -> np.ndarray:
    """Class k+1 everywhere, a water (5) stripe at a patch-specific row and a few no-data pixels."""
    data = np.full(shape, k + 1, dtype=np.uint8)
    data[10 * (k + 1), :] = 5
    data[5, 7 + k] = 0
    return data


@pytest.fixture
def tiles(tmp_path):
    """Four 300 × 300 patches tiled 2 × 2 without gap or overlap."""
    paths, arrays = [], []
    for k, (row, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        path = str(tmp_path / "patches" / f"patch_{k}.tif")
        arrays.append(_patch(k))
        write_class_raster(path, arrays[-1], _grid(col * SIZE, row * SIZE), CLASSES)
        paths.append(path)
    return paths, arrays


def _centre(col: int, row: int) -> tuple[float, float]:
    return X0 + (col + 0.5) * PX, Y0 - (row + 0.5) * PX


def test_mosaic_2x2(tiles, tmp_path):
    paths, arrays = tiles
    vrt, cog = str(tmp_path / "out" / "mosaic.vrt"), str(tmp_path / "out" / "mosaic.tif")
    seen = []
    result = mosaic_files(paths, vrt, cog, monitor=Monitor(seen.append))
    assert result == MosaicResult(vrt, cog, 2 * SIZE, 2 * SIZE, 4)
    assert seen[-1] == pytest.approx(100.0) and seen == sorted(seen)
    expected = np.block([[arrays[0], arrays[1]], [arrays[2], arrays[3]]])

    for path in (vrt, cog):
        with rasterio.open(path) as src:
            assert (src.width, src.height) == (2 * SIZE, 2 * SIZE)
            assert src.transform == from_origin(X0, Y0, PX, PX)
            assert src.crs == CRS.from_epsg(32633)
            assert src.nodata == 0
            np.testing.assert_array_equal(src.read(1), expected)  # no gap, no overlap
            # Pixel values at known map coordinates: each quadrant's class, its water stripe, its hole.
            points = {
                _centre(0, 0): 1, _centre(SIZE + 3, 0): 2, _centre(3, SIZE + 1): 3, _centre(2 * SIZE - 1, 2 * SIZE - 1): 4,
                _centre(0, 10): 5, _centre(SIZE, 20): 5, _centre(0, SIZE + 30): 5, _centre(SIZE + 299, SIZE + 40): 5,
                _centre(7, 5): 0, _centre(SIZE + 8, 5): 0, _centre(9, SIZE + 5): 0, _centre(SIZE + 10, SIZE + 5): 0,
            }
            assert [int(v[0]) for v in src.sample(list(points))] == list(points.values())
            row, col = src.index(*_centre(SIZE + 150, SIZE + 150))
            assert (row, col) == (SIZE + 150, SIZE + 150)
            assert src.colormap(1)[5] == (*CLASSES.by_id(5).rgb(), 255)
            assert src.colormap(1)[0][3] == 0
            assert json.loads(src.tags()[TAG_CLASSES]) == json.loads(CLASSES.to_json())

    # The COG is valid and has overviews.
    info = gdal.Info(cog, format="json")
    assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
    assert info["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"] == "DEFLATE"
    assert info["bands"][0]["block"] == [512, 512]
    assert len(info["bands"][0].get("overviews", [])) >= 1
    with rasterio.open(cog) as src:
        assert src.overviews(1) == [2]
        # NEAREST overviews of a class raster hold only class ids, never averages.
        overview = src.read(1, out_shape=(SIZE, SIZE))
        assert set(np.unique(overview)) <= {0, 1, 2, 3, 4, 5}

    # The VRT names its sources by absolute path, so it still works after being moved.
    with open(vrt, encoding="utf-8") as f:
        xml = f.read()
    for path in paths:
        assert f'<SourceFilename relativeToVRT="0">{os.path.abspath(path)}</SourceFilename>' in xml
    moved = tmp_path / "elsewhere" / "moved.vrt"
    moved.parent.mkdir()
    shutil.copy(vrt, moved)
    with rasterio.open(moved) as src:
        np.testing.assert_array_equal(src.read(1), expected)
    assert sorted(os.listdir(tmp_path / "out")) == ["mosaic.qml", "mosaic.tif", "mosaic.tif.aux.xml", "mosaic.vrt"]


def test_class_mosaic_carries_its_legend(tiles, tmp_path):
    """GDAL (as any GIS using it) reads the class names and colours of the VRT, the COG and a patch:
    category names by pixel value, a thematic attribute table, the colour table; a QGIS style beside each."""
    paths, _ = tiles
    vrt, cog = str(tmp_path / "out" / "map.vrt"), str(tmp_path / "out" / "map_cog.tif")
    mosaic_files(paths, vrt, cog)
    names = ["no data", "cultivated land", "forest", "grassland", "shrubland", "water"]
    assert [c.name for c in CLASSES] == names[1:]
    for path in (vrt, cog, paths[0]):
        assert gdal.Info(path, format="json")["bands"][0]["categories"] == names  # what gdalinfo shows
        ds = gdal.Open(path)
        band = ds.GetRasterBand(1)
        rat = band.GetDefaultRAT()
        assert rat.GetTableType() == gdal.GRTT_THEMATIC and rat.GetRowCount() == 5
        assert [rat.GetNameOfCol(i) for i in range(rat.GetColumnCount())] == ["Value", "Class", "Red", "Green", "Blue"]
        assert (rat.GetValueAsInt(4, 0), rat.GetValueAsString(4, 1)) == (5, "water")
        assert tuple(rat.GetValueAsInt(1, i) for i in (2, 3, 4)) == (5, 73, 7)  # forest #054907
        assert band.GetColorTable().GetColorEntry(2)[:3] == (5, 73, 7)
    with open(tmp_path / "out" / "map_cog.qml", encoding="utf-8") as f:
        qml = f.read()
    assert '<paletteEntry value="5" color="#069af3" alpha="255" label="water"/>' in qml
    assert (tmp_path / "out" / "map.qml").read_text(encoding="utf-8") == qml
    assert sorted(os.listdir(tmp_path / "out")) == ["map.qml", "map.vrt", "map_cog.qml", "map_cog.tif", "map_cog.tif.aux.xml"]
    assert "<CategoryNames>" in open(vrt, encoding="utf-8").read()  # inside the VRT itself


def test_gap_and_overlap(tmp_path):
    """A gap stays no data; where patches overlap the later one wins, except at its no-data pixels."""
    a = np.full((100, 100), 1, dtype=np.uint8)
    b = np.full((100, 100), 2, dtype=np.uint8)
    c = np.full((100, 100), 3, dtype=np.uint8)
    c[:10, :10] = 0  # a hole of c inside its overlap with a
    for name, data, grid in (("a", a, _grid(0, 0, 100, 100)), ("b", b, _grid(120, 0, 100, 100)), ("c", c, _grid(50, 70, 100, 100))):
        write_class_raster(str(tmp_path / f"{name}.tif"), data, grid, CLASSES)
    paths = [str(tmp_path / f"{n}.tif") for n in "abc"]
    result = mosaic_files(paths, str(tmp_path / "m.vrt"))
    assert result.cog is None and (result.width, result.height) == (220, 170)
    with rasterio.open(tmp_path / "m.vrt") as src:
        data = src.read(1)
        points = {
            _centre(10, 10): 1,  # a only
            _centre(110, 10): 0,  # the gap between a and b
            _centre(150, 50): 2,  # b only
            _centre(60, 90): 3,  # a and c overlap: c (later) wins
            _centre(52, 72): 1,  # c's hole lets a show through
            _centre(10, 150): 0,  # below a, left of c
        }
        assert [int(v[0]) for v in src.sample(list(points))] == list(points.values())
    assert (data[:, 100:120][:70] == 0).all()
    assert (data[70:80, 50:60] == 1).all() and (data[80:100, 50:100] == 3).all()


def test_float_stack_keeps_descriptions_and_nan(tmp_path):
    grid0, grid1 = _grid(0, 0, 40, 30), _grid(40, 0, 40, 30)
    for i, grid in enumerate((grid0, grid1)):
        data = np.full((2, 30, 40), 0.1 * (i + 1), dtype=np.float32)
        data[:, 0, 0] = np.nan
        write_raster(str(tmp_path / f"s{i}.tif"), data, grid, nodata=float("nan"), tags={"LC_KIND": "features"},
                     descriptions=["2017-01-01 B04", "2017-01-01 B08"])
    out = mosaic_files([str(tmp_path / "s0.tif"), str(tmp_path / "s1.tif")], str(tmp_path / "m.vrt"), str(tmp_path / "m.tif"))
    assert (out.width, out.height) == (80, 30)
    with rasterio.open(out.cog) as src:
        assert src.descriptions == ("2017-01-01 B04", "2017-01-01 B08")
        assert src.tags()["LC_KIND"] == "features"
        data = src.read()
        assert np.isnan(data[:, 0, 0]).all() and np.isnan(data[:, 0, 40]).all()
        np.testing.assert_allclose(data[:, 5, 5], 0.1)
        np.testing.assert_allclose(data[:, 5, 45], 0.2)


def test_mismatched_crs_is_an_error(tiles, tmp_path):
    paths, _ = tiles
    odd = str(tmp_path / "odd.tif")
    write_class_raster(odd, _patch(0), _grid(0, 0, epsg=32634), CLASSES)
    with pytest.raises(LandCoverError, match="odd.tif is in EPSG:32634") as info:
        mosaic_files([*paths, odd], str(tmp_path / "out" / "m.vrt"), str(tmp_path / "out" / "m.tif"))
    assert info.value.argument == "paths"
    assert not (tmp_path / "out").exists()


def test_mismatched_bands_or_type_is_an_error(tiles, tmp_path):
    paths, _ = tiles
    two_bands = str(tmp_path / "two.tif")
    write_raster(two_bands, np.ones((2, 10, 10), dtype=np.uint8), _grid(0, 0, 10, 10), nodata=0)
    with pytest.raises(LandCoverError, match="two.tif has 2 bands") as info:
        mosaic_files([paths[0], two_bands], str(tmp_path / "m.vrt"))
    assert info.value.argument == "paths"
    floats = str(tmp_path / "float.tif")
    write_raster(floats, np.ones((10, 10), dtype=np.float32), _grid(0, 0, 10, 10))
    with pytest.raises(LandCoverError, match="float.tif holds Float32") as info:
        mosaic_files([paths[0], floats], str(tmp_path / "m.vrt"))
    with pytest.raises(LandCoverError, match="does not exist") as info:
        mosaic_files([paths[0], str(tmp_path / "missing.tif")], str(tmp_path / "m.vrt"))
    assert not (tmp_path / "m.vrt").exists()


def test_empty_list_and_output_over_input(tiles, tmp_path):
    with pytest.raises(LandCoverError, match="No input rasters") as info:
        mosaic_files([], str(tmp_path / "m.vrt"))
    assert info.value.argument == "paths"
    paths, _ = tiles
    with pytest.raises(LandCoverError) as info:
        mosaic_files(paths, str(tmp_path / "m.vrt"), paths[2])
    assert info.value.argument == "cog_out"


@pytest.mark.parametrize("stop_after", [0.0, 10.0, 50.0, 80.0])
def test_cancel_leaves_no_output(tiles, tmp_path, stop_after):
    """Cancel while building the VRT (0 %) or inside GDAL's COG writing (10–80 %; the last cancels on GDAL's final 100 % callback)."""
    paths, _ = tiles
    seen: list[float] = []
    monitor = Monitor(seen.append, lambda: bool(seen) and seen[-1] > stop_after)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(Cancelled):
        mosaic_files(paths, str(out / "m.vrt"), str(out / "m.tif"), monitor=monitor)
    assert seen[-1] < 100.0
    assert os.listdir(out) == []
