"""Apply an lc-plugin ONNX model to a time stack: pixel models block by block, segmentation
networks tile by tile.

The model's metadata says which dates and bands it was trained on; a stack that does not give
exactly the same feature columns is refused with a message that lists the differences, because
a model silently fed shifted columns produces a plausible-looking but wrong map.

Segmentation networks see square tiles (the training tile size). Tiles overlap and their class
probabilities are blended with a 2-D taper window (weights falling linearly towards the tile
edges, normalised by the summed weights), so there are no seams where tiles meet: a pixel's
probabilities come mostly from the tiles in which it lies far from the border.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from ..core.atomic import atomic_output, check_not_input
from ..core.classes import NODATA_CLASS, ClassTable
from ..core.errors import DataError, InputError, LandCoverError
from ..core.monitor import Monitor, ensure_monitor
from ..io.rasters import TAG_CLASSES, TAG_KIND, Grid, read_stack_info, tile_starts, write_class_raster
from ..timeseries.cloudcheck import check_cloud_masked, clear_pixels
from ..timeseries.features import describe_layout_difference, feature_block, iter_feature_windows, read_bands_window
from ..timeseries.modalities import coarse_tile_size, coarse_tiles, pixel_size, tile_corners
from .onnx_models import PixelModel, SegmentationModel, check_compatible, load_model

_PROBA_PROFILE = {
    "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 3, "bigtiff": "if_safer",
}


def classify_file(
    model_path: str,
    stack_path: str,
    out_path: str,
    *,
    second_path: str | None = None,
    probabilities_out: str | None = None,
    block_rows: int = 256,
    mask_path: str | None = None,
    allow_unmasked: bool = False,
    monitor: Monitor | None = None,
) -> ClassTable:
    """Write the class map (0 where any feature is missing) and optionally per-class probabilities.

    Pixel models run on blocks of ``block_rows`` rows; segmentation networks on overlapping tiles
    of their training size, blended (``iter_tiled_predictions``); a two-input network also takes the
    second modality's stack ``second_path`` at its own resolution. A stack never cloud-masked is
    refused (``cloudcheck``) unless ``mask_path`` (a cloud mask stack, whose cloudy or no-data
    pixels become no data in the map) or ``allow_unmasked`` is given.
    """
    monitor = ensure_monitor(monitor)
    if block_rows < 1:
        raise InputError(f"The block size must be at least 1 row, got {block_rows}.", argument="block_rows")
    model = load_model(model_path)
    inputs = [p for p in (model_path, stack_path, second_path) if p]
    check_not_input(out_path, inputs, "out_path")
    if probabilities_out:
        check_not_input(probabilities_out, inputs, "probabilities_out")
        if os.path.realpath(probabilities_out) == os.path.realpath(out_path):
            raise InputError("The probabilities and the land-cover map need different file names.", argument="probabilities_out")
    try:
        dates, bands, grid, _ = read_stack_info(stack_path)
    except LandCoverError as exc:
        raise InputError(str(exc), argument="stack_path") from exc
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"Could not open the time stack {stack_path}: {exc}", argument="stack_path") from exc
    check_compatible(model, dates, bands)
    read_second = second_reader(model, second_path, grid)
    n_unmasked = check_cloud_masked([stack_path], [mask_path], allow_unmasked, "stack_path")
    clear = clear_pixels(mask_path, dates, grid, "mask_path") if mask_path else None

    labels = np.zeros((grid.height, grid.width), dtype=np.uint8)
    tags = {"MODEL": os.path.basename(model_path)}
    with rasterio.open(stack_path) as src, _ProbabilityWriter(probabilities_out, grid, model, tags) as proba_dst:
        if isinstance(model, SegmentationModel):
            def read(row: int, col: int, height: int, width: int) -> np.ndarray:
                return read_bands_window(src, len(dates), bands, model.bands, Window(col, row, width, height))

            for row0, strip_labels, strip_proba in iter_tiled_predictions(model, read, grid.height, grid.width, read_second=read_second, monitor=monitor):
                labels[row0:row0 + strip_labels.shape[0]] = strip_labels
                if proba_dst.active:
                    proba_dst.write(strip_proba, Window(0, row0, grid.width, strip_labels.shape[0]))
        else:
            _classify_pixels(model, src, dates, bands, grid, labels, proba_dst, block_rows, monitor, clear)
        if clear is not None and mask_path:
            labels[~clear] = NODATA_CLASS
            tags["CLOUD_MASK"] = os.path.basename(mask_path)
        elif n_unmasked:
            tags["CLOUD_MASK"] = "none: the stack was never cloud-masked (accepted with ALLOW_UNMASKED)"
        if not labels.any():  # an all-no-data map would pass for a result
            raise DataError(f"{stack_path} has no pixel with data on every date and band: nothing to classify.", argument="stack_path")
        write_class_raster(out_path, labels, grid, model.classes, tags=tags)
    return model.classes


def second_reader(model: PixelModel | SegmentationModel, second_path: str | None, grid) -> Callable[[int, int], np.ndarray] | None:
    """``read_second(row, col)``: the second stack's tile under the model tile at pixel (row, col) of ``grid``, at the
    second stack's own resolution; None for a one-input model. A missing or mismatched second stack is refused (``second_path``)."""
    if not isinstance(model, SegmentationModel) or model.second is None:
        if second_path:
            raise InputError(f"{model.path} takes one input stack; leave the second stack empty.", argument="second_path")
        return None
    spec = model.second
    wanted = f"{spec.sensor}, {len(spec.dates)} dates × {len(spec.bands)} bands at {spec.resolution:g} m"
    if not second_path:
        raise InputError(f"The model is a two-input network: give its second stack ({wanted}).", argument="second_path")
    try:
        dates, bands, grid_2, _ = read_stack_info(second_path)
    except (LandCoverError, rasterio.errors.RasterioIOError) as exc:
        raise InputError(f"Could not use {second_path} as the second stack: {exc}", argument="second_path") from exc
    problems = describe_layout_difference(spec.dates, spec.bands, dates, bands, expected_label="the model's second input", actual_label="the second stack")
    if problems:
        raise InputError(f"The second stack does not match the model's second input ({wanted}): " + "; ".join(problems) + ".", argument="second_path")
    size = coarse_tile_size(model.tile_size, grid, grid_2, "second_path")
    if size != spec.tile_size:
        raise InputError(
            f"The second stack has {pixel_size(grid_2):g} m pixels beside {pixel_size(grid):g} m ones; the model was trained on "
            f"{spec.resolution:g} m beside {spec.primary_resolution:g} m.",
            argument="second_path",
        )
    with rasterio.open(second_path) as src:
        data = read_bands_window(src, len(dates), bands, spec.bands, Window(0, 0, src.width, src.height))

    def read_second(row: int, col: int) -> np.ndarray:
        return coarse_tiles(data, grid_2, tile_corners(grid, np.array([[row, col]])), size)[0]

    return read_second


def _classify_pixels(
    model: PixelModel,
    src: Any,
    dates: list[dt.date],
    bands: list[str],
    grid: Grid,
    labels: np.ndarray,
    proba_dst: _ProbabilityWriter,
    block_rows: int,
    monitor: Monitor,
    clear: np.ndarray | None = None,
) -> None:
    """Fill ``labels`` (and the probability raster) block by block with a pixel model; pixels not ``clear`` stay no data."""
    n_classes = len(model.classes)
    done, total = 0, grid.height * grid.width
    for win in iter_feature_windows(grid.height, grid.width, len(model.feature_names), block_rows):
        block = read_bands_window(src, len(dates), bands, model.bands, win)
        feats = feature_block(block, model.bands)
        valid = np.isfinite(feats).all(axis=1)
        if clear is not None:
            rs, cs = win.toslices()
            valid &= clear[rs, cs].ravel()
        block_labels = np.zeros(feats.shape[0], dtype=np.uint8)
        block_proba = np.full((feats.shape[0], n_classes), np.nan, dtype=np.float32) if proba_dst.active else None
        if valid.any():
            pred, proba = model.predict(np.ascontiguousarray(feats[valid]))
            block_labels[valid] = pred.astype(np.uint8)
            if block_proba is not None:
                block_proba[valid] = proba
        labels[win.toslices()] = block_labels.reshape(win.height, win.width)
        if block_proba is not None:
            proba_dst.write(block_proba.T.reshape(n_classes, win.height, win.width), win)
        done += win.height * win.width
        monitor.update(done / total)


def taper_window(size: int, overlap: int) -> np.ndarray:
    """(size, size) blending weights: 1 inside, falling linearly over the ``overlap`` outer pixels (never 0)."""
    edge = np.minimum(np.arange(size), np.arange(size)[::-1]) + 1.0
    ramp = np.minimum(edge / (overlap + 1.0), 1.0).astype(np.float32)
    return np.outer(ramp, ramp)


def iter_tiled_predictions(
    model: SegmentationModel,
    read: Callable[[int, int, int, int], np.ndarray],
    height: int,
    width: int,
    *,
    overlap: int | None = None,
    batch_size: int = 4,
    read_second: Callable[[int, int], np.ndarray] | None = None,
    monitor: Monitor | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Blend overlapping tile predictions; yield finished strips ``(row0, labels (h, W), probabilities (K, h, W))``.

    ``read(row, col, h, w)`` gives the stack's (T, C, h, w) values (NaN = no data), ``read_second(row, col)``
    a two-input network's second-input tile under the tile at (row, col) (see ``second_reader``). Only one row of
    tiles is held at a time, so memory does not grow with the raster's height. Labels are class ids,
    0 (and NaN probabilities) where any input value of the pixel is missing, as for pixel models.
    """
    monitor = ensure_monitor(monitor)
    if getattr(model, "second", None) is not None and read_second is None:
        raise InputError("The model is a two-input network and needs its second stack.", argument="second_path")
    size = model.tile_size
    overlap = model.overlap if overlap is None else overlap
    if not 0 <= overlap < size:
        raise InputError(f"The tile overlap must be between 0 and {size - 1} pixels, got {overlap}.", argument="overlap")
    weights = taper_window(size, overlap)
    ids = np.asarray(model.classes.ids, dtype=np.uint8)
    n_classes, padded_w = len(ids), max(width, size)
    rows, cols = tile_starts(height, size, overlap), tile_starts(width, size, overlap)
    acc = np.zeros((n_classes, size, padded_w), dtype=np.float32)
    wsum = np.zeros((size, padded_w), dtype=np.float32)
    valid = np.zeros((size, padded_w), dtype=bool)
    for i, row in enumerate(rows):
        h = min(size, height - row)
        for start in range(0, len(cols), batch_size):
            batch_cols = cols[start:start + batch_size]
            tiles = []
            for col in batch_cols:
                w = min(size, width - col)
                tile = np.full((len(model.dates), len(model.bands), size, size), np.nan, dtype=np.float32)
                tile[:, :, :h, :w] = read(row, col, h, w)
                valid[:, col:col + size] = np.isfinite(tile).all(axis=(0, 1))
                tiles.append(tile)
            inputs = (np.stack(tiles),) if read_second is None else (np.stack(tiles), np.stack([read_second(row, col) for col in batch_cols]))
            proba = model.predict(*inputs)
            for col, p in zip(batch_cols, proba):
                acc[:, :, col:col + size] += p * weights
                wsum[:, col:col + size] += weights
        done = rows[i + 1] - row if i + 1 < len(rows) else h  # rows no later tile touches
        strip = acc[:, :done, :width] / wsum[:done, :width]
        keep = valid[:done, :width]
        strip[:, ~keep] = np.nan
        labels = np.where(keep, ids[np.argmax(np.nan_to_num(strip, nan=-1.0), axis=0)], 0).astype(np.uint8)
        yield row, labels, strip
        for buffer in (acc, wsum, valid):  # shift the unfinished rows up, clear the rest
            buffer[..., : size - done, :] = buffer[..., done:, :]
            buffer[..., size - done:, :] = 0
        monitor.update((i + 1) / len(rows))


def predict_array(
    model: SegmentationModel, data: np.ndarray, *, overlap: int | None = None, read_second: Callable[[int, int], np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels (H, W) and probabilities (K, H, W) of a whole (T, C, H, W) array, tiled as for a file."""
    _, _, height, width = data.shape
    labels = np.zeros((height, width), dtype=np.uint8)
    proba = np.empty((len(model.classes), height, width), dtype=np.float32)
    def read(row: int, col: int, h: int, w: int) -> np.ndarray:
        return data[:, :, row:row + h, col:col + w]

    for row0, strip_labels, strip_proba in iter_tiled_predictions(model, read, height, width, overlap=overlap, read_second=read_second):
        labels[row0:row0 + strip_labels.shape[0]] = strip_labels
        proba[:, row0:row0 + strip_labels.shape[0]] = strip_proba
    return labels, proba


class _ProbabilityWriter:
    """Optional float32 probability raster written block by block into an atomic temp file."""

    def __init__(self, path: str | None, grid, model: PixelModel | SegmentationModel, tags: dict[str, str]) -> None:
        self.path, self.grid, self.model, self.tags = path, grid, model, tags
        self.active = bool(path)
        self._ctx: Any = None
        self._dst: Any = None

    def __enter__(self) -> _ProbabilityWriter:
        if self.active:
            self._ctx = atomic_output(str(self.path))
            tmp = self._ctx.__enter__()
            profile = dict(
                driver="GTiff", width=self.grid.width, height=self.grid.height, count=len(self.model.classes),
                dtype="float32", crs=self.grid.crs, transform=self.grid.transform, nodata=float("nan"), **_PROBA_PROFILE,
            )
            self._dst = rasterio.open(tmp, "w", **profile)
            self._dst.update_tags(**self.tags, **{TAG_CLASSES: self.model.classes.to_json(), TAG_KIND: "probabilities"})
            for i, c in enumerate(self.model.classes, start=1):
                self._dst.set_band_description(i, c.name)
                self._dst.update_tags(i, CLASS_ID=str(c.id))
        return self

    def write(self, data: np.ndarray, window) -> None:
        self._dst.write(data, window=window)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self.active:
            return False
        self._dst.close()
        return bool(self._ctx.__exit__(exc_type, exc, tb))

