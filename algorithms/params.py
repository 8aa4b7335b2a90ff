"""Parameter definitions shared by several algorithms (dates, Sentinel-2 bands)."""

from __future__ import annotations

import datetime as dt

from qgis.core import QgsProcessingException, QgsProcessingParameterDateTime, QgsProcessingParameterEnum

from ..lc_plugin.sources.sentinelhub import CLOUD_BANDS, L1C_BANDS

START_DATE = "START_DATE"
END_DATE = "END_DATE"


def date_parameter(name: str, description: str, optional: bool = False, default=None) -> QgsProcessingParameterDateTime:
    """A date (calendar widget in dialogs and the modeler); qgis_process and scripts still pass YYYY-MM-DD text."""
    return QgsProcessingParameterDateTime(name, description, QgsProcessingParameterDateTime.Date, default, optional)


# Every band a source can deliver: the 13 L1C bands, the L2A scene classification, Sentinel Hub's cloud layers.
BAND_OPTIONS = [*L1C_BANDS, "SCL", *CLOUD_BANDS]


def bands_parameter(name: str, description: str, default: list[str]) -> QgsProcessingParameterEnum:
    """Bands as a checklist; its values are the band names, so qgis_process takes BANDS=B02,B03,B04 as before."""
    bands = QgsProcessingParameterEnum(name, description, BAND_OPTIONS, allowMultiple=True, defaultValue=list(default), usesStaticStrings=True)
    bands.setMetadata({"widget_wrapper": {"useCheckBoxes": True, "columns": 6}})  # ticked in the dialog, not a "…" list
    return bands


def add_date_parameters(algorithm, optional: bool, start_help: str, end_help: str) -> None:
    start_hint = " (empty: the stack's first date)" if optional else ""
    end_hint = " (empty: the stack's last date)" if optional else ""
    algorithm.addParameter(date_parameter(START_DATE, algorithm.tr("Start date" + start_hint), optional), help=start_help)
    algorithm.addParameter(date_parameter(END_DATE, algorithm.tr("End date" + end_hint), optional), help=end_help)


def parse_date(name: str, text: str) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError as exc:
        raise QgsProcessingException(f"{name}: '{text}' is not a date; expected YYYY-MM-DD.") from exc


def parameter_date(algorithm, parameters, name: str, context) -> dt.date | None:
    """The date of a date parameter, given as a QDate/QDateTime (dialogs) or as YYYY-MM-DD text (qgis_process)."""
    value = parameters.get(name)
    if isinstance(value, str):
        return parse_date(name, value)
    when = algorithm.parameterAsDateTime(parameters, name, context)
    return when.date().toPyDate() if when.isValid() else None


def date_range(algorithm, parameters, context) -> tuple[dt.date | None, dt.date | None]:
    start = parameter_date(algorithm, parameters, START_DATE, context)
    end = parameter_date(algorithm, parameters, END_DATE, context)
    if start and end and end < start:
        raise QgsProcessingException(f"{END_DATE}: {end} is before {START_DATE} {start}.")
    return start, end
