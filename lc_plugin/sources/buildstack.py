"""Build a time stack from rasters made elsewhere (SCP, FORCE, sen2r, Earth Engine exports, per-band files).

Why: the chain only needs a time stack (dates × named bands on one grid, float reflectance, NaN = no
data); where the pixels came from does not matter. Each input file is one date with one or more
bands; the date comes from the user's list, a pattern on the file name, the file's metadata or a
date in its name; band names from the user's list, the file's band descriptions or a band name in a
single-band file's name. Files of one date (per-band files, several tiles) are merged; everything is
warped onto one grid (the first file's, or a given raster's): bilinear for reflectance, nearest for
classes (SCL).

Values: integer reflectance (FORCE, sen2r, Earth Engine's S2 collections, ESA DN) is scaled by
0.0001 unless the file states its own scale/offset (GDAL metadata) or the user gives one; float
files are taken as reflectance already.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject

from ..core.atomic import check_not_input
from ..core.bands import CATEGORICAL_BANDS
from ..core.errors import InputError
from ..core.monitor import Monitor, ensure_monitor
from ..io.rasters import Grid, StackWriter
from ..timeseries.cloud_resolution import overview_factors

INTEGER_REFLECTANCE_SCALE = 0.0001
_DATE_IN_NAME = r"(?<!\d)(\d{4}-?\d{2}-?\d{2})(?!\d)"
_BAND_IN_NAME = re.compile(r"(?i)(?<![a-z0-9])(B(?:0?[1-9]|1[0-2]|8A)|SCL)(?![a-z0-9])")
_DATED_DESCRIPTION = re.compile(r"^(\d{4}-\d{2}-\d{2})[ _]+([^\s,]+)$")
# Dataset tags other tools write for the acquisition (never TIFFTAG_DATETIME: that is when the file was written).
_DATE_TAGS = ("DATE", "ACQUISITION_DATE", "DATE_ACQUIRED", "SENSING_DATE", "SENSING_TIME", "DATATAKE_SENSING_START", "system:time_start")


@dataclass
class Layer:
    """One raster band of one input file: which date and band it is."""

    path: str
    index: int  # 1-based band of the file
    date: date
    band: str


@dataclass(frozen=True)
class BuildStackResult:
    """The stack written, its dates (ISO) and its band names, in file order."""

    path: str
    dates: list[str]
    bands: list[str]


def parse_date_text(text: str, argument: str) -> date:
    """YYYY-MM-DD, YYYYMMDD, YYYY_MM_DD or YYYYDDD (day of year)."""
    digits = re.sub(r"\D", "", text)
    try:
        if len(digits) == 8:
            return datetime.strptime(digits, "%Y%m%d").date()
        if len(digits) == 7:
            return date(int(digits[:4]), 1, 1) + timedelta(days=int(digits[4:]) - 1)
    except ValueError:
        pass
    raise InputError(f"{text!r} is not a date (expected YYYY-MM-DD, YYYYMMDD or YYYYDDD).", argument)


def _date_from_name(path: str, pattern: str, argument: str) -> date | None:
    try:
        match = re.search(pattern, os.path.basename(path))
    except re.error as exc:
        raise InputError(f"{pattern!r} is not a regular expression ({exc}).", "date_pattern") from None
    if not match:
        return None
    return parse_date_text(match.group("date") if "date" in match.groupdict() else match.group(1 if match.groups() else 0), argument)


def _date_from_tags(tags: dict[str, str]) -> date | None:
    for key in _DATE_TAGS:
        value = tags.get(key)
        if not value:
            continue
        if key == "system:time_start" and value.strip().isdigit():  # Earth Engine: milliseconds since 1970
            return date(1970, 1, 1) + timedelta(milliseconds=int(value))
        try:
            return parse_date_text(value[:10], "inputs")
        except InputError:
            continue
    return None


def _file_layers(path: str, given_date: date | None, pattern: str | None, bands: list[str] | None) -> list[Layer]:
    try:
        with rasterio.open(path) as src:
            count, tags, descriptions = src.count, src.tags(), list(src.descriptions)
    except (rasterio.errors.RasterioError, OSError) as exc:
        raise InputError(f"{path} is not a raster GDAL can read ({exc}).", "inputs") from None
    dated = [m for m in (_DATED_DESCRIPTION.match(d or "") for d in descriptions) if m]
    if given_date is None and pattern is None and bands is None and len(dated) == count:  # a time stack already
        return [Layer(path, i + 1, parse_date_text(m.group(1), "inputs"), m.group(2)) for i, m in enumerate(dated)]
    day = given_date or (_date_from_name(path, pattern, "date_pattern") if pattern else None)
    if day is None and pattern:
        raise InputError(f"The date pattern {pattern!r} finds no date in {os.path.basename(path)}.", "date_pattern")
    day = day or _date_from_tags(tags) or _date_from_name(path, _DATE_IN_NAME, "inputs")
    if day is None:
        raise InputError(
            f"No date for {os.path.basename(path)}: its name and metadata hold none; give {{argument}} (one per file) or a date pattern.", "dates"
        )
    if bands is not None:
        if len(bands) != count:
            raise InputError(f"{os.path.basename(path)} has {count} band(s) but {{argument}} names {len(bands)} ({', '.join(bands)}).", "bands")
        return [Layer(path, i + 1, day, b) for i, b in enumerate(bands)]
    names = [_band_name(d or "", path, count) for d in descriptions]
    missing = [i + 1 for i, n in enumerate(names) if n is None]
    if missing:
        raise InputError(
            f"{os.path.basename(path)}: no band name for raster band(s) {missing} (no description, no band in the file name); "
            "give {argument}, e.g. B02,B03,B04,B08 for a four-band file.",
            "bands",
        )
    return [Layer(path, i + 1, day, n) for i, n in enumerate(names) if n is not None]


def _band_name(description: str, path: str, count: int) -> str | None:
    """A band name from a description (``B04``, ``SCL``, ``2023-08-13 B04``) or, for a single-band file, from its name."""
    text = description.strip()
    match = _DATED_DESCRIPTION.match(text)
    text = match.group(2) if match else text
    if text and _BAND_IN_NAME.fullmatch(text):
        return _normal_band(text)
    if count == 1:
        found = _BAND_IN_NAME.findall(os.path.splitext(os.path.basename(path))[0])
        if found:
            return _normal_band(found[-1])
    return None


def _normal_band(text: str) -> str:
    """``b4`` → ``B04``, ``B8a`` → ``B8A``, ``scl`` → ``SCL``."""
    text = text.upper()
    return f"B{int(text[1:]):02d}" if text[1:].isdigit() else text


def _scale_offset(src: rasterio.io.DatasetReader, index: int, scale: float | None, offset: float) -> tuple[float, float]:
    if scale is not None:
        return scale, offset
    file_scale, file_offset = src.scales[index - 1], src.offsets[index - 1]
    if (file_scale, file_offset) != (1.0, 0.0):
        return file_scale, file_offset
    return (INTEGER_REFLECTANCE_SCALE if np.dtype(src.dtypes[index - 1]).kind in "iu" else 1.0), 0.0


def _warp(layer: Layer, grid: Grid, scale: float | None, offset: float) -> np.ndarray:
    """One input band on ``grid`` as float32, scaled to reflectance (classes as they are), NaN = no data."""
    out = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    categorical = layer.band in CATEGORICAL_BANDS
    with rasterio.open(layer.path) as src:
        reproject(
            rasterio.band(src, layer.index),
            out,
            src_nodata=src.nodatavals[layer.index - 1],
            dst_transform=grid.transform,
            dst_crs=grid.crs,
            dst_nodata=np.nan,
            resampling=Resampling.nearest if categorical else Resampling.bilinear,
        )
        if not categorical:
            a, b = _scale_offset(src, layer.index, scale, offset)
            out = out * np.float32(a) + np.float32(b)
    return out


def _check_paths(inputs: list[str], out_path: str) -> None:
    if not inputs:
        raise InputError("Choose at least one raster.", "inputs")
    for path in inputs:
        if not os.path.isfile(path) and not path.startswith("/vsi"):
            raise InputError(f"{path} is not a file.", "inputs")
    check_not_input(out_path, inputs, "out_path")


def collect_layers(inputs: list[str], *, dates: list[str] | None = None, date_pattern: str | None = None, bands: list[str] | None = None) -> list[Layer]:
    """Every input band with its date and band name (see the module docstring for where they come from)."""
    if dates and len(dates) != len(inputs):
        raise InputError(f"{{argument}} gives {len(dates)} date(s) for {len(inputs)} file(s); give one per file, in the same order.", "dates")
    given: list[date | None] = [parse_date_text(d, "dates") for d in dates] if dates else [None] * len(inputs)
    layers = [layer for path, day in zip(inputs, given) for layer in _file_layers(path, day, date_pattern or None, bands or None)]
    by_date: dict[date, set[str]] = {}
    for layer in layers:
        by_date.setdefault(layer.date, set()).add(layer.band)
    names = sorted(set().union(*by_date.values()), key=[layer.band for layer in layers].index)
    for day, present in sorted(by_date.items()):
        if present != set(names):
            raise InputError(
                f"{day} has bands {', '.join(sorted(present))} but other dates have {', '.join(names)}; every date needs the same bands.", "inputs"
            )
    return layers


def build_stack(
    inputs: list[str],
    out_path: str,
    *,
    dates: list[str] | None = None,
    date_pattern: str | None = None,
    bands: list[str] | None = None,
    grid: Grid | None = None,
    scale: float | None = None,
    offset: float = 0.0,
    monitor: Monitor | None = None,
) -> BuildStackResult:
    """Write one time stack from ``inputs`` on ``grid`` (default: the first file's); return its dates and bands.

    ``scale``/``offset``: reflectance = value × scale + offset for every non-class band; without ``scale``,
    the file's own scale/offset, else 0.0001 for integer files and 1 for float ones (``offset`` unused).
    """
    monitor = ensure_monitor(monitor)
    _check_paths(inputs, out_path)
    layers = collect_layers(inputs, dates=dates, date_pattern=date_pattern, bands=bands)
    grid = grid or Grid.of(inputs[0])
    days = sorted({layer.date for layer in layers})
    names = list(dict.fromkeys(layer.band for layer in layers))
    files = [sorted({os.path.basename(la.path) for la in layers if la.date == day}) for day in days]
    tags = {"SOURCE": "buildstack", "ITEM_IDS": json.dumps(files)}
    monitor.info(f"{len(inputs)} files → {len(days)} dates × {len(names)} bands ({', '.join(names)}) on {grid.width} × {grid.height} px")
    with StackWriter(out_path, days, names, grid, tags, overviews=overview_factors(grid)) as out:
        for ti, day in enumerate(days):
            frame = np.full((1, len(names), grid.height, grid.width), np.nan, dtype=np.float32)
            for layer in (la for la in layers if la.date == day):
                values = _warp(layer, grid, scale, offset)
                target = frame[0, names.index(layer.band)]
                fill = np.isnan(target) & ~np.isnan(values)
                target[fill] = values[fill]
            out.write(frame, dates=slice(ti, ti + 1))
            monitor.update((ti + 1) / len(days))
    return BuildStackResult(out_path, [d.isoformat() for d in days], names)
