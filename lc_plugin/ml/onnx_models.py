"""lc-plugin ONNX models opened for use: a pixel classifier or a segmentation network, with what its metadata says.

A training step writes the class table, the dates and bands, and the feature layout or tile size into the
model's metadata; ``load_model`` reads and checks them, so a file that is not such a model is refused with
a message naming ``model_path``, and ``check_compatible`` refuses a stack that does not fit the model.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.classes import ClassTable
from ..core.deps import require
from ..core.errors import InputError
from ..io.rasters import parse_date
from ..timeseries.features import describe_layout_difference, feature_layout

SUPPORTED_MODEL_TYPES = ("lightgbm-pixel", "segmentation")
_REQUIRED_KEYS = ("lc_model_type", "lc_classes", "lc_dates", "lc_bands")
_TYPE_KEYS = {"lightgbm-pixel": ("lc_feature_names",), "segmentation": ("lc_tile_size", "lc_tile_overlap", "lc_normalisation", "lc_architecture")}

@dataclass
class PixelModel:
    """An ONNX session with the class table and feature layout stored in the model."""

    session: Any
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

    session: Any
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
        raise InputError(f"{path} is not a readable ONNX model ({exc}).", argument="model_path") from exc


def load_model(path: str, *, threads: int | None = None) -> PixelModel | SegmentationModel:
    """Open an ONNX model written by a training step; an error naming ``model_path`` for anything else.
    ``threads``: onnxruntime's threads per prediction (default: all cores; 1 when the caller
    already predicts several blocks at once)."""
    ort = require("onnxruntime")
    if not os.path.isfile(path):
        raise InputError(f"The model file {path} does not exist.", argument="model_path")
    session = _session(ort, path, ["CPUExecutionProvider"], threads)
    meta = dict(session.get_modelmeta().custom_metadata_map)
    missing = [k for k in _REQUIRED_KEYS + _TYPE_KEYS.get(meta.get("lc_model_type", ""), ()) if k not in meta]
    if missing:
        raise InputError(
            f"{path} is an ONNX model but not one trained by lc-plugin (metadata {', '.join(missing)} missing); "
            "use a model written by the Train step.",
            argument="model_path",
        )
    if meta["lc_model_type"] not in SUPPORTED_MODEL_TYPES:
        raise InputError(
            f"{path} is an lc-plugin model of type '{meta['lc_model_type']}', which this step cannot apply "
            f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)}).",
            argument="model_path",
        )
    try:
        classes = ClassTable.from_json(meta["lc_classes"])
        dates = [parse_date(d) for d in json.loads(meta["lc_dates"])]
        bands = list(json.loads(meta["lc_bands"]))
        if meta["lc_model_type"] == "segmentation":
            return _segmentation_model(ort, session, path, meta, classes, dates, bands)
        feature_names = list(json.loads(meta["lc_feature_names"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"The lc-plugin metadata of {path} is damaged ({exc}).", argument="model_path") from exc
    inputs = session.get_inputs()
    outputs = [o.name for o in session.get_outputs()]
    if len(inputs) != 1 or len(outputs) < 2:
        raise InputError(f"{path} does not have one feature input and label/probability outputs.", argument="model_path")
    width = inputs[0].shape[-1] if inputs[0].shape else None
    if isinstance(width, int) and width != len(feature_names):
        raise InputError(
            f"{path}: the model input has {width} features but its metadata lists {len(feature_names)}.", argument="model_path"
        )
    if feature_layout(dates, bands) != feature_names:
        raise InputError(f"{path}: the stored feature names do not match its dates and bands.", argument="model_path")
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
        raise InputError(f"{path} does not have {n_inputs} (N, T, C, H, W) input(s), as its metadata says, and one probability output.", argument="model_path")
    t, c = inputs[0].shape[1:3]
    if (isinstance(t, int) and t != len(dates)) or (isinstance(c, int) and c != len(bands)):
        raise InputError(f"{path}: the network input has {t} dates × {c} bands but its metadata lists {len(dates)} × {len(bands)}.", argument="model_path")
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
    """Refuse a stack whose dates or bands do not give the model's feature columns (an error naming ``stack_path``)."""
    problems = describe_layout_difference(model.dates, model.bands, list(dates), list(bands))
    if problems:
        raise InputError(
            "The time stack does not match the model: " + "; ".join(problems) + ". "
            "Classify a stack with the same dates and bands as the training stacks "
            "(e.g. interpolate it onto the model's date grid).",
            argument="stack_path",
        )
