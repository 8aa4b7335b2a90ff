"""Reference classes (issue 15): ids from 0, text fields, legends (built-in, CSV, QML), colours that mean something."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from osgeo import ogr

from lc_plugin.core.classes import ClassTable, LandCoverClass, NameConflict, default_color, make_class_table, merge_class_tables
from lc_plugin.core.errors import LandCoverError
from lc_plugin.core.legends import builtin_legends, read_legend_file
from lc_plugin.core.monitor import Monitor
from lc_plugin.io.rasters import write_raster
from lc_plugin.reference.rasterize import ClassOptions, burn_reference, rasterize_reference_file
from tests.test_reference import GRID10, box, write_gpkg

ROOT = Path(__file__).resolve().parents[1]
# Three vertical strips of the 10×10 grid: columns 0–2, 3–5, 6–9.
STRIPS = [box(0, 0, 30, 100), box(30, 0, 60, 100), box(60, 0, 100, 100)]


def _layer(tmp_path, values, ftype=ogr.OFTInteger, extra=(), name="classes"):
    features = [(wkt, {"C": v, **{k: vals[i] for k, vals in extra}}) for i, (wkt, v) in enumerate(zip(STRIPS, values))]
    fields = [("C", ftype)] + [(k, ogr.OFTString) for k, _ in extra]
    return write_gpkg(tmp_path / f"{name}.gpkg", features, fields=fields)


def test_ids_numbered_from_zero_are_refused_with_how_to_remap(tmp_path):
    # As QGIS's "Add unique value index field" writes them: 0, 1, 2 (no name field).
    path = _layer(tmp_path, [0, 1, 2])
    with pytest.raises(LandCoverError) as err:
        burn_reference(path, "C", GRID10)
    assert err.value.argument == "class_field"
    assert "0 means no data" in str(err.value) and "shift every id up by one" in str(err.value)


def test_ids_numbered_from_zero_are_shifted_on_request(tmp_path):
    path = _layer(tmp_path, [0, 1, 2], extra=[("NAME", ["forest", "water", "cropland"])])
    with pytest.raises(LandCoverError):  # a named class 0 is a class, not no data
        burn_reference(path, "C", GRID10, options=ClassOptions(name_field="NAME"))
    burnt = burn_reference(path, "C", GRID10, options=ClassOptions(name_field="NAME", zero="shift"))
    assert burnt.labels[:, 0].tolist() == [1] * 10 and burnt.labels[:, 4].tolist() == [2] * 10 and burnt.labels[:, 9].tolist() == [3] * 10
    assert burnt.table.names == ["forest", "water", "cropland"] and "shifted" in burnt.how
    assert not (burnt.labels == 0).any()  # the forest strip did not vanish


def test_zero_as_no_data_when_asked_or_when_the_layer_says_so(tmp_path):
    path = _layer(tmp_path, [0, 1, 2])
    burnt = burn_reference(path, "C", GRID10, options=ClassOptions(zero="nodata"))
    assert (burnt.labels[:, :3] == 0).all() and burnt.table.ids == [1, 2]
    # eo-learn's LULC: id 0 polygons with an empty name, the others named.
    named = write_gpkg(
        tmp_path / "lulc.gpkg",
        [(STRIPS[0], {"C": 0, "NAME": ""}), (STRIPS[1], {"C": 2, "NAME": "forest"})],
        fields=(("C", ogr.OFTInteger), ("NAME", ogr.OFTString)),
    )
    burnt = burn_reference(named, "C", GRID10, options=ClassOptions(name_field="NAME"))
    assert burnt.table.ids == [2] and (burnt.labels[:, :3] == 0).all() and "unnamed" in burnt.how


def test_text_field_is_numbered_in_sorted_order_with_its_names(tmp_path):
    path = _layer(tmp_path, ["water", "Forest", "grassland"], ftype=ogr.OFTString)
    like = str(tmp_path / "like.tif")
    write_raster(like, np.zeros((10, 10), np.float32), GRID10)
    out = str(tmp_path / "ref.tif")
    messages = []
    table = rasterize_reference_file(path, "C", like, out, monitor=Monitor(log=messages.append))
    assert [(c.id, c.name) for c in table] == [(1, "Forest"), (2, "grassland"), (3, "water")]
    with rasterio.open(out) as src:
        labels, tags = src.read(1), src.tags()
    assert labels[0].tolist() == [3, 3, 3, 1, 1, 1, 2, 2, 2, 2]
    assert json.loads(tags["CLASS_VALUES"]) == {"Forest": 1, "grassland": 2, "water": 3}
    assert "numbered 1–3" in tags["CLASS_IDS"] and any("numbered" in m for m in messages)
    # Meaningful colours from the names: water blue, forest green.
    assert table.by_id(3).color == default_color(0, "water") == "#069af3"  # eo-learn's water blue
    assert table.by_id(1).color == "#054907"  # eo-learn's forest colour (the Slovenian legend's name)


def test_corine_codes_as_text_use_the_clc_legend(tmp_path):
    # CLC vector products hold Code_18 as text ("311"); the raster product's grid codes are 1–44.
    path = _layer(tmp_path, ["311", "512", "211"], ftype=ogr.OFTString)
    burnt = burn_reference(path, "C", GRID10, options=ClassOptions(legend="clc"))
    assert burnt.table.ids == [12, 23, 41]
    assert [(c.name, c.color) for c in burnt.table] == [
        ("Non-irrigated arable land", "#ffffa8"),
        ("Broad-leaved forest", "#80ff00"),
        ("Water bodies", "#80f2e6"),
    ]
    assert burnt.labels[0, 0] == 23 and burnt.labels[0, 9] == 12
    clc = builtin_legends()["clc"]
    assert len(clc.entries) == 44 and clc.id_of("523") == 44 and clc.id_of(111) == 1 and clc.id_of("999") is None
    with pytest.raises(LandCoverError) as err:
        burn_reference(_layer(tmp_path, ["311", "999", "211"], ftype=ogr.OFTString, name="bad"), "C", GRID10, options=ClassOptions(legend="clc"))
    assert err.value.argument == "legend" and "999" in str(err.value)


def test_worldcover_and_slovenia_legends_only_when_chosen(tmp_path):
    path = _layer(tmp_path, [10, 80, 50])
    plain = burn_reference(path, "C", GRID10)
    assert plain.table.names == ["class 10", "class 50", "class 80"] and plain.names_from == "none"
    wc = burn_reference(path, "C", GRID10, options=ClassOptions(legend="worldcover"))
    assert [(c.id, c.name, c.color) for c in wc.table] == [
        (10, "Tree cover", "#006400"),
        (50, "Built-up", "#fa0000"),
        (80, "Permanent water bodies", "#0064c8"),
    ]
    si = burn_reference(_layer(tmp_path, [2, 5, 8], name="slovenia"), "C", GRID10, options=ClassOptions(legend="slovenia"))
    assert si.table.names == ["forest", "water", "artificial surface"]


def test_csv_and_qml_legend_files_and_a_colour_field(tmp_path):
    path = _layer(tmp_path, [1, 2, 5], extra=[("COL", ["#112233", "#445566", "#778899"])])
    csv_legend = tmp_path / "legend.csv"
    csv_legend.write_text("id,name,color\n1,Cropland,#f0d43a\n2,Forest,#2e8b2e\n5,Lake,\n", encoding="utf-8")
    burnt = burn_reference(path, "C", GRID10, options=ClassOptions(legend_file=str(csv_legend)))
    assert [(c.name, c.color) for c in burnt.table] == [("Cropland", "#f0d43a"), ("Forest", "#2e8b2e"), ("Lake", "#1f78b4")]
    coloured = burn_reference(path, "C", GRID10, options=ClassOptions(legend_file=str(csv_legend), color_field="COL"))
    assert [c.color for c in coloured.table] == ["#112233", "#445566", "#778899"]
    # The plugin's own paletted QML (a QGIS raster style).
    qml = read_legend_file(str(ROOT / "resources" / "styles" / "classes.qml"))
    assert qml["2"] == ("forest", "#054907") and len(qml) == 10
    # A categorized vector style as QGIS 3.22 writes it.
    categorized = tmp_path / "clc.qml"
    categorized.write_text(
        '<!DOCTYPE qgis><qgis version="3.22.16"><renderer-v2 type="categorizedSymbol" attr="Code_18"><categories>'
        '<category value="311" label="Broad-leaved forest" symbol="0" render="true"/>'
        '<category value="512" label="Water bodies" symbol="1" render="true"/></categories><symbols>'
        '<symbol name="0" type="fill"><layer class="SimpleFill"><prop k="color" v="128,255,0,255"/></layer></symbol>'
        '<symbol name="1" type="fill"><layer class="SimpleFill"><prop k="color" v="128,242,230,255"/></layer></symbol>'
        "</symbols></renderer-v2></qgis>",
        encoding="utf-8",
    )
    assert read_legend_file(str(categorized)) == {"311": ("Broad-leaved forest", "#80ff00"), "512": ("Water bodies", "#80f2e6")}
    with pytest.raises(LandCoverError) as err:
        burn_reference(path, "C", GRID10, options=ClassOptions(color_field="NOPE"))
    assert err.value.argument == "color_field"


def test_default_colours_mean_something():
    table = make_class_table({1: "Coniferous forest", 2: "River", 3: "Arable land", 4: "Urban fabric", 5: "Xyz"})
    colors = {c.name: c.color for c in table}
    assert colors["River"] == "#1f78b4" and colors["Coniferous forest"] == "#1b6b1b"
    assert colors["Arable land"] == "#f0d43a" and colors["Urban fabric"] == "#d7301f"
    assert colors["Xyz"] == "#9467bd"  # unrecognised: the palette's fifth colour for id 5
    assert make_class_table({5: ""}).by_id(5).name == "class 5"  # no legend applied silently


def test_merged_class_table_first_table_wins_and_names_ids_seen_only_in_the_data():
    forest, water = LandCoverClass(2, "Forest", "#00aa00"), LandCoverClass(5, "water", "#0000ff")
    other = ClassTable([LandCoverClass(0, "no data", "#000000"), LandCoverClass(2, "Woodland", "#112233"), LandCoverClass(5, " WATER ", "#123456")])
    table, conflicts = merge_class_tables([ClassTable([forest, water]), None, other], [0, 2, 7])
    # id 0 is never a class; 2 and 5 keep the first table's name and colour; 7 is only in the data
    assert list(table) == [forest, water, LandCoverClass(7, "class 7", default_color(7))]
    assert conflicts == [NameConflict(2, "Forest", "Woodland")]  # " WATER " is the same name (case and spaces aside)

