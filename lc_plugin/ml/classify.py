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
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import rasterio
from rasterio.windows import Window

from ..core.atomic import atomic_output, check_not_input
from ..core.classes import NODATA_CLASS, ClassTable
from ..core.deps import require
from ..core.errors import LandCoverError
from ..core.monitor import ensure_monitor
from ..io.rasters import TAG_CLASSES, TAG_KIND, parse_date, read_stack_info, tile_starts, write_class_raster
from ..timeseries.cloudcheck import check_cloud_masked, clear_pixels
from ..timeseries.features import describe_layout_difference, feature_block, feature_layout, iter_feature_windows, read_bands_window
from ..timeseries.modalities import coarse_tile_size, coarse_tiles, pixel_size, tile_corners

SUPPORTED_MODEL_TYPES = ("lightgbm-pixel", "segmentation")
_REQUIRED_KEYS = ("lc_model_type", "lc_classes", "lc_dates", "lc_bands")
_TYPE_KEYS = {"lightgbm-pixel": ("lc_feature_names",), "segmentation": ("lc_tile_size", "lc_tile_overlap", "lc_normalisation", "lc_architecture")}
_PROBA_PROFILE = {
    "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 3, "bigtiff": "if_safer",
}


@dataclass
class PixelModel:
    """An ONNX session with the class table and feature layout stored in the model."""

    session: object
    classes: ClassTable
    feature_names: list[str]
    dates: list[dt.date]
    bands: list[str]
    input_name: str = "features"
    label_output: str = "label"
    proba_output: str = "probabilities"
    model_type: str = "lightgbm-pixel"
    path: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, F) float32 → class ids (N,) int64 and probabilities (N, C) float32 in ``classes`` order."""
        label, proba = self.session.run([self.label_output, self.proba_output], {self.input_name: features})
        return np.asarray(label, dtype=np.int64).ravel(), np.asarray(proba, dtype=np.float32)


@dataclass
class SecondInput:
    """A network's second (coarse) input, from its ``lc_second_input`` metadata."""

    name: str
    sensor: str
    dates: list[dt.date]
    bands: list[str]
    tile_size: int
    resolution: float
    primary_resolution: float


@dataclass
class SegmentationModel:
    """An ONNX segmentation network: raw (N, T, C, H, W) values in (and a coarse second input when ``second``
    is set), (N, K, H, W) probabilities out."""

    session: object
    classes: ClassTable
    dates: list[dt.date]
    bands: list[str]
    tile_size: int
    overlap: int
    input_name: str = "input"
    output_name: str = "probabilities"
    model_type: str = "segmentation"
    path: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    feature_names: list[str] = field(default_factory=list)  # none: the network sees the raw bands
    second: SecondInput | None = None

    def predict(self, tiles: np.ndarray, tiles_2: np.ndarray | None = None) -> np.ndarray:
        """(n, T, C, h, w) float32 (+ the second input's (n, T2, C2, h2, w2)) → (n, K, h, w) float32 probabilities
        in ``classes`` order."""
        feeds = {self.input_name: np.ascontiguousarray(tiles, dtype=np.float32)}
        if self.second is not None:
            feeds[self.second.name] = np.ascontiguousarray(tiles_2, dtype=np.float32)
        (proba,) = self.session.run([self.output_name], feeds)
        return np.asarray(proba, dtype=np.float32)


def _session(ort, path: str, providers: list[str], threads: int | None = None):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = int(threads)
    # Sleeping (not spinning) idle threads: much faster when other processes share the cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises several unrelated exception types
        raise LandCoverError(f"{path} is not a readable ONNX model ({exc}).", "MODEL") from exc


def load_model(path: str, *, threads: int | None = None) -> PixelModel | SegmentationModel:
    """Open an ONNX model written by a training step; LandCoverError (MODEL) for anything else.
    ``threads``: onnxruntime's threads per prediction (default: all cores; 1 when the caller
    already predicts several blocks at once)."""
    ort = require("onnxruntime")
    if not os.path.isfile(path):
        raise LandCoverError(f"The model file {path} does not exist.", "MODEL")
    session = _session(ort, path, ["CPUExecutionProvider"], threads)
    meta = dict(session.get_modelmeta().custom_metadata_map)
    missing = [k for k in _REQUIRED_KEYS + _TYPE_KEYS.get(meta.get("lc_model_type", ""), ()) if k not in meta]
    if missing:
        raise LandCoverError(
            f"{path} is an ONNX model but not one trained by lc-plugin (metadata {', '.join(missing)} missing); "
            "use a model written by the Train step.",
            "MODEL",
        )
    if meta["lc_model_type"] not in SUPPORTED_MODEL_TYPES:
        raise LandCoverError(
            f"{path} is an lc-plugin model of type '{meta['lc_model_type']}', which this step cannot apply "
            f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)}).",
            "MODEL",
        )
    try:
        classes = ClassTable.from_json(meta["lc_classes"])
        dates = [parse_date(d) for d in json.loads(meta["lc_dates"])]
        bands = list(json.loads(meta["lc_bands"]))
        if meta["lc_model_type"] == "segmentation":
            return _segmentation_model(ort, session, path, meta, classes, dates, bands)
        feature_names = list(json.loads(meta["lc_feature_names"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise LandCoverError(f"The lc-plugin metadata of {path} is damaged ({exc}).", "MODEL") from exc
    inputs = session.get_inputs()
    outputs = [o.name for o in session.get_outputs()]
    if len(inputs) != 1 or len(outputs) < 2:
        raise LandCoverError(f"{path} does not have one feature input and label/probability outputs.", "MODEL")
    width = inputs[0].shape[-1] if inputs[0].shape else None
    if isinstance(width, int) and width != len(feature_names):
        raise LandCoverError(
            f"{path}: the model input has {width} features but its metadata lists {len(feature_names)}.", "MODEL"
        )
    if feature_layout(dates, bands) != feature_names:
        raise LandCoverError(f"{path}: the stored feature names do not match its dates and bands.", "MODEL")
    label = "label" if "label" in outputs else outputs[0]
    proba = "probabilities" if "probabilities" in outputs else outputs[1]
    return PixelModel(
        session, classes, feature_names, dates, bands, inputs[0].name, label, proba, meta["lc_model_type"], path, meta
    )


def _segmentation_model(ort, session, path: str, meta: dict, classes: ClassTable, dates: list, bands: list[str]) -> SegmentationModel:
    """The network on the GPU when onnxruntime has CUDA (falling back to the CPU), else the CPU."""
    tile_size, overlap = int(meta["lc_tile_size"]), int(meta["lc_tile_overlap"])
    if tile_size < 1 or not 0 <= overlap < tile_size:
        raise ValueError(f"tile size {tile_size} with overlap {overlap}")
    inputs, outputs = session.get_inputs(), session.get_outputs()
    second = _second_input(meta["lc_second_input"]) if "lc_second_input" in meta else None
    n_inputs = 1 if second is None else 2
    if len(inputs) != n_inputs or any(len(i.shape) != 5 for i in inputs) or len(outputs) != 1:
        raise LandCoverError(f"{path} does not have {n_inputs} (N, T, C, H, W) input(s), as its metadata says, and one probability output.", "MODEL")
    t, c = inputs[0].shape[1:3]
    if (isinstance(t, int) and t != len(dates)) or (isinstance(c, int) and c != len(bands)):
        raise LandCoverError(f"{path}: the network input has {t} dates × {c} bands but its metadata lists {len(dates)} × {len(bands)}.", "MODEL")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        session = _session(ort, path, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    return SegmentationModel(session, classes, dates, bands, tile_size, overlap, inputs[0].name, outputs[0].name, path=path, metadata=meta, second=second)


def _second_input(text: str) -> SecondInput:
    info = json.loads(text)
    return SecondInput(
        str(info["name"]), str(info["sensor"]), [parse_date(d) for d in info["dates"]], list(info["bands"]), int(info["tile_size"]),
        float(info["resolution"]), float(info["primary_resolution"]),
    )


def check_compatible(model: PixelModel | SegmentationModel, dates: list[dt.date], bands: list[str]) -> None:
    """Refuse a stack whose dates or bands do not give the model's feature columns (LandCoverError INPUT)."""
    problems = describe_layout_difference(model.dates, model.bands, list(dates), list(bands))
    if problems:
        raise LandCoverError(
            "The time stack does not match the model: " + "; ".join(problems) + ". "
            "Classify a stack with the same dates and bands as the training stacks "
            "(e.g. interpolate it onto the model's date grid).",
            "INPUT",
        )


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
    monitor=None,
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
        raise LandCoverError(f"The block size must be at least 1 row, got {block_rows}.", "BLOCK_ROWS")
    model = load_model(model_path)
    check_not_input(out_path, [model_path, stack_path, second_path], "OUTPUT")
    if probabilities_out:
        check_not_input(probabilities_out, [model_path, stack_path, second_path], "OUTPUT_PROBABILITIES")
        if os.path.realpath(probabilities_out) == os.path.realpath(out_path):
            raise LandCoverError("The probabilities and the land-cover map need different file names.", "OUTPUT_PROBABILITIES")
    try:
        dates, bands, grid, _ = read_stack_info(stack_path)
    except LandCoverError as exc:
        raise LandCoverError(str(exc), "INPUT") from exc
    except rasterio.errors.RasterioIOError as exc:
        raise LandCoverError(f"Could not open the time stack {stack_path}: {exc}", "INPUT") from exc
    check_compatible(model, dates, bands)
    read_second = second_reader(model, second_path, grid)
    n_unmasked = check_cloud_masked([stack_path], [mask_path], allow_unmasked)
    clear = clear_pixels(mask_path, dates, grid) if mask_path else None

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
        if clear is not None:
            labels[~clear] = NODATA_CLASS
            tags["CLOUD_MASK"] = os.path.basename(mask_path)
        elif n_unmasked:
            tags["CLOUD_MASK"] = "none: the stack was never cloud-masked (accepted with ALLOW_UNMASKED)"
        if not labels.any():  # an all-no-data map would pass for a result
            raise LandCoverError(f"{stack_path} has no pixel with data on every date and band: nothing to classify.", "INPUT")
        write_class_raster(out_path, labels, grid, model.classes, tags=tags)
    return model.classes


def second_reader(model: PixelModel | SegmentationModel, second_path: str | None, grid) -> Callable[[int, int], np.ndarray] | None:
    """``read_second(row, col)``: the second stack's tile under the model tile at pixel (row, col) of ``grid``, at the
    second stack's own resolution; None for a one-input model. A missing or mismatched second stack is refused (INPUT_2)."""
    spec = getattr(model, "second", None)
    if spec is None:
        if second_path:
            raise LandCoverError(f"{model.path} takes one input stack; leave the second stack (INPUT_2) empty.", "INPUT_2")
        return None
    wanted = f"{spec.sensor}, {len(spec.dates)} dates × {len(spec.bands)} bands at {spec.resolution:g} m"
    if not second_path:
        raise LandCoverError(f"The model is a two-input network: give its second stack ({wanted}) as INPUT_2.", "INPUT_2")
    try:
        dates, bands, grid_2, _ = read_stack_info(second_path)
    except (LandCoverError, rasterio.errors.RasterioIOError) as exc:
        raise LandCoverError(f"Could not use {second_path} as the second stack: {exc}", "INPUT_2") from exc
    problems = describe_layout_difference(spec.dates, spec.bands, dates, bands, expected_label="the model's second input", actual_label="the second stack")
    if problems:
        raise LandCoverError(f"The second stack does not match the model's second input ({wanted}): " + "; ".join(problems) + ".", "INPUT_2")
    size = coarse_tile_size(model.tile_size, grid, grid_2, "INPUT_2")
    if size != spec.tile_size:
        raise LandCoverError(
            f"The second stack has {pixel_size(grid_2):g} m pixels beside {pixel_size(grid):g} m ones; the model was trained on "
            f"{spec.resolution:g} m beside {spec.primary_resolution:g} m.",
            "INPUT_2",
        )
    with rasterio.open(second_path) as src:
        data = read_bands_window(src, len(dates), bands, spec.bands, Window(0, 0, src.width, src.height))

    def read_second(row: int, col: int) -> np.ndarray:
        return coarse_tiles(data, grid_2, tile_corners(grid, np.array([[row, col]])), size)[0]

    return read_second


def _classify_pixels(model: PixelModel, src, dates, bands, grid, labels: np.ndarray, proba_dst, block_rows: int, monitor, clear=None) -> None:
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
    monitor=None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Blend overlapping tile predictions; yield finished strips ``(row0, labels (h, W), probabilities (K, h, W))``.

    ``read(row, col, h, w)`` gives the stack's (T, C, h, w) values (NaN = no data), ``read_second(row, col)``
    a two-input network's second-input tile under the tile at (row, col) (see ``second_reader``). Only one row of
    tiles is held at a time, so memory does not grow with the raster's height. Labels are class ids,
    0 (and NaN probabilities) where any input value of the pixel is missing, as for pixel models.
    """
    monitor = ensure_monitor(monitor)
    if getattr(model, "second", None) is not None and read_second is None:
        raise LandCoverError("The model is a two-input network and needs its second stack (INPUT_2).", "INPUT_2")
    size = model.tile_size
    overlap = model.overlap if overlap is None else overlap
    if not 0 <= overlap < size:
        raise LandCoverError(f"The tile overlap must be between 0 and {size - 1} pixels, got {overlap}.", "MODEL")
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
        self._ctx = self._dst = None

    def __enter__(self) -> _ProbabilityWriter:
        if self.active:
            self._ctx = atomic_output(self.path)
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

