"""s2cloudless's LightGBM model, run by the fastest engine installed: its trees in numba, in onnxruntime, or
LightGBM itself (the three agree to ~1e-6; numba is bit-identical to LightGBM).

The model file ships with the s2cloudless package; it is loaded once per process (the detectors are
cached per post-processing setting), and its ONNX conversion is cached on disk (``cache_dir``).
"""

from __future__ import annotations

import functools
import hashlib
import os

import numpy as np

from ..core.deps import require
from ..core.errors import InputError, LandCoverError
from .trees import BinnedForest, forest_from_lightgbm, predict_proba
from .trees import available as trees_available

S2CLOUDLESS_BANDS = ["B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12"]
ENGINES = ("auto", "numba", "onnxruntime", "lightgbm")


@functools.lru_cache(maxsize=8)
def cloud_detector(threshold: float = 0.4, average_over: int = 4, dilation_size: int = 2):
    """One s2cloudless detector per parameter set; its LightGBM model loads lazily, once."""
    s2cloudless = require("s2cloudless")
    return s2cloudless.S2PixelCloudDetector(threshold=threshold, average_over=average_over, dilation_size=dilation_size, all_bands=False)


def cache_dir() -> str:
    """Where the converted model is kept between runs (``LC_PLUGIN_CACHE`` or the user cache)."""
    base = os.environ.get("LC_PLUGIN_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "lc-plugin")
    return base


@functools.lru_cache(maxsize=1)
def onnx_cloud_session():
    """s2cloudless's LightGBM model as an onnxruntime session (its trees, unchanged).

    onnxruntime walks the same 170 trees about twice as fast as LightGBM's own predict on the
    same threads. Converting takes ~10 s, so the ONNX file is cached, keyed by the model file's
    hash and the converter version; a damaged cache file is simply rebuilt.
    """
    ort = require("onnxruntime")
    onnxmltools = require("onnxmltools")
    data_types = require("onnxmltools.convert.common.data_types")
    detector = cloud_detector()
    with open(detector.model_filename, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    path = os.path.join(cache_dir(), f"s2cloudless-{digest}-onnxmltools{onnxmltools.__version__}.onnx")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = os.cpu_count() or 1
    # Idle worker threads sleep instead of spinning: on a busy machine (QGIS, other jobs) spinning
    # threads steal the cores the work needs (measured: 2× slower under load), and idle it costs little.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if os.path.isfile(path):
        try:
            return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception:  # a truncated or foreign file: convert again
            pass
    onx = onnxmltools.convert_lightgbm(
        detector.classifier.classifier,
        initial_types=[("bands", data_types.FloatTensorType([None, len(S2CLOUDLESS_BANDS)]))],
        zipmap=False,
        target_opset=15,
    )
    data = onx.SerializeToString()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.partial"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:  # read-only home: keep it in memory only
        pass
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=1)
def binned_cloud_forest() -> BinnedForest:
    """s2cloudless's model file as the node tables of the numba tree kernel (its trees, unchanged)."""
    with open(cloud_detector().model_filename, encoding="utf-8") as f:
        return forest_from_lightgbm(f.read())


def choose_engine(engine: str) -> str:
    engine = (engine or "auto").lower()
    if engine not in ENGINES:
        raise InputError(f"Unknown cloud-model engine '{engine}'; choose one of {', '.join(ENGINES)}.", "engine")
    if engine == "auto":
        if trees_available():
            return "numba"
        try:
            require("onnxruntime")
            require("onnxmltools")
            return "onnxruntime"
        except LandCoverError:
            return "lightgbm"
    return engine


def predict_chunk(pixels: np.ndarray, engine: str) -> np.ndarray:
    """Cloud probability of (n, 10) float32 C-contiguous pixels."""
    if engine == "numba":
        return predict_proba(binned_cloud_forest(), pixels)
    if engine == "onnxruntime":
        session = onnx_cloud_session()
        proba = session.run(["probabilities"], {"bands": pixels})[0]
        return proba[:, 1]
    booster = cloud_detector().classifier.classifier
    return booster.predict(pixels, num_threads=os.cpu_count() or 0)
