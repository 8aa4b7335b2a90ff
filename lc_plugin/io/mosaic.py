"""Mosaic of classified (or any) patches: a GDAL VRT and, optionally, a Cloud Optimized GeoTIFF.

The VRT is built in memory and its XML written out, so every source is referenced by its
**absolute path** (``relativeToVRT="0"``): the VRT keeps working wherever it is moved on the same
machine, but not if the patches move. Where inputs overlap, the later input in the list wins,
except at its no-data pixels, which let the earlier inputs show through (GDAL's VRT source
order). The first input's colour table, dataset metadata (``LC_CLASSES``, ``LC_KIND`` …) and band
descriptions/metadata are copied to both outputs; for class rasters (``LC_CLASSES``) both also get the
legend (category names and attribute table: in the VRT's XML, in the COG's ``.aux.xml``) and a ``.qml``.

The COG uses DEFLATE, 512-px blocks and overviews resampled with NEAREST for categorical data
(UInt8, e.g. class rasters and cloud masks, or any band with a colour table) and AVERAGE
otherwise.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

from ..core.atomic import atomic_output, check_not_input
from ..core.classes import ClassTable
from ..core.errors import Cancelled, InputError
from ..core.monitor import Monitor, ensure_monitor
from .gdal_errors import gdal_errors
from .legend_files import set_band_legend, write_legend_files
from .rasters import TAG_CLASSES


def _open(path: str):
    from osgeo import gdal

    if not os.path.exists(path):
        raise InputError(f"The input raster {path} does not exist.", "paths")
    try:
        ds = gdal.Open(path)
    except RuntimeError:  # when the host enabled GDAL exceptions
        ds = None
    if ds is None or ds.RasterCount == 0:
        raise InputError(f"The input {path} is not a raster GDAL can read.", "paths")
    return ds


def _signature(ds: Any) -> tuple[Any, int, list[str]]:
    from osgeo import gdal

    bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
    return ds.GetSpatialRef(), ds.RasterCount, [gdal.GetDataTypeName(b.DataType) for b in bands]


def _crs_text(srs) -> str:
    if srs is None:
        return "no CRS"
    code = srs.GetAuthorityCode(None)
    name = srs.GetAuthorityName(None)
    return f"{name}:{code}" if code and name else (srs.GetName() or "an unnamed CRS")


def _check_inputs(sources: list[str], monitor: Monitor) -> tuple[Any, list[str]]:
    """Open every input and make sure they share CRS, band count and data types; returns the first."""
    first = _open(sources[0])
    srs0, count0, types0 = _signature(first)
    pixel0 = first.GetGeoTransform()[1], first.GetGeoTransform()[5]
    for path in sources[1:]:
        ds = _open(path)
        srs, count, types = _signature(ds)
        pixel = ds.GetGeoTransform()[1], ds.GetGeoTransform()[5]
        if any(abs(p - q) > 1e-6 * abs(q) for p, q in zip(pixel, pixel0)):
            monitor.info(
                f"{path} has {abs(pixel[0]):g}×{abs(pixel[1]):g} pixels but {sources[0]} has {abs(pixel0[0]):g}×{abs(pixel0[1]):g}; "
                "GDAL resamples the inputs to their average pixel size."
            )
        if (srs is None) != (srs0 is None) or (srs is not None and not srs.IsSame(srs0)):
            raise InputError(
                f"{path} is in {_crs_text(srs)} but {sources[0]} is in {_crs_text(srs0)}; all inputs of a mosaic must "
                "share one CRS (reproject the odd one with 'Warp (reproject)').",
                "paths",
            )
        if count != count0:
            raise InputError(f"{path} has {count} bands but {sources[0]} has {count0}; all inputs need the same bands.", "paths")
        if types != types0:
            raise InputError(
                f"{path} holds {'/'.join(sorted(set(types)))} data but {sources[0]} holds {'/'.join(sorted(set(types0)))}; "
                "all inputs need the same data type.",
                "paths",
            )
    return first, types0


def _copy_metadata(src, dst) -> None:
    """The first input's dataset metadata, colour table and band descriptions onto the mosaic."""
    meta = src.GetMetadata() or {}
    if meta:
        dst.SetMetadata(meta)
    for i in range(1, src.RasterCount + 1):
        sb, db = src.GetRasterBand(i), dst.GetRasterBand(i)
        if sb.GetDescription():
            db.SetDescription(sb.GetDescription())
        band_meta = sb.GetMetadata() or {}
        if band_meta:
            db.SetMetadata(band_meta)
        table = sb.GetRasterColorTable()
        if table is not None:
            db.SetRasterColorTable(table)
            db.SetRasterColorInterpretation(sb.GetRasterColorInterpretation())


def _class_table(ds) -> ClassTable | None:
    """The class table of a single-band class raster (None for stacks and other rasters)."""
    text = (ds.GetMetadata() or {}).get(TAG_CLASSES)
    return ClassTable.from_json(text) if text and ds.RasterCount == 1 else None


def _progress(monitor: Monitor, state: dict):
    """A GDAL progress callback that forwards to ``monitor`` and returns 0 (stop) on cancel."""

    def callback(complete, message, data):
        try:
            monitor.update(float(complete))
        except Cancelled:
            state["cancelled"] = True
            return 0
        return 1

    return callback


@dataclass(frozen=True)
class MosaicResult:
    """The files written (absolute paths; ``cog`` None when not asked for), their size and input count."""

    vrt: str
    cog: str | None
    width: int
    height: int
    inputs: int


def mosaic_files(paths: list[str], vrt_out: str, cog_out: str | None = None, *, monitor: Monitor | None = None) -> MosaicResult:
    """Mosaic ``paths`` into a VRT (absolute source paths) and optionally a COG; nothing is written if
    an input is unusable or the run is cancelled."""
    from osgeo import gdal

    monitor = ensure_monitor(monitor)
    paths = [os.fspath(p) for p in (paths or []) if p]
    if not paths:
        raise InputError("No input rasters to mosaic; choose at least one raster.", "paths")
    sources = [os.path.abspath(p) for p in paths]
    check_not_input(vrt_out, sources, "vrt_out")
    if cog_out:
        check_not_input(cog_out, sources, "cog_out")
        if os.path.realpath(cog_out) == os.path.realpath(vrt_out):
            raise InputError("The VRT and the COG outputs must be two different files.", "cog_out")
    monitor.update(0.0)

    with gdal_errors(gdal.CE_Warning) as messages:
        first, types = _check_inputs(sources, monitor)
        tables = {(gdal.Open(path).GetMetadata() or {}).get(TAG_CLASSES) for path in sources}
        if len(tables) > 1:
            monitor.info(f"The inputs carry different class tables ({TAG_CLASSES}); the mosaic keeps the one of {sources[0]}.")

        nodata = [first.GetRasterBand(i + 1).GetNoDataValue() for i in range(first.RasterCount)]
        state = {"cancelled": False}
        options = {"callback": _progress(monitor.sub(0.0, 0.05), state)}
        if any(v is not None for v in nodata):
            options["VRTNodata"] = " ".join("None" if v is None else repr(float(v)) for v in nodata)
        try:
            vrt = gdal.BuildVRT("", sources, options=gdal.BuildVRTOptions(**options))
        except RuntimeError as exc:  # when the host enabled GDAL exceptions
            vrt = None
            messages.append(str(exc))
        if state["cancelled"]:
            raise Cancelled("cancelled by the user")
        if vrt is None:
            raise InputError(f"GDAL could not build the mosaic: {'; '.join(messages) or 'unknown error'}", "paths")
        used = {os.path.realpath(p) for p in vrt.GetFileList() or []}
        skipped = [p for p in sources if os.path.realpath(p) not in used]
        if skipped:
            raise InputError(
                f"GDAL left {skipped[0]} out of the mosaic: {'; '.join(messages) or 'incompatible raster'}.", "paths"
            )
        _copy_metadata(first, vrt)
        classes = _class_table(first)
        if classes:
            set_band_legend(vrt.GetRasterBand(1), classes)
        xml = vrt.GetMetadata("xml:VRT")[0]
        for message in messages:
            monitor.info(f"GDAL: {message}")
        messages.clear()
        width, height = vrt.RasterXSize, vrt.RasterYSize

        with contextlib.ExitStack() as stack:
            tmp_vrt = stack.enter_context(atomic_output(vrt_out))
            with open(tmp_vrt, "w", encoding="utf-8") as f:
                f.write(xml)
            if cog_out:
                tmp_cog = stack.enter_context(atomic_output(cog_out))
                palette = first.GetRasterBand(1).GetRasterColorTable() is not None
                _write_cog(vrt, tmp_cog, cog_out, types, palette, monitor.sub(0.05, 1.0), messages)
                with contextlib.suppress(FileNotFoundError):  # GDAL's copy of the legend, under the temporary name
                    os.remove(tmp_cog + ".aux.xml")
        vrt = None
    if classes:
        write_legend_files(vrt_out, classes, pam=False)
        if cog_out:
            write_legend_files(cog_out, classes)
    with contextlib.suppress(Cancelled):  # the outputs are complete; a late cancel does not undo them
        monitor.update(1.0)
    return MosaicResult(os.path.abspath(vrt_out), os.path.abspath(cog_out) if cog_out else None, int(width), int(height), len(sources))


def _write_cog(vrt, path: str, final: str, types: list[str], has_palette: bool, monitor: Monitor, messages: list[str]) -> None:
    """gdal.Translate to COG at the temporary ``path`` (``final`` is the name shown in errors)."""
    from osgeo import gdal

    categorical = has_palette or all(t == "Byte" for t in types)
    options = [
        "COMPRESS=DEFLATE",
        "BLOCKSIZE=512",
        f"OVERVIEW_RESAMPLING={'NEAREST' if categorical else 'AVERAGE'}",
        "BIGTIFF=IF_SAFER",
        "NUM_THREADS=ALL_CPUS",
    ]
    if any(t.startswith("Float") for t in types):
        options.append("PREDICTOR=YES")
    state = {"cancelled": False}
    translate = gdal.TranslateOptions(format="COG", creationOptions=options, callback=_progress(monitor, state))
    try:
        out = gdal.Translate(path, vrt, options=translate)
    except RuntimeError as exc:
        out = None
        messages.append(str(exc))
    if state["cancelled"]:
        out = None
        raise Cancelled("cancelled by the user")
    if out is None:
        raise InputError(f"GDAL could not write the COG {final}: {'; '.join(messages) or 'unknown error'}", "cog_out")
    out.FlushCache()
    out = None  # close before the rename
