"""What the dialogs show and accept: date widgets, band checklists, decimals, stacks paired with references."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from lc_plugin.io.rasters import Grid, write_raster


def _alg(name: str):
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry().algorithmById(f"landcover:{name}")


def test_dates_are_date_widgets_that_still_take_iso_text(qgis_app):
    from landcover.algorithms.params import date_range
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingParameterDateTime
    from qgis.PyQt.QtCore import QDate, QDateTime

    download = _alg("download")
    start = download.parameterDefinition("START_DATE")
    assert isinstance(start, QgsProcessingParameterDateTime) and start.dataType() == QgsProcessingParameterDateTime.Date
    names = [p.name() for p in download.parameterDefinitions()]
    assert names.index("START_DATE") < names.index("END_DATE")
    context = QgsProcessingContext()
    for value in ("2017-01-01", QDate(2017, 1, 1), QDateTime(QDate(2017, 1, 1))):
        assert start.checkValueIsAcceptable(value)
        assert date_range(download, {"START_DATE": value, "END_DATE": "2017-12-31"}, context) == (dt.date(2017, 1, 1), dt.date(2017, 12, 31))
    assert not start.checkValueIsAcceptable("2017-13-01")
    assert date_range(_alg("interpolate"), {}, context) == (None, None)  # optional: the stack's own first and last dates
    with pytest.raises(QgsProcessingException, match="END_DATE: 2016-12-31 is before START_DATE 2017-01-01"):
        date_range(download, {"START_DATE": QDate(2017, 1, 1), "END_DATE": "2016-12-31"}, context)


def test_bands_are_a_checklist_that_still_takes_a_comma_list(qgis_app):
    from qgis.core import QgsProcessingContext

    for name in ("download", "rungrid"):
        bands = _alg(name).parameterDefinition("BANDS")
        assert bands.type() == "enum" and bands.allowMultiple() and bands.usesStaticStrings()
        assert {"B01", "B8A", "B10", "B12", "SCL", "CLM", "CLP"} <= set(bands.options())
        assert bands.defaultValue() == ["B02", "B03", "B04", "B08", "B11", "B12", "SCL"]
    download = _alg("download")
    assert download.parameterAsEnumStrings({"BANDS": "B04,CLM"}, "BANDS", QgsProcessingContext()) == ["B04", "CLM"]
    assert not download.parameterDefinition("BANDS").checkValueIsAcceptable("B04,B13")


def test_sentinel_hub_fields_are_advanced_and_numbers_show_few_decimals(qgis_app):
    from qgis.core import QgsProcessingParameterDefinition

    download = _alg("download")
    advanced = {p.name() for p in download.parameterDefinitions() if p.flags() & QgsProcessingParameterDefinition.FlagAdvanced}
    assert {"SH_ENDPOINT", "AUTHCFG"} <= advanced and "SOURCE" not in advanced
    assert download.parameterDefinition("PRESET").options()[0].startswith("Custom")
    decimals = lambda alg, name: _alg(alg).parameterDefinition(name).metadata()["widget_wrapper"]["decimals"]  # noqa: E731
    assert decimals("train", "TEST_FRACTION") == 2 and decimals("download", "MAX_CLOUD") == 1 and decimals("train", "LEARNING_RATE") == 2


def test_rungrid_reference_is_a_layer_with_a_field_like_rasterize_reference(qgis_app):
    for alg, layer, field in (("rungrid", "REFERENCE", "REFERENCE_FIELD"), ("rasterizereference", "REFERENCE", "FIELD")):
        definitions = _alg(alg)
        assert definitions.parameterDefinition(layer).type() == "source"
        assert definitions.parameterDefinition(field).type() == "field"
        assert definitions.parameterDefinition(field).parentLayerParameterName() == layer


def test_train_refuses_stacks_and_references_that_do_not_pair(run_alg, tmp_path):
    from qgis.core import QgsProcessingException

    grid = Grid(CRS.from_epsg(32633), from_origin(465000, 5080000, 10, 10), 2, 2)
    paths = {}
    for name in ("north_i", "south_i", "r_east", "r_west"):
        paths[name] = str(tmp_path / f"{name}.tif")
        write_raster(paths[name], np.ones((2, 2), np.uint8), grid)
    params = {"INPUT": [paths["north_i"], paths["south_i"]], "REFERENCE": [paths["r_east"], paths["r_west"]], "OUTPUT_MODEL": str(tmp_path / "m.onnx")}
    with pytest.raises(QgsProcessingException, match="REFERENCE: Cannot tell which reference raster goes with which time stack"):
        run_alg("train", params)
    assert not (tmp_path / "m.onnx").exists()


def test_each_parameters_help_is_its_tooltip_in_the_dialog(qgis_app):
    """The help given once on the definition (setHelp) is what the dialog's widget and label show on hover."""
    from qgis.core import QgsProcessingContext
    from qgis.gui import QgsGui, QgsProcessingGui

    registry = QgsGui.processingGuiRegistry()
    train = _alg("train")
    for name in ("INPUT", "SAMPLES_PER_CLASS", "SPLIT", "ALLOW_UNMASKED", "OUTPUT_MODEL"):
        definition = train.parameterDefinition(name)
        assert definition.help().startswith(("All stacks", "At most", "<i>block</i>", "A stack that", "ONNX with")), name
        wrapper = registry.createParameterWidgetWrapper(definition, QgsProcessingGui.Standard)
        widget = wrapper.createWrappedWidget(QgsProcessingContext())
        assert f"<p>{definition.help()}</p>" in widget.toolTip(), name
        label = wrapper.createWrappedLabel()  # check boxes carry their own label
        assert label is None or f"<p>{definition.help()}</p>" in label.toolTip(), name
