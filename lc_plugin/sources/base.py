"""The one interface every download source implements: find scenes, read them on a patch grid.

Why: the Download step (resume, cache, concurrency, merging, the output file) is the same
whatever serves the pixels; a source only knows how to list acquisitions over a patch and how
to turn one of them into a (bands, H, W) float32 array on the patch grid with NaN where it
has no data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from ..core.errors import DataError
from ..core.monitor import Monitor
from ..io.rasters import Grid, parse_date


@dataclass
class Scene:
    """One acquisition a source can read: a STAC item, or a Sentinel Hub day over the patch."""

    id: str
    date: date
    cloud: float = 0.0
    baseline: str | None = None
    item_ids: list[str] = field(default_factory=list)  # the catalogue items behind it
    payload: dict = field(default_factory=dict)  # source-specific (the STAC item)

    def __post_init__(self) -> None:
        if not self.item_ids:
            self.item_ids = [self.id]


class Source:
    """Base class of the download sources; see stac.StacSource and sentinelhub.SentinelHubSource."""

    kind = ""
    #: True when several scenes of one date must be merged by the caller (one per tile)
    merge_by_date = True

    def search(self, grid: Grid, start: date, end: date, max_cloud: float, monitor: Monitor) -> list[Scene]:
        raise NotImplementedError

    def validate_bands(self, bands: list[str]) -> None:
        """Raise InputError(argument='bands') for bands the source can never serve (before any request)."""

    def check_bands(self, scenes: list[Scene], bands: list[str]) -> None:
        """Raise InputError(argument='bands') before any download if a band cannot be read."""

    def read(self, scene: Scene, grid: Grid, bands: list[str], monitor: Monitor) -> np.ndarray:
        """(len(bands), H, W) float32 on ``grid``: reflectance 0-1, classes/masks as numbers, NaN = no data.

        Called from worker threads: ``monitor`` only logs and says when to stop (``monitor.check()``
        between requests), because the download calls ``monitor.cancel()`` when one read fails."""
        raise NotImplementedError

    def signature(self) -> str:
        """What identifies the source for the cache and for resume (never a secret)."""
        raise NotImplementedError

    def tags(self) -> dict[str, str]:
        """Metadata written into every stack (never a secret)."""
        return {"SOURCE": self.kind}

    def describe(self) -> str:
        """The source as a user knows it, for messages."""
        return self.kind

    def close(self) -> None:
        """Release sessions and tokens."""


def item_date(item: dict, argument: str = "stac_url") -> date:
    """The item's acquisition date; ``argument`` names what the item came from, for the error."""
    props = item.get("properties") or {}
    text = props.get("datetime") or props.get("start_datetime")
    if not text:
        raise DataError(f"STAC item {item.get('id')} has no datetime.", argument)
    return parse_date(text)


def cloud_cover(item: dict) -> float:
    """The item's eo:cloud_cover, 0 when the catalogue does not say."""
    value = (item.get("properties") or {}).get("eo:cloud_cover")
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
