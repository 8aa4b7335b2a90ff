"""Parameter definitions shared by several algorithms (dates)."""

from __future__ import annotations

import datetime as dt

from qgis.core import QgsProcessingException, QgsProcessingParameterString

START_DATE = "START_DATE"
END_DATE = "END_DATE"


def add_date_parameters(algorithm, optional: bool) -> None:
    """ISO dates as strings: they read the same in dialogs, the modeler and qgis_process on 3.22."""
    hint = " (YYYY-MM-DD, empty: the stack's first date)" if optional else " (YYYY-MM-DD)"
    algorithm.addParameter(QgsProcessingParameterString(START_DATE, algorithm.tr("Start date" + hint), optional=optional))
    hint = " (YYYY-MM-DD, empty: the stack's last date)" if optional else " (YYYY-MM-DD)"
    algorithm.addParameter(QgsProcessingParameterString(END_DATE, algorithm.tr("End date" + hint), optional=optional))


def parse_date(name: str, text: str) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError as exc:
        raise QgsProcessingException(f"{name}: '{text}' is not a date; expected YYYY-MM-DD.") from exc


def date_range(algorithm, parameters, context) -> tuple[dt.date | None, dt.date | None]:
    start = parse_date(START_DATE, algorithm.parameterAsString(parameters, START_DATE, context))
    end = parse_date(END_DATE, algorithm.parameterAsString(parameters, END_DATE, context))
    if start and end and end < start:
        raise QgsProcessingException(f"{END_DATE}: {end} is before {START_DATE} {start}.")
    return start, end
