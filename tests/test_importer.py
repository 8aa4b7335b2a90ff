"""Import of the user's own Sentinel-2 products: SAFE folders and zips of every level and baseline (real
product XMLs, generated bands), real Earth Search products with their STAC items, stacks like Download's."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from safe_products import build_safe, metadata_xml, zip_safe

from lc_plugin.core.errors import LandCoverError
from lc_plugin.io.rasters import read_stack
from lc_plugin.sources.importer import find_products, import_patches, import_products
from lc_plugin.sources.products import parse_metadata

DATA = Path(__file__).resolve().parent / "data"
TIMESERIES = DATA / "s2-l2a-timeseries"

# (folder, level, baseline, DN offset, cloud %, date, tile corner, EPSG) — the facts of each real XML
# (offsets/baselines/cloud from tests/data/s2-metadata/README.md; corners from the tiles' MTD_TL.xml,
# for 01KAB a corner in its zone).
PRODUCTS = [
    ("L2A_N0212", "L2A", "02.12", 0.0, 51.6, "2019-02-12", (600000, 6500020), 32707),
    ("L2A_N0400", "L2A", "04.00", -1000.0, 98.9, "2022-04-13", (499980, 8900040), 32633),
    ("L2A_N0509", "L2A", "05.09", -1000.0, 59.1, "2023-08-21", (199980, 8200000), 32701),
    ("L1C_N0301", "L1C", "03.01", 0.0, 88.3, "2021-09-08", (499980, 3100020), 32646),
    ("L1C_N0509", "L1C", "05.09", -1000.0, 7.1, "2023-02-16", (499980, 5400000), 32646),
]


def red(rows, cols, res):
    """B04: 1000 + 10·row + col at 10 m (every pixel its own value); a flat 3000 in the 20/60 m copies."""
    return 1000 + 10 * rows + cols if res == 10 else np.full(rows.shape, 3000)


BANDS = {
    "B04": red,
    "B05": lambda r, c, res: np.full(r.shape, 2500),  # 20 m only
    "B01": lambda r, c, res: np.full(r.shape, 1200),  # 60 m (and 20 m in some L2A)
    "SCL": lambda r, c, res: 4 + (r + c) % 2,  # 20 m classes 4/5 in a checkerboard
}


@pytest.mark.parametrize("folder,level,baseline,offset,cloud,day,ul,epsg", PRODUCTS, ids=[p[0] for p in PRODUCTS])
def test_product_xml_gives_level_baseline_offsets_and_quantification(folder, level, baseline, offset, cloud, day, ul, epsg):
    meta, entries = parse_metadata(metadata_xml(folder).read_bytes(), folder)
    assert (meta["level"], meta["baseline"], meta["date"].isoformat()) == (level, baseline, day)
    assert meta["quantification"] == 10000.0
    assert meta["cloud"] == pytest.approx(cloud, abs=0.05)
    expected = {b: offset for b in ["B01", "B02", "B04", "B8A", "B12"]} if offset else {}
    assert {b: meta["offsets"][b] for b in expected} == expected
    assert len(meta["offsets"]) == (13 if offset else 0)
    assert any(e.endswith("_B04_10m") or e.endswith("_B04") for e in entries)


@pytest.mark.parametrize("folder,level,baseline,offset,cloud,day,ul,epsg", PRODUCTS, ids=[p[0] for p in PRODUCTS])
def test_safe_reflectance_is_dn_plus_offset_over_quantification(tmp_path, folder, level, baseline, offset, cloud, day, ul, epsg):
    safe = build_safe(str(tmp_path / "in"), folder, BANDS, ul=ul, epsg=epsg)
    out = str(tmp_path / "stack.tif")
    import_products([safe], out)
    stack = read_stack(out)
    assert [d.isoformat() for d in stack.dates] == [day]
    assert stack.bands == (["B01", "B04", "B05", "SCL"] if level == "L2A" else ["B01", "B04", "B05"])
    assert stack.data.dtype == np.float32 and stack.grid.width == stack.grid.height == 24
    assert stack.grid.transform.c == ul[0] and stack.grid.transform.f == ul[1] and stack.grid.crs.to_epsg() == epsg
    rows, cols = np.mgrid[0:24, 0:24]
    np.testing.assert_allclose(stack.band("B04")[0], (1000 + 10 * rows + cols + offset) / 10000, atol=1e-6)
    np.testing.assert_allclose(stack.band("B05")[0], (2500 + offset) / 10000, atol=1e-6)  # 20 m, bilinear of a flat field
    np.testing.assert_allclose(stack.band("B01")[0], (1200 + offset) / 10000, atol=1e-6)
    if level == "L2A":
        np.testing.assert_array_equal(stack.band("SCL")[0], 4 + (rows // 2 + cols // 2) % 2)  # nearest, never blended
    tags = stack.tags
    assert tags["SOURCE"] == "products" and tags["PROCESSING_LEVEL"] == level
    assert json.loads(tags["PROCESSING_BASELINE"]) == [[baseline]]
    assert json.loads(tags["ITEM_IDS"]) == [[metadata_xml(folder).parent.name if folder != "L1C_N0509" else
                                             "S2A_MSIL1C_20230216T044851_N0509_R076_T46UEU_20230216T063628.SAFE"]]
    with rasterio.open(out) as src:
        assert src.descriptions[:2] == (f"{day} B01", f"{day} B04")


def test_coarser_output_uses_the_products_own_20m_band(tmp_path):
    safe = build_safe(str(tmp_path / "in"), "L2A_N0400", BANDS, ul=(499980, 8900040), epsg=32633)
    out = str(tmp_path / "stack20.tif")
    import_products([safe], out, resolution=20, bands=["B04", "SCL"])
    stack = read_stack(out)
    assert stack.grid.width == 12
    np.testing.assert_allclose(stack.band("B04")[0], (3000 - 1000) / 10000, atol=1e-6)  # R20m/…_B04_20m, not the 10 m file
    rows, cols = np.mgrid[0:12, 0:12]
    np.testing.assert_array_equal(stack.band("SCL")[0], 4 + (rows + cols) % 2)


def test_zipped_product_reads_like_the_folder(tmp_path):
    safe = build_safe(str(tmp_path / "in"), "L2A_N0509", BANDS, ul=(199980, 8200000), epsg=32701)
    import_products([safe], str(tmp_path / "folder.tif"), bands=["B04", "B05", "SCL"])
    archive = zip_safe(safe, str(tmp_path / "product.zip"))
    import_products([archive], str(tmp_path / "zip.tif"), bands=["B04", "B05", "SCL"])
    a, b = read_stack(str(tmp_path / "folder.tif")), read_stack(str(tmp_path / "zip.tif"))
    np.testing.assert_array_equal(a.data, b.data)
    assert a.tags["ITEM_IDS"] == b.tags["ITEM_IDS"]


def test_two_tiles_of_one_day_are_mosaicked_least_cloudy_first(tmp_path):
    """Two products of one day (the real XML, the second edited to another tile and 10 % cloud) overlapping by 8 px."""
    root = str(tmp_path / "in")
    bands = {"B04": lambda r, c, res: np.full(r.shape, 1500), "SCL": BANDS["SCL"]}
    build_safe(root, "L2A_N0509", bands, ul=(199980, 8200000), epsg=32701)

    def other_tile(text: str) -> str:
        text = text.replace("T01KAB", "T01KBB")
        return text.replace("<Cloud_Coverage_Assessment>59.050727<", "<Cloud_Coverage_Assessment>10.0<")

    bands_b = {"B04": lambda r, c, res: np.full(r.shape, 2500), "SCL": BANDS["SCL"]}
    build_safe(root, "L2A_N0509", bands_b, ul=(199980 + 160, 8200000), epsg=32701, edit=other_tile)
    out = str(tmp_path / "mosaic.tif")
    import_products([root], out, bands=["B04"])
    stack = read_stack(out)
    assert len(stack.dates) == 1 and stack.grid.width == 40
    b04 = stack.band("B04")[0]
    np.testing.assert_allclose(b04[:, :16], 0.05)  # tile A only
    np.testing.assert_allclose(b04[:, 16:], 0.15)  # tile B, the less cloudy one, wins the overlap (cols 16–23)
    assert len(json.loads(stack.tags["ITEM_IDS"])[0]) == 2


def test_product_outside_the_extent_is_named(tmp_path):
    safe = build_safe(str(tmp_path / "in"), "L2A_N0400", BANDS, ul=(499980, 8900040), epsg=32633)
    out = tmp_path / "none.tif"
    with pytest.raises(LandCoverError) as err:
        import_products([safe], str(out), extent=(14.0, 46.0, 14.1, 46.1), extent_crs="EPSG:4326")
    assert err.value.argument == "extent" and "S2B_MSIL2A_20220413T150759" in str(err.value) and "overlaps" in str(err.value)
    assert not out.exists() and os.listdir(tmp_path) == ["in"]


def test_corrupt_zip_is_named_and_leaves_nothing(tmp_path):
    safe = build_safe(str(tmp_path / "in"), "L1C_N0509", BANDS, ul=(499980, 5400000), epsg=32646)
    archive = zip_safe(safe, str(tmp_path / "in" / "product.zip"))
    data = Path(archive).read_bytes()
    Path(archive).write_bytes(data[: len(data) // 2])  # a download cut in half
    out = tmp_path / "out" / "stack.tif"
    for given in ([archive], [str(tmp_path / "in")]):
        with pytest.raises(LandCoverError) as err:
            import_products(given, str(out))
        assert err.value.argument == "inputs" and "product.zip is not a readable zip file" in str(err.value)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_mixed_levels_are_refused(tmp_path):
    build_safe(str(tmp_path), "L1C_N0509", BANDS, ul=(499980, 5400000), epsg=32646)
    build_safe(str(tmp_path), "L2A_N0400", BANDS, ul=(499980, 8900040), epsg=32633)
    with pytest.raises(LandCoverError, match="Level-1C .* Level-2A") as err:
        find_products([str(tmp_path)])
    assert err.value.argument == "inputs"


def red_dn(product: Path) -> np.ndarray:
    with rasterio.open(product / "B04.tif") as src:
        return src.read(1).astype(np.float64)


def test_earth_search_products_give_true_reflectance_with_every_date_and_scl(tmp_path):
    """Real Earth Search L2A (baseline 05.09): the items declare offset −0.1 but the pixels are already
    corrected (earthsearch:boa_offset_applied), so red over vegetation is DN × 0.0001 ≈ 0.03–0.05."""
    out = str(tmp_path / "ts.tif")
    import_products([str(TIMESERIES)], out, resolution=120)
    stack = read_stack(out)
    assert [d.isoformat() for d in stack.dates] == ["2023-08-10", "2023-08-13", "2023-08-15", "2023-08-18", "2023-08-20"]
    assert stack.bands == ["B02", "B03", "B04", "B08", "SCL"]
    assert (stack.grid.width, stack.grid.height, stack.grid.transform.c, stack.grid.transform.f) == (40, 40, 582780, 5111220)
    for t, product in enumerate(sorted(TIMESERIES.glob("S2*"), key=lambda p: p.name.split("_")[2])):
        scl = stack.band("SCL")[t]
        veg = scl == 4
        assert veg.sum() > 800
        np.testing.assert_allclose(stack.band("B04")[t], red_dn(product) * 1e-4, atol=1e-6)
        assert 0.025 < float(np.median(stack.band("B04")[t][veg])) < 0.05
    with rasterio.open(out) as src:
        assert src.descriptions[-1] == "2023-08-20 SCL"


def test_static_catalogue_and_absolute_hrefs(tmp_path):
    """A static catalogue linking items elsewhere, and an item whose hrefs are absolute paths."""
    item_paths = sorted(TIMESERIES.glob("S2*/*.json"))
    catalog = {"type": "Catalog", "id": "mine", "stac_version": "1.0.0", "description": "d",
               "links": [{"rel": "item", "href": str(p)} for p in item_paths[:2]]}
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    item = json.loads(item_paths[2].read_text())
    for asset in item["assets"].values():
        if not asset["href"].startswith(("http", "s3:")) and asset["href"].endswith(".tif"):
            asset["href"] = str(item_paths[2].parent / asset["href"])
    (tmp_path / "absolute.json").write_text(json.dumps(item))
    scenes = find_products([str(tmp_path)])
    assert sorted(s.id for s in scenes) == sorted(json.loads(p.read_text())["id"] for p in item_paths[:3])
    out = str(tmp_path / "out.tif")
    import_products([str(tmp_path / "catalog.json"), str(tmp_path / "absolute.json")], out, resolution=120, bands=["B04"])
    assert len(read_stack(out).dates) == 3


def test_per_patch_stacks_on_a_grid(tmp_path):
    from lc_plugin.runs.grid import create_grid

    aoi = tmp_path / "aoi.geojson"
    x0, y0 = 582780 + 1200, 5111220 - 2400
    ring = [[x0, y0], [x0 + 1200, y0], [x0 + 1200, y0 + 1200], [x0, y0 + 1200], [x0, y0]]
    aoi.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32633"}},
                               "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    grid = str(tmp_path / "grid.gpkg")
    create_grid(str(aoi), grid, patch_px=60, resolution=20)
    paths = import_patches([str(TIMESERIES)], grid, str(tmp_path / "stacks"), bands=["B04", "SCL"])
    assert paths
    for path in paths:
        stack = read_stack(path)
        assert len(stack.dates) == 5 and stack.grid.width == 60 and stack.tags["PATCH_ID"] == Path(path).stem
        assert np.isfinite(stack.band("B04")).all()
    shutil.rmtree(tmp_path / "stacks")


def test_whole_earth_search_tile_matches_the_figures_of_its_readme(tmp_path):
    """All of ../shared/data/s2-l2a-timeseries (5 × 915 × 915 px): per date, the median red DN and NDVI over
    SCL vegetation that its README lists (counted there on the files by the data's curator)."""
    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "s2-l2a-timeseries"
    if not folder.exists():
        pytest.skip(f"real data not found at {folder}")
    out = str(tmp_path / "tile.tif")
    import_products([str(folder)], out, resolution=120, bands=["B04", "B08", "SCL"])
    stack = read_stack(out)
    assert stack.data.shape == (5, 3, 915, 915)
    red, nir, scl = stack.band("B04"), stack.band("B08"), stack.band("SCL")
    for t, (red_dn, ndvi) in enumerate([(424, 0.818), (253, 0.851), (313, 0.836), (389, 0.797), (342, 0.821)]):
        veg = scl[t] == 4
        assert float(np.nanmedian(red[t][veg])) == pytest.approx(red_dn * 1e-4, abs=2e-4)
        assert float(np.nanmedian(((nir - red) / (nir + red))[t][veg])) == pytest.approx(ndvi, abs=0.002)
        assert not (red[t] < 0).any()


def test_a_product_with_two_granules_gives_one_scene_per_tile(tmp_path):
    """Products made before December 2016 could list several tiles (granules) in one XML."""
    first = "GRANULE/L1C_T46RER_A032448_20210908T043714/"

    def two_granules(text: str) -> str:
        entries = [line for line in text.splitlines() if "<IMAGE_FILE>" in line]
        if not entries:  # the folder name
            return text
        copies = "\n".join(e.replace("L1C_T46RER_A032448", "L1C_T46RES_A032448").replace("T46RER_2021", "T46RES_2021") for e in entries)
        return text.replace(entries[-1], entries[-1] + "\n" + copies)

    build_safe(str(tmp_path), "L1C_N0301", {"B04": red}, ul=(499980, 3100020), epsg=32646, edit=two_granules)
    scenes = find_products([str(tmp_path)])
    name = "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE"
    assert [s.id for s in scenes] == [f"{name}/L1C_T46RER_A032448_20210908T043714", f"{name}/L1C_T46RES_A032448_20210908T043714"]
    assert first in scenes[0].payload["safe"].files["B04"][10]


def test_damaged_band_inside_a_zip_is_named_and_leaves_nothing(tmp_path):
    """The zip opens and the first band reads; the second band's data is damaged: the stack being
    written is dropped."""
    safe = build_safe(str(tmp_path / "in"), "L2A_N0509", {"B04": red, "B05": BANDS["B05"]}, ul=(199980, 8200000), epsg=32701)
    archive = zip_safe(safe, str(tmp_path / "in" / "product.zip"))
    data = bytearray(Path(archive).read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("_B05_20m.jp2"))
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 40
    data[start:start + 200] = bytes(200)  # the band's JPEG2000 codestream zeroed: the zip's directory is intact
    Path(archive).write_bytes(bytes(data))
    out = tmp_path / "out" / "stack.tif"
    with pytest.raises(LandCoverError) as err:
        import_products([archive], str(out))
    assert err.value.argument == "inputs" and "band B05 of S2A_MSIL2A_20230821T221941" in str(err.value) and "product.zip" in str(err.value)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")
