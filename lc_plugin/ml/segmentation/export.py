"""ONNX export of a trained segmentation network, with the metadata the Classify step checks.

The graph takes raw stack values (N, T, C, H, W) float32 with NaN = no data (normalisation is
inside the graph) and returns class probabilities (N, K, H, W), classes in id order. The
metadata carries the same class table, dates and bands as a LightGBM model's, plus the tile
size, overlap, normalisation and architecture, so one Classify algorithm applies both.
"""

from __future__ import annotations

import io
import json
import warnings

from ... import __version__
from ...core.atomic import atomic_output
from ...core.classes import ClassTable
from ...core.deps import require
from ...core.errors import LandCoverError
from . import MODEL_TYPE
from .training import FitResult, TrainConfig

ONNX_OPSET = 17
INPUT_NAME = "input"
SECOND_INPUT_NAME = "input_2"
OUTPUT_NAME = "probabilities"


def segmentation_metadata(
    fit: FitResult, config: TrainConfig, classes: ClassTable, dates: list, bands: list[str], tile_size: int, overlap: int, extra: dict | None = None
) -> dict[str, str]:
    """The model's ``metadata_props`` (all JSON strings, as the pixel models')."""
    meta = {
        "lc_model_type": MODEL_TYPE,
        "lc_plugin_version": __version__,
        "lc_classes": classes.to_json(),
        "lc_dates": json.dumps([d.isoformat() for d in dates]),
        "lc_bands": json.dumps(list(bands)),
        "lc_input_layout": "N,T,C,H,W",
        "lc_tile_size": str(int(tile_size)),
        "lc_tile_overlap": str(int(overlap)),
        "lc_normalisation": json.dumps({"mean": fit.mean, "std": fit.std, "per": "band", "missing": "0 after normalisation", "in_graph": True}),
        "lc_architecture": json.dumps({"name": config.architecture, "width": config.width, "depth": config.depth}),
        "lc_params": json.dumps(config.to_dict()),
        "lc_history": json.dumps({"epochs": fit.history, "best_epoch": fit.best_epoch, "seconds": fit.seconds, "device": fit.device}),
    }
    meta.update(extra or {})
    return meta


def second_input_metadata(fit: FitResult, sensor: str, dates: list, bands: list[str], tile_size: int, resolution: float, primary_resolution: float) -> str:
    """``lc_second_input``: what the graph's ``input_2`` must be, so Classify can check and cut the second stack."""
    if fit.second_stats is None:  # fit() sets them whenever it trained on a second input
        raise ValueError("the fit has no second input")
    mean, std = fit.second_stats
    return json.dumps({
        "name": SECOND_INPUT_NAME, "sensor": sensor, "dates": [d.isoformat() for d in dates], "bands": list(bands),
        "layout": "N,T,C,H,W", "tile_size": int(tile_size), "resolution": float(resolution), "primary_resolution": float(primary_resolution),
        "fusion": "bottleneck", "normalisation": {"mean": mean, "std": std, "per": "band", "in_graph": True},
    })


def to_onnx_bytes(model, n_dates: int, n_channels: int, tile_size: int, second: tuple[int, int, int] | None = None) -> bytes:
    """Trace ``model`` (eval mode, CPU) into an ONNX graph with dynamic batch, height and width; ``second`` =
    (dates, channels, tile size) of a second input ``input_2``."""
    torch = require("torch")
    model = model.cpu().eval()
    examples: tuple = (torch.zeros(1, n_dates, n_channels, tile_size, tile_size),)
    names = [INPUT_NAME]
    axes = {INPUT_NAME: {0: "batch", 3: "height", 4: "width"}, OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
    if second is not None:
        examples += (torch.zeros(1, second[0], second[1], second[2], second[2]),)
        names.append(SECOND_INPUT_NAME)
        axes[SECOND_INPUT_NAME] = {0: "batch", 3: "height_2", 4: "width_2"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter warns that it is legacy; the dynamo one needs onnxscript, which we do not ship.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model, examples, buf, dynamo=False, opset_version=ONNX_OPSET, input_names=names, output_names=[OUTPUT_NAME], dynamic_axes=axes,
            )
        except Exception as exc:  # exporter failures are not user errors, but say what failed
            raise LandCoverError(f"Could not export the network to ONNX ({type(exc).__name__}: {exc}).") from exc
    return buf.getvalue()


def with_metadata(model_bytes: bytes, metadata: dict[str, str]):
    """ONNX ModelProto of ``model_bytes`` with ``metadata`` set."""
    onnx = require("onnx")
    onx = onnx.load_from_string(model_bytes)
    onnx.helper.set_model_props(onx, metadata)
    onx.doc_string = "lc-plugin segmentation network; see metadata_props for classes, dates, bands, tiles and normalisation."
    return onx


def save_model(onx, path: str) -> None:
    onnx = require("onnx")
    with atomic_output(path) as tmp:
        onnx.save(onx, tmp)
