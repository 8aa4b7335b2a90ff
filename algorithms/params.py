"""Parameter definitions shared by several algorithms (dates)."""

from __future__ import annotations

import datetime as dt

from qgis.core import QgsProcessingException, QgsProcessingParameterDateTime

START_DATE = "START_DATE"
END_DATE = "END_DATE"


def date_parameter(name: str, description: str, optional: bool = False, default=None) -> QgsProcessingParameterDateTime:
    """A date (calendar widget in dialogs and the modeler); qgis_process and scripts still pass YYYY-MM-DD text."""
    return QgsProcessingParameterDateTime(name, description, QgsProcessingParameterDateTime.Date, default, optional)


def add_date_parameters(algorithm, optional: bool) -> None:
    start_hint = " (empty: the stack's first date)" if optional else ""
    end_hint = " (empty: the stack's last date)" if optional else ""
    algorithm.addParameter(date_parameter(START_DATE, algorithm.tr("Start date" + start_hint), optional))
    algorithm.addParameter(date_parameter(END_DATE, algorithm.tr("End date" + end_hint), optional))


def _parse(name: str, text: str) -> dt.date | None:
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
        return _parse(name, value)
    when = algorithm.parameterAsDateTime(parameters, name, context)
    return when.date().toPyDate() if when.isValid() else None


def date_range(algorithm, parameters, context) -> tuple[dt.date | None, dt.date | None]:
    start = parameter_date(algorithm, parameters, START_DATE, context)
    end = parameter_date(algorithm, parameters, END_DATE, context)
    if start and end and end < start:
        raise QgsProcessingException(f"{END_DATE}: {end} is before {START_DATE} {start}.")
    return start, end
