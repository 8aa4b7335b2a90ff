"""Reflectance from real STAC items of Earth Search, Planetary Computer and CDSE (tests/data/stac).

Each recorded item is served, as it is except for the hrefs of the two assets read, by
demo.stac_server on 127.0.0.1 and goes through the STAC source: search, band lookup, read.
The COGs behind it hold a known reflectance written the way that service really writes its
pixels (``DN = reflectance × 10000``, plus 1000 where the service keeps ESA's offset: c1, L1C,
CDSE, Planetary Computer from baseline 04.00; not Earth Search ``sentinel-2-l2a`` after it
subtracted the offset), so a wrong scale or offset shows as a wrong number. The expected
offset per item is written out here by hand from the services' documented behaviour (see
tests/data/stac/README.md and the README's Data sources), not computed by the code under test.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import date, timedelta

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import transform

from demo.scene import write_cog
from demo.stac_server import StacServer
from lc_plugin.core.errors import LandCoverError
from lc_plugin.core.monitor import Monitor
from lc_plugin.io.rasters import Grid
from lc_plugin.sources.stac import StacSource
from lc_plugin.sources.stac_assets import load_item, read_item
from lc_plugin.sources.stac_scaling import confirm_offset, scaling
from lc_plugin.sources.stac_search import search_items

DATA = os.path.join(os.path.dirname(__file__), "data", "stac")
PRE_04 = [  # Earth Search sentinel-2-l2a before baseline 04.00: raster:bands offset 0, pixels = reflectance × 10000
    "S2A_33TWN_20161202_0_L2A", "S2A_33TWN_20171005_0_L2A", "S2B_33TWN_20180806_0_L2A", "S2B_33TWN_20180521_1_L2A",
    "S2B_33TWN_20181005_0_L2A", "S2B_33TWN_20181104_0_L2A", "S2A_33TWN_20181119_0_L2A", "S2B_33TWN_20190503_0_L2A",
    "S2A_33TWN_20190707_1_L2A", "S2A_33TWN_20200202_0_L2A", "S2A_33TWN_20210328_0_L2A", "S2A_33TWN_20210629_0_L2A",
    "S2A_33TWN_20220122_0_L2A",
]  # fmt: skip
# (file, red asset key, scl asset key, offset chosen, words of the reason, DN offset the service's pixels carry)
CASES = [
    *[(f"earth-search/{i}.json", "red", "scl", 0.0, "declared by the item: raster:bands", 0) for i in PRE_04],
    ("earth-search/S2B_33TWN_20220130_0_L2A.json", "red", "scl", 0.0, "boa_offset_applied is true (baseline 04.00)", 0),
    ("earth-search/sentinel-2-l2a__S2B_20EPT_20250731_0_L2A.json", "red", "scl", 0.0, "boa_offset_applied is true (baseline 05.11)", 0),
    ("earth-search/sentinel-2-c1-l2a__S2B_T20EPT_20250731T131905_L2A.json", "red", "scl", -0.1, "declared by the item: raster:bands", 1000),
    ("earth-search/sentinel-2-l1c__S2B_20EPT_20250731_0_L1C.json", "red", None, -0.1, "declared by the item: raster:bands", 1000),
    ("planetary-computer/item_S2A_MSIL2A_20150704T101006_R022_T35XQA_20210411T133707.json", "B04", "SCL", 0.0, "baseline 02.12 < 04.00", 0),
    ("planetary-computer/item_S2B_MSIL2A_20200705T101559_R065_T32TMT_20200825T083452.json", "B04", "SCL", 0.0, "baseline 02.12 < 04.00", 0),
    ("planetary-computer/item_S2B_MSIL2A_20220612T182919_R027_T24XWR_20220613T123251.json", "B04", "SCL", -0.1, "baseline 04.00 >= 04.00", 1000),
    ("planetary-computer/items_limit1_page_2025-03-12.json", "B04", "SCL", -0.1, "baseline 05.11 >= 04.00", 1000),
    ("cdse/item_S2A_MSIL2A_20241107T113311_N0511_R080_T32VKR_20241107T123948.json", "B04_10m", "SCL_20m", -0.1, "raster:scale/raster:offset (STAC 1.1)", 1000),
    ("cdse/item_S2A_MSIL2A_20200301T090901_N0500_R050_T35UPU_20230630T033416.json", "B04_10m", "SCL_20m", -0.1, "raster:scale/raster:offset (STAC 1.1)", 1000),
]
MISFLAGGED = "earth-search/S2B_33TWN_20220226_0_L2A.json"  # baseline 04.00, flag false, raster:bands offset -0.1


def recorded_item(name: str) -> dict:
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        obj = json.load(f)
    return obj["features"][0] if "features" in obj else obj


def true_reflectance(col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """The reflectance on the COG's 10 m grid (vegetation-like red: 0.03 … 0.06), exact in 1e-4 steps."""
    return (300 + 3 * col + 5 * row) * 1e-4


def item_crs(item: dict, key: str) -> CRS:
    props, asset = item["properties"], item["assets"][key]
    code = props.get("proj:epsg") or asset.get("proj:epsg") or asset.get("proj:code") or props.get("proj:code")
    return CRS.from_user_input(f"EPSG:{code}" if isinstance(code, int) else code)


def serve_item(root: str, item: dict, red: str, scl: str | None, shift: int) -> Grid:
    """Write ``item`` (its red/SCL hrefs pointed at local COGs) under ``root``; return a 24 × 20 px patch grid inside its bbox."""
    item = copy.deepcopy(item)
    crs = item_crs(item, red)
    lon, lat = (item["bbox"][0] + item["bbox"][2]) / 2, (item["bbox"][1] + item["bbox"][3]) / 2
    xs, ys = transform("EPSG:4326", crs, [lon], [lat])
    x0, y0 = np.floor(xs[0] / 20) * 20, np.floor(ys[0] / 20) * 20  # COG origin on a 20 m grid
    cols, rows = np.meshgrid(np.arange(40), np.arange(40))
    dn = np.round(true_reflectance(cols, rows) * 10000 + shift).astype(np.uint16)
    folder = os.path.join(root, "cogs", item["id"])
    write_cog(os.path.join(folder, "red.tif"), dn, (x0, 10, 0, y0, 0, -10), crs.to_wkt())
    item["assets"][red]["href"] = f"cogs/{item['id']}/red.tif"
    if scl:
        write_cog(os.path.join(folder, "scl.tif"), np.full((20, 20), 4, np.uint8), (x0, 20, 0, y0, 0, -20), crs.to_wkt())
        item["assets"][scl]["href"] = f"cogs/{item['id']}/scl.tif"
    os.makedirs(os.path.join(root, "items"), exist_ok=True)
    with open(os.path.join(root, "items", f"{item['id']}.json"), "w", encoding="utf-8") as f:
        json.dump(item, f)
    with open(os.path.join(root, "collection.json"), "w", encoding="utf-8") as f:
        json.dump({"type": "Collection", "id": item["collection"], "links": []}, f)
    return Grid(crs, Affine(10.0, 0.0, x0 + 80, 0.0, -10.0, y0 - 60), 24, 20)  # COG columns 8..31, rows 6..25


def read_through_source(root: str, grid: Grid, item: dict, bands: list[str]) -> tuple[StacSource, np.ndarray, list[str]]:
    """Search the served item over ``grid`` on its day and read ``bands`` as the download step does."""
    day = date.fromisoformat(item["properties"]["datetime"][:10])
    log: list[str] = []
    monitor = Monitor(log=log.append)
    with StacServer(root) as srv:
        source = StacSource(srv.url, item["collection"])
        scenes = source.search(grid, day, day, 100.0, monitor)
        assert [s.id for s in scenes] == [item["id"]]
        source.check_bands(scenes, bands)
        data = source.read(scenes[0], grid, bands, monitor)
        source.close()
    return source, data, log


def expected_red() -> np.ndarray:
    cols, rows = np.meshgrid(np.arange(8, 32), np.arange(6, 26))
    return true_reflectance(cols, rows)


@pytest.mark.parametrize("name, red, scl, offset, why, shift", CASES, ids=[c[0].split("/")[-1][:48] for c in CASES])
def test_real_item_gives_true_reflectance(tmp_path, name, red, scl, offset, why, shift):
    item = recorded_item(name)
    grid = serve_item(str(tmp_path), item, red, scl, shift)
    source, data, log = read_through_source(str(tmp_path), grid, item, ["B04", "SCL"] if scl else ["B04"])
    chosen = source.scalings[item["id"]]["B04"]
    assert (chosen.scale, chosen.offset) == (0.0001, offset) and why in chosen.reason
    assert np.abs(data[0] - expected_red()).max() < 1e-4
    if scl:
        assert (data[1] == 4).all() and source.scalings[item["id"]]["SCL"].reason == "scene classes, used as they are"
    # The download log says once how this collection's DN became reflectance, and why.
    lines = [line for line in log if line.startswith("Scaling of")]
    assert len(lines) == 1 and f"B04: DN × 0.0001 {'-' if offset else '+'} {abs(offset):g} ({chosen.reason}" in lines[0]


@pytest.mark.parametrize("shift", [0, 1000], ids=["pixels-corrected", "pixels-keep-offset"])
def test_misflagged_earth_search_item_is_settled_by_its_pixels(tmp_path, shift):
    """S2B_33TWN_20220226_0_L2A says boa_offset_applied false at baseline 04.00: Earth Search got that
    flag wrong on some such items (pixels already corrected) and right on others; both are read right."""
    item = recorded_item(MISFLAGGED)
    grid = serve_item(str(tmp_path), item, "red", "scl", shift)
    source, data, _ = read_through_source(str(tmp_path), grid, item, ["B04", "SCL"])
    chosen = source.scalings[item["id"]]["B04"]
    assert chosen.offset == (0.0 if shift == 0 else -0.1)
    assert ("already subtracted: none applied" in chosen.reason) == (shift == 0)
    assert np.abs(data[0] - expected_red()).max() < 1e-4


def test_real_earth_search_pixels_with_offset_already_removed():
    """Real L2A pixels of Earth Search sentinel-2-l2a (flag true, raster:bands offset -0.1): red over
    vegetation is about 0.04, not -0.06; the same pixels with the flag set false are settled by the check."""
    path = os.path.join(DATA, "s2-l2a-33TWM-crop", "S2B_33TWM_20230813_0_L2A.json")
    item = load_item(path)  # relative hrefs B04.tif ... resolved against the item's folder
    assert os.path.isabs(item["assets"]["red"]["href"]) and item["assets"]["visual"]["href"].startswith("https://")
    grid = Grid.of(item["assets"]["red"]["href"])
    bands = ["B02", "B04", "B08", "SCL"]
    for flag in (True, False):
        item["properties"]["earthsearch:boa_offset_applied"] = flag
        data, scalings = read_item(item, grid, bands)
        veg = data[3] == 4
        assert veg.mean() == pytest.approx(0.833, abs=0.001)
        red, nir = data[1][veg], data[2][veg]
        assert np.median(red) == pytest.approx(0.03985, abs=1e-4) and (data[1][np.isfinite(data[1])] > 0).all()
        assert np.median((nir - red) / (nir + red)) == pytest.approx(0.796, abs=0.002)
        assert {b: s.offset for b, s in scalings.items()} == {"B02": 0.0, "B04": 0.0, "B08": 0.0, "SCL": 0.0}
    assert "median DN of B02 is 3" in scalings["B04"].reason  # the darkest band proves it


def test_confirm_offset_needs_enough_pixels_and_only_proves_removal():
    item = recorded_item(MISFLAGGED)
    doubtful = {"B04": scaling(item, "red")}
    assert doubtful["B04"].check_pixels
    few = {"B04": np.full((5, 5), 300.0)}  # 25 pixels: too few to judge, the flag is followed
    assert confirm_offset(doubtful, few)["B04"].offset == -0.1
    bright = {"B04": np.full((10, 10), 2500.0)}  # a bright window proves nothing either way
    assert confirm_offset(doubtful, bright)["B04"].offset == -0.1


def test_atmosphere_bands_of_cdse_are_quantified_by_1000():
    """CDSE declares AOT/WVP as 0.0001/-0.1; ESA's product XML quantifies both by 1000 without offset."""
    item = recorded_item("cdse/item_S2A_MSIL2A_20241107T113311_N0511_R080_T32VKR_20241107T123948.json")
    for key in ("AOT_10m", "WVP_10m"):
        s = scaling(item, key)
        assert (s.scale, s.offset) == (0.001, 0.0) and "not followed" in s.reason
    es = scaling(recorded_item("earth-search/sentinel-2-l2a__S2B_20EPT_20250731_0_L2A.json"), "aot")
    assert (es.scale, es.offset) == (0.001, 0.0) and "not followed" not in es.reason


# --------------------------------------------------------------------------- Planetary Computer paging


def pc_items(root: str, per_day: dict[date, int]) -> None:
    """Copies of the real PC item (id and time changed) served without next links."""
    template = recorded_item("planetary-computer/items_limit1_page_2025-03-12.json")
    os.makedirs(os.path.join(root, "items"), exist_ok=True)
    with open(os.path.join(root, "collection.json"), "w", encoding="utf-8") as f:
        json.dump({"type": "Collection", "id": "sentinel-2-l2a", "links": []}, f)
    for day, n in per_day.items():
        for k in range(n):
            when = f"{day}T10:{k // 60:02d}:{k % 60:02d}Z"
            item = {**template, "id": f"S2X_{day:%Y%m%d}_{k:03d}", "properties": {**template["properties"], "datetime": when}}
            item["assets"] = {"B04": template["assets"]["B04"]}
            with open(os.path.join(root, "items", f"{item['id']}.json"), "w", encoding="utf-8") as f:
                json.dump(item, f)


def test_full_page_without_next_link_splits_the_date_range(tmp_path):
    start = date(2025, 3, 1)
    per_day = {start + timedelta(days=d): 9 for d in range(26)}  # 234 items; a page holds 100
    pc_items(str(tmp_path), per_day)
    template = recorded_item("planetary-computer/items_limit1_page_2025-03-12.json")
    log: list[str] = []
    with StacServer(str(tmp_path), page_size=100, drop_next=True) as srv:
        items = search_items(srv.url, "sentinel-2-l2a", template["bbox"], start, date(2025, 3, 26), 100.0, monitor=Monitor(log=log.append))
        posts = [r for r in srv.requests if r.startswith("POST /search")]
    assert len(items) == 234 and len({i["id"] for i in items}) == 234
    assert "full page of 100 items for 2025-03-01..2025-03-26 without a 'next' link" in log[0]
    assert "searching 2025-03-01..2025-03-13 and 2025-03-14..2025-03-26 separately" in log[0]
    assert len(posts) == 7  # the whole range, its halves (117 each: full again), their halves (fewer than 100)


def test_full_page_of_one_day_without_next_link_fails_clearly(tmp_path):
    day = date(2025, 3, 12)
    pc_items(str(tmp_path), {day: 120})
    template = recorded_item("planetary-computer/items_limit1_page_2025-03-12.json")
    with StacServer(str(tmp_path), page_size=100, drop_next=True) as srv:
        with pytest.raises(LandCoverError) as err:
            search_items(srv.url, "sentinel-2-l2a", template["bbox"], day, day, 100.0)
    assert err.value.argument == "stac_url" and "full page of 100 items for 2025-03-12 without a link to the next page" in str(err.value)


def test_recorded_pc_page_has_the_shape_the_detection_relies_on():
    """The recorded PC page: a GET next link with a token, and no numberMatched/context to tell the total."""
    with open(os.path.join(DATA, "planetary-computer", "items_limit1_page_2025-03-12.json"), encoding="utf-8") as f:
        page = json.load(f)
    nxt = [link for link in page["links"] if link["rel"] == "next"]
    assert len(nxt) == 1 and nxt[0]["method"] == "GET" and "token=next:sentinel-2-l2a:" in nxt[0]["href"]
    assert "numberMatched" not in page and "context" not in page


def test_baseline_from_properties_or_product_name(tmp_path):
    from lc_plugin.sources.stac_scaling import processing_baseline

    cdse = recorded_item("cdse/item_S2A_MSIL2A_20241107T113311_N0511_R080_T32VKR_20241107T123948.json")
    assert "s2:processing_baseline" not in cdse["properties"] and processing_baseline(cdse) == "05.11"  # processing:version
    pc = recorded_item("planetary-computer/item_S2B_MSIL2A_20220612T182919_R027_T24XWR_20220613T123251.json")
    del pc["properties"]["s2:processing_baseline"]
    assert processing_baseline(pc) == "04.00"  # from s2:product_uri …_N0400_…
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LandCoverError) as err:
        load_item(str(tmp_path / "bad.json"))
    assert err.value.argument == "path" and "bad.json is not a readable STAC item" in str(err.value)
