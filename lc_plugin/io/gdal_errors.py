"""GDAL's error messages, captured: the one way the engine quiets GDAL and keeps what it said.

GDAL prints failures to stderr (where ``qgis_process --json`` and notebooks show them as noise) or, when a
host called ``gdal.UseExceptions()``, raises ``RuntimeError``. Code that opens or writes through GDAL wraps
the call in ``gdal_errors()`` and turns a failure into an engine error that quotes the collected messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from osgeo import gdal


@contextlib.contextmanager
def gdal_errors(level: int = gdal.CE_Failure) -> Iterator[list[str]]:
    """Collect this thread's GDAL messages of ``level`` and above (one line each) instead of letting them
    reach stderr; ``gdal.CE_Warning`` also keeps warnings (a mosaic reports why GDAL left an input out)."""
    messages: list[str] = []

    def handler(err_class: int, _code: int, message: str) -> None:
        if err_class >= level:
            messages.append(str(message).replace("\n", " ").strip())

    gdal.PushErrorHandler(handler)
    try:
        yield messages
    finally:
        gdal.PopErrorHandler()
