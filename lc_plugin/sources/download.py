"""Download Sentinel-2 time stacks for grid patches from any source (STAC + COGs, Sentinel Hub).

Why this way: what a long run needs is the same whatever serves the pixels, so it lives here,
once: scenes of a patch are read concurrently (bounded by ``threads``) and written date by date
(``rasters.StackWriter``) into a temporary stack file that is renamed only when complete (cancel and kill leave no
partial output); every scene read is cached on disk, keyed by source, item and window, so a
rerun after a crash costs no network for what was already read; a patch whose stack exists
with the same request recorded in it is skipped (resume). Scenes of one date (two tiles or
orbits) are merged into one frame, least cloudy first; pixels no scene covers stay NaN, so a
scene partly outside the footprint is kept with its data mask (and its coverage recorded).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import rasterio

from ..core.atomic import remove_leftovers
from ..core.errors import DataError, InputError, LandCoverError
from ..core.monitor import Monitor, ensure_monitor
from ..io.cache import SceneCache, window_key
from ..io.http import DEFAULT_POLICY, RetryPolicy
from ..io.rasters import Grid, StackWriter, parse_date, read_stack_info
from ..runs.grid import Patch, read_patches
from ..timeseries.cloud_resolution import overview_factors
from .base import Scene, Source
from .stac import DEFAULT_BANDS, DEFAULT_COLLECTION, DEFAULT_STAC_URL, StacSource
from .stac_assets import gdal_config

SOURCES = ["stac", "sentinelhub"]
DEFAULT_THREADS = 4
TAG_REQUEST = "LC_DOWNLOAD_REQUEST"
CACHE_DIRNAME = ".lc_cache"
# Seconds a cancelled download waits for the reads in flight before it gives up on them.
IN_FLIGHT_GRACE_S = 0.8


@dataclass(frozen=True)
class DownloadResult:
    """What a patch's download wrote: the stack, its dates (ISO), the catalogue items read, and
    whether a complete stack of the same request was found and kept (``skipped``)."""

    path: str
    dates: list[str]
    items: list[str]
    skipped: bool = False


def make_source(
    source: str = "stac",
    *,
    stac_url: str | None = None,
    collection: str | None = None,
    preset: str | None = None,
    endpoint: str | None = None,
    credentials: tuple[str, str] | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    **kwargs: Any,
) -> Source:
    """A source by name: ``stac`` (any URL or a preset) or ``sentinelhub`` (an endpoint preset or URL);
    ``kwargs`` go to that source's class."""
    if source == "stac":
        return (
            StacSource(stac_url or "", collection or "", preset=preset, policy=policy, **kwargs)
            if preset
            else StacSource(stac_url or DEFAULT_STAC_URL, collection or DEFAULT_COLLECTION, policy=policy, **kwargs)
        )
    if source == "sentinelhub":
        from .sentinelhub import SentinelHubSource

        return SentinelHubSource(endpoint or "sentinel-hub", credentials=credentials, policy=policy, **kwargs)
    raise InputError(f"Unknown source {source!r}; choose one of {', '.join(SOURCES)}.", "source")


def _as_date(value: date | str, argument: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return parse_date(str(value))
    except ValueError:
        raise InputError(f"{value!r} is not a date (expected YYYY-MM-DD).", argument) from None


def _check_args(start: date | str, end: date | str, max_cloud: float, bands: Sequence[str]) -> tuple[date, date, list[str]]:
    start, end = _as_date(start, "start"), _as_date(end, "end")
    if start > end:
        raise InputError(f"The start date {start} is after the end date {end}.", "end")
    if not 0 <= max_cloud <= 100:
        raise InputError(f"The maximum cloud cover must be between 0 and 100 %, got {max_cloud}.", "max_cloud")
    bands = list(bands)
    if not bands or len(set(bands)) != len(bands):
        raise InputError(f"Choose at least one band, each once (got {bands}).", "bands")
    return start, end, bands


def request_key(source: Source, grid: Grid, start: date, end: date, max_cloud: float, bands: list[str]) -> str:
    """What a finished stack was asked for; resume skips a stack only when this matches."""
    t = grid.transform
    text = json.dumps(
        [source.signature(), grid.crs.to_wkt(), list(t)[:6], grid.width, grid.height, start.isoformat(), end.isoformat(), float(max_cloud), list(bands)]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def stack_is_complete(path: str, key: str) -> bool:
    """True when ``path`` is a readable stack written for the same request (the last band reads)."""
    if not os.path.isfile(path):
        return False
    try:
        _, _, _, tags = read_stack_info(path)
        if tags.get(TAG_REQUEST) != key:
            return False
        with rasterio.open(path) as src:  # a truncated file fails here
            src.read(src.count, window=((src.height - 1, src.height), (src.width - 1, src.width)))
    except (LandCoverError, rasterio.errors.RasterioError, OSError, ValueError):
        return False
    return True


class _Frame:
    """The merge of one date's scenes, filled least cloudy first."""

    def __init__(self, day: date, scenes: list[Scene]) -> None:
        self.day = day
        self.scenes = sorted(scenes, key=lambda s: (s.cloud, s.id))
        self.used: list[Scene] = []


def _read_frame(
    frame: _Frame,
    source: Source,
    grid: Grid,
    bands: list[str],
    cache: SceneCache | None,
    group: str,
    monitor: Monitor,
) -> np.ndarray:
    """One date's merged frame, read on a worker thread (``monitor``: the workers' own, see ``_download_patch``)."""
    shape = (len(bands), grid.height, grid.width)
    data: np.ndarray | None = None
    for scene in frame.scenes:
        monitor.check()
        if data is not None and not np.isnan(data).any():
            break  # complete: the other tiles of that day add nothing
        key = window_key(source.signature(), scene.id, grid, bands)
        values = cache.get(group, key, shape) if cache is not None else None
        if values is None:
            values = source.read(scene, grid, bands, monitor)
            if cache is not None:
                cache.put(group, key, values)
        if data is None:
            data = values.copy()
        else:
            fill = np.isnan(data) & ~np.isnan(values)
            data[fill] = values[fill]
        frame.used.append(scene)
    assert data is not None
    return data


def download_patch(
    patch: Patch,
    out_path: str,
    *,
    start: date | str,
    end: date | str,
    stac_url: str = DEFAULT_STAC_URL,
    collection: str = DEFAULT_COLLECTION,
    max_cloud: float = 80.0,
    bands: Sequence[str] | None = None,
    source: Source | None = None,
    threads: int = DEFAULT_THREADS,
    cache_dir: str | None = None,
    keep_cache: bool = False,
    resume: bool = False,
    policy: RetryPolicy = DEFAULT_POLICY,
    monitor: Monitor | None = None,
) -> DownloadResult:
    """Write the patch's time stack (reflectance 0-1, classes, NaN = no data); return what was written.

    ``bands`` default ``DEFAULT_BANDS``; ``source`` defaults to a STAC source on ``stac_url``/``collection``. ``cache_dir`` keeps
    every scene read (dropped once the stack is written unless ``keep_cache``); ``resume``
    returns at once when ``out_path`` is a complete stack of the same request.
    """
    monitor = ensure_monitor(monitor)
    start, end, bands = _check_args(start, end, max_cloud, DEFAULT_BANDS if bands is None else bands)
    if threads < 1:
        raise InputError(f"The number of parallel downloads must be at least 1, got {threads}.", "threads")
    own_source = source is None
    source = source or StacSource(stac_url, collection, policy=policy)
    try:
        return _download_patch(patch, out_path, source, start, end, max_cloud, bands, threads, cache_dir, keep_cache, resume, monitor)
    finally:
        if own_source:
            source.close()


def _download_patch(
    patch: Patch,
    out_path: str,
    source: Source,
    start: date,
    end: date,
    max_cloud: float,
    bands: list[str],
    threads: int,
    cache_dir: str | None,
    keep_cache: bool,
    resume: bool,
    monitor: Monitor,
) -> DownloadResult:
    grid = patch.grid
    key = request_key(source, grid, start, end, max_cloud, bands)
    if resume and stack_is_complete(out_path, key):
        dates, _, _, tags = read_stack_info(out_path)
        monitor.info(f"Patch {patch.id}: complete stack found, skipped ({out_path})")
        monitor.update(1.0)
        ids = [i for day in json.loads(tags.get("ITEM_IDS", "[]")) for i in day]
        return DownloadResult(out_path, [d.isoformat() for d in dates], ids, skipped=True)
    remove_leftovers(out_path)
    source.validate_bands(bands)

    scenes = source.search(grid, start, end, max_cloud, monitor.sub(0.0, 0.02))
    if not scenes:
        raise DataError(
            f"No scenes of {source.describe()} over patch {patch.id} between {start} and {end} with cloud cover "
            f"≤ {max_cloud:g} %; widen the date range or raise the maximum cloud cover.",
            "start",
        )
    source.check_bands(scenes, bands)  # a missing band fails before any download
    by_date: dict[date, list[Scene]] = {}
    for scene in scenes:
        by_date.setdefault(scene.date, []).append(scene)
    frames = [_Frame(day, by_date[day]) for day in sorted(by_date)]
    dates = [f.day for f in frames]

    cache = SceneCache(cache_dir) if cache_dir else None
    progress = monitor.sub(0.02, 0.99)
    # Workers only log and check their own monitor, cancelled here when the user cancels or a read
    # fails; progress is reported from this thread, which polls for the user's cancel every 0.2 s.
    workers = Monitor(log=monitor.info)
    coverage: list[float] = [0.0] * len(frames)
    t = len(frames)
    # The stack's deflate compression (at close) uses every core: it is a large part of the time.
    with gdal_config({"GDAL_NUM_THREADS": "ALL_CPUS"}), StackWriter(
        out_path, dates, bands, grid, {TAG_REQUEST: key}, overviews=overview_factors(grid)
    ) as out:
        executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lc-download")
        pending: dict[Future, int] = {}
        try:
            for ti, frame in enumerate(frames):
                fut = executor.submit(_read_frame, frame, source, grid, bands, cache, patch.id, workers)
                pending[fut] = ti
            done = 0
            while pending:
                finished, _ = wait(list(pending), timeout=0.2, return_when=FIRST_COMPLETED)
                monitor.check()
                for fut in finished:
                    ti = pending.pop(fut)
                    data = fut.result()
                    out.write(data[np.newaxis], dates=slice(ti, ti + 1))
                    coverage[ti] = float((~np.isnan(data).all(axis=0)).mean())
                    done += 1
                    read = ", ".join(s.id for s in frames[ti].used)
                    monitor.info(f"Patch {patch.id}: {dates[ti]} ({done}/{t}) {read}, {coverage[ti]:.0%} covered")
                    progress.update(done / t)
        except BaseException:
            # Reads in flight see the cancel before their next band and their results are dropped.
            # Wait for them a little (not a minute for a slow request): a process that exits right
            # after a cancel (qgis_process on SIGINT) can crash if GDAL threads still read.
            workers.cancel()
            executor.shutdown(wait=False, cancel_futures=True)
            wait(list(pending), timeout=IN_FLIGHT_GRACE_S)
            raise
        executor.shutdown(wait=True)
        used = [[s.id for s in f.used] for f in frames]
        tags = {
            **source.tags(),
            "PATCH_ID": patch.id,
            "ITEM_IDS": json.dumps(used),
            "PROCESSING_BASELINE": json.dumps([[s.baseline for s in f.used] for f in frames]),
            "CLOUD_COVER": json.dumps([[s.cloud for s in f.used] for f in frames]),
            "DATA_COVERAGE": json.dumps([round(c, 4) for c in coverage]),
        }
        if not source.merge_by_date:
            tags["ITEM_IDS"] = json.dumps([[i for s in f.used for i in s.item_ids] for f in frames])
        out.set_tags(**tags)
        monitor.check()
    if cache is not None and not keep_cache:
        cache.drop_group(patch.id)
    monitor.update(1.0)
    return DownloadResult(out_path, [d.isoformat() for d in dates], [i for ids in used for i in ids])


def download_patches(
    grid_path: str,
    out_dir: str,
    *,
    patch_ids: list[str] | None = None,
    layer: str | None = None,
    monitor: Monitor | None = None,
    source: Source | None = None,
    resume: bool = True,
    cache_dir: str | None = "",
    **kwargs: Any,
) -> list[str]:
    """Download every (or the chosen) patch of a grid to ``<out_dir>/<patch_id>.tif``.

    Complete stacks of the same request are skipped (``resume``); scene reads are cached in
    ``cache_dir`` (default ``<out_dir>/.lc_cache``; None: no cache). ``kwargs`` go to
    ``download_patch`` (start, end, stac_url, collection, max_cloud, bands, threads, policy).
    """
    monitor = ensure_monitor(monitor)
    patches = read_patches(grid_path, patch_ids, layer=layer)
    if not patches:
        raise InputError(f"The patch grid {grid_path} has no patches.", "grid_path")
    os.makedirs(out_dir, exist_ok=True)
    if cache_dir == "":
        cache_dir = os.path.join(out_dir, CACHE_DIRNAME)
    own_source = source is None
    if source is None:
        source = StacSource(
            str(kwargs.pop("stac_url", DEFAULT_STAC_URL)), str(kwargs.pop("collection", DEFAULT_COLLECTION)), policy=kwargs.get("policy", DEFAULT_POLICY)
        )
    paths = []
    try:
        for i, patch in enumerate(patches):
            path = os.path.join(out_dir, f"{patch.id}.tif")
            monitor.info(f"Patch {patch.id} ({i + 1}/{len(patches)})")
            download_patch(
                patch, path, source=source, resume=resume, cache_dir=cache_dir, monitor=monitor.sub(i / len(patches), (i + 1) / len(patches)), **kwargs
            )
            paths.append(path)
    finally:
        if own_source:
            source.close()
    return paths
