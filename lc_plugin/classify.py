"""Apply an lc-plugin ONNX pixel model to a time stack, block by block.

The model's metadata says which dates and bands it was trained on; a stack that does not give
exactly the same feature columns is refused with a message that lists the differences, because
a model silently fed shifted columns produces a plausible-looking but wrong map.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field

import numpy as np
import rasterio

from .atomic import atomic_output, check_not_input
from .classes import ClassTable
from .deps import require
from .errors import LandCoverError
from .features import describe_layout_difference, feature_block, feature_layout, iter_feature_windows, read_bands_window
from .monitor import ensure_monitor
from .rasters import TAG_CLASSES, TAG_KIND, parse_date, read_stack_info, write_class_raster

SUPPORTED_MODEL_TYPES = ("lightgbm-pixel",)
_REQUIRED_KEYS = ("lc_model_type", "lc_classes", "lc_feature_names", "lc_dates", "lc_bands")
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


def load_model(path: str) -> PixelModel:
    """Open an ONNX model written by the training step; LandCoverError (MODEL) for anything else."""
    ort = require("onnxruntime")
    if not os.path.isfile(path):
        raise LandCoverError(f"The model file {path} does not exist.", "MODEL")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Sleeping (not spinning) idle threads: much faster when other processes share the cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated exception types
        raise LandCoverError(f"{path} is not a readable ONNX model ({exc}).", "MODEL") from exc
    meta = dict(session.get_modelmeta().custom_metadata_map)
    missing = [k for k in _REQUIRED_KEYS if k not in meta]
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
        feature_names = list(json.loads(meta["lc_feature_names"]))
        dates = [parse_date(d) for d in json.loads(meta["lc_dates"])]
        bands = list(json.loads(meta["lc_bands"]))
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


def check_compatible(model: PixelModel, dates: list[dt.date], bands: list[str]) -> None:
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
    probabilities_out: str | None = None,
    block_rows: int = 256,
    monitor=None,
) -> ClassTable:
    """Write the class map (0 where any feature is missing) and optionally per-class probabilities."""
    monitor = ensure_monitor(monitor)
    if block_rows < 1:
        raise LandCoverError(f"The block size must be at least 1 row, got {block_rows}.", "BLOCK_ROWS")
    model = load_model(model_path)
    check_not_input(out_path, [model_path, stack_path], "OUTPUT")
    if probabilities_out:
        check_not_input(probabilities_out, [model_path, stack_path], "OUTPUT_PROBABILITIES")
        if os.path.realpath(probabilities_out) == os.path.realpath(out_path):
            raise LandCoverError("The probabilities and the land-cover map need different file names.", "OUTPUT_PROBABILITIES")
    try:
        dates, bands, grid, _ = read_stack_info(stack_path)
    except LandCoverError as exc:
        raise LandCoverError(str(exc), "INPUT") from exc
    except rasterio.errors.RasterioIOError as exc:
        raise LandCoverError(f"Could not open the time stack {stack_path}: {exc}", "INPUT") from exc
    check_compatible(model, dates, bands)

    n_classes = len(model.classes)
    labels = np.zeros((grid.height, grid.width), dtype=np.uint8)
    tags = {"MODEL": os.path.basename(model_path)}
    with rasterio.open(stack_path) as src, _ProbabilityWriter(probabilities_out, grid, model, tags) as proba_dst:
        done, total = 0, grid.height * grid.width
        for win in iter_feature_windows(grid.height, grid.width, len(model.feature_names), block_rows):
            block = read_bands_window(src, len(dates), bands, model.bands, win)
            feats = feature_block(block, model.bands)
            valid = np.isfinite(feats).all(axis=1)
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
        write_class_raster(out_path, labels, grid, model.classes, tags=tags)
    return model.classes


class _ProbabilityWriter:
    """Optional float32 probability raster written block by block into an atomic temp file."""

    def __init__(self, path: str | None, grid, model: PixelModel, tags: dict[str, str]) -> None:
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

