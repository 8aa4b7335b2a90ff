"""Training of a segmentation network on image tiles, as the Hugin framework did it.

Adam on a categorical cross-entropy that ignores unlabelled pixels (class 0) and pixels without
data, optional inverse-frequency class weights for unbalanced classes, reduce-LR-on-plateau and
early stopping on the validation loss, and the best epoch's weights kept (the checkpoint). A fixed
seed makes two runs on the CPU identical. Tiles come as arrays (or anything indexable the same
way, e.g. the zarr arrays of a tile store), so the core does not care where they were cut.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ...core.classes import ClassTable
from ...core.deps import require
from ...core.errors import DataError, DependencyError, InputError, LandCoverError
from ...core.monitor import Monitor, ensure_monitor
from ...validation.metrics import accuracy_metrics, confusion_matrix
from . import ARCHITECTURES, MULTIMODAL_ARCHITECTURES

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Everything that defines a run; saved with the model and loadable from a JSON/YAML file."""

    architecture: str = "tfcn"
    width: int = 16  # channels of the first level, doubled at each deeper level
    depth: int = 3  # levels of the encoder (depth - 1 poolings)
    epochs: int = 50
    batch_size: int = 8
    learning_rate: float = 1e-3
    patience: int = 10  # epochs without a better validation loss before stopping
    lr_patience: int = 3  # epochs without improvement before the learning rate is multiplied by lr_factor
    lr_factor: float = 0.5
    test_fold: int = 0
    validation_fold: int = -1  # -1: the fold after the test fold
    class_weights: bool = False
    seed: int = 42
    device: str = "auto"

    def validate(self) -> None:
        """InputError naming the first bad field (the Processing algorithm maps fields to its parameters)."""
        if self.architecture not in ARCHITECTURES:
            raise InputError(f"Unknown architecture '{self.architecture}'; use one of {', '.join(ARCHITECTURES)}.", argument="architecture")
        if self.device not in DEVICES:
            raise InputError(f"Unknown device '{self.device}'; use one of {', '.join(DEVICES)}.", argument="device")
        for name, low in (("epochs", 1), ("batch_size", 1), ("patience", 1), ("width", 1), ("depth", 1), ("lr_patience", 0)):
            if getattr(self, name) < low:
                raise InputError(f"{name} must be at least {low}, got {getattr(self, name)}.", argument=name)
        if not self.learning_rate > 0:
            raise InputError(f"The learning rate must be above 0, got {self.learning_rate}.", argument="learning_rate")
        if not 0 < self.lr_factor < 1:
            raise InputError(f"lr_factor must be between 0 and 1, got {self.lr_factor}.", argument="lr_factor")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, base: TrainConfig | None = None) -> TrainConfig:
        """``base`` (default: the defaults) with ``values`` applied; unknown keys are an error, types are coerced."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InputError(f"Unknown training setting(s) {', '.join(unknown)}; known: {', '.join(known)}.", argument="config")
        merged = (base or cls()).to_dict()
        for key, value in values.items():
            kind = type(merged[key])
            try:
                merged[key] = kind(value) if kind is not bool else _as_bool(value)
            except (TypeError, ValueError) as exc:
                raise InputError(f"Training setting {key}: expected {kind.__name__}, got {value!r}.", argument="config") from exc
        return cls(**merged)


def _as_bool(value: object) -> bool:
    if isinstance(value, str):
        if value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if value.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    return bool(value)


def load_config(path: str, base: TrainConfig | None = None) -> TrainConfig:
    """Read a run's settings from JSON, or YAML (.yaml/.yml) when PyYAML is installed."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise InputError(f"Could not read the training configuration {path}: {exc}", argument="config") from exc
    try:
        if path.lower().endswith((".yaml", ".yml")):
            values = require("yaml").safe_load(text)
        else:
            values = json.loads(text)
    except LandCoverError as exc:
        raise DependencyError(f"{exc} (or write the configuration as JSON)", argument="config") from exc
    except Exception as exc:  # json and yaml raise their own error types
        raise InputError(f"{path} is not valid {'YAML' if path.lower().endswith(('.yaml', '.yml')) else 'JSON'}: {exc}", argument="config") from exc
    if not isinstance(values, dict):
        raise InputError(f"{path} must hold a mapping of setting → value.", argument="config")
    return TrainConfig.from_dict(values, base)


def save_config(config: TrainConfig, path: str) -> None:
    """Write a run's settings as JSON, or YAML for a .yaml/.yml path."""
    from ...core.atomic import atomic_output

    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        if path.lower().endswith((".yaml", ".yml")):
            require("yaml").safe_dump(config.to_dict(), f, sort_keys=False)
        else:
            json.dump(config.to_dict(), f, indent=2)


@dataclass
class FitResult:
    """The trained network (best epoch's weights, eval mode) and what the report needs."""

    model: object
    history: list[dict]
    best_epoch: int
    mean: list[float]
    std: list[float]
    class_ids: list[int]
    train_counts: dict[int, int]
    seconds: float
    device: str
    second_stats: tuple[list[float], list[float]] | None = None  # mean and std of the second input's channels


def take(array: Any, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` (sorted) of a numpy or zarr array as a numpy array."""
    idx = np.asarray(idx, dtype=np.int64)
    if hasattr(array, "oindex"):
        return np.asarray(array.oindex[idx])
    return np.asarray(array[idx])


def channel_stats(x: Any, idx: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per channel C over the finite values of tiles ``idx`` (std 1 where constant)."""
    n_ch = x.shape[2]
    total, sq, count = np.zeros(n_ch), np.zeros(n_ch), np.zeros(n_ch)
    for start in range(0, len(idx), chunk):
        block = take(x, idx[start:start + chunk]).astype(np.float64)
        finite = np.isfinite(block)
        values = np.where(finite, block, 0.0)
        total += values.sum(axis=(0, 1, 3, 4))
        sq += (values**2).sum(axis=(0, 1, 3, 4))
        count += finite.sum(axis=(0, 1, 3, 4))
    mean = np.divide(total, count, out=np.zeros(n_ch), where=count > 0)
    var = np.divide(sq, count, out=np.zeros(n_ch), where=count > 0) - mean**2
    std = np.sqrt(np.maximum(var, 0.0))
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def targets(x_block: np.ndarray, y_block: np.ndarray, class_ids: list[int], valid_block: np.ndarray | None = None) -> np.ndarray:
    """(n, H, W) int64 class indices 0..K-1; -1 (ignored by the loss) where unlabelled, not a kept class,
    marked invalid, or where any input value is missing (as the pixel classifier leaves those out)."""
    lut = np.full(256, -1, dtype=np.int64)
    lut[np.asarray(class_ids, dtype=np.int64)] = np.arange(len(class_ids))
    t = lut[np.asarray(y_block, dtype=np.uint8)]
    usable = np.isfinite(x_block).all(axis=(1, 2))
    if valid_block is not None:
        usable &= np.asarray(valid_block, dtype=bool)
    t[~usable] = -1
    return t


def class_weight_vector(counts: np.ndarray) -> np.ndarray:
    """Inverse-frequency weights N / (K · n_k), 0 for absent classes: each class weighs the same in total."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


def pick_device(name: str) -> str:
    """The torch device to train on: ``auto`` is the GPU when PyTorch sees one, else the CPU."""
    torch = require("torch")
    if name == "cuda" and not torch.cuda.is_available():
        raise DependencyError("The device is 'cuda' but PyTorch sees no CUDA GPU (or is a CPU build); use 'auto' or 'cpu'.", argument="device")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def split_folds(folds: np.ndarray, config: TrainConfig, n_folds: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test tile indices: the test fold, the validation fold (default the next one), the rest."""
    folds = np.asarray(folds)
    if n_folds is None:
        n_folds = int(folds.max()) + 1 if folds.size else 0
    if not 0 <= config.test_fold < n_folds:
        raise InputError(f"The test fold must be between 0 and {n_folds - 1} (the data set has {n_folds} folds), got {config.test_fold}.", argument="test_fold")
    val_fold = config.validation_fold if config.validation_fold >= 0 else (config.test_fold + 1) % n_folds
    if n_folds < 3 or val_fold == config.test_fold:
        val_fold = -1  # too few folds: early stopping and LR reduction follow the training loss
    test = np.flatnonzero(folds == config.test_fold)
    val = np.flatnonzero(folds == val_fold)
    train = np.flatnonzero((folds != config.test_fold) & (folds != val_fold))
    if train.size == 0:
        raise DataError("No training tiles are left after holding out the test (and validation) fold.", argument="test_fold")
    return train, val, test


def fit(
    x: Any,
    y: Any,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    classes: ClassTable,
    config: TrainConfig,
    *,
    valid: Any = None,
    x2: Any = None,
    monitor: Monitor | None = None,
) -> FitResult:
    """Train ``config.architecture`` on tiles ``x`` (N, T, C, H, W) float32 NaN = no data, ``y`` (N, H, W) class ids;
    ``x2`` (N, T2, C2, h, w): the same tiles of a coarse second modality (fused at the bottleneck)."""
    torch = require("torch")
    monitor = ensure_monitor(monitor)
    config.validate()
    _check_pooling(x.shape[3], x.shape[4], config)
    train_idx, val_idx = np.sort(np.asarray(train_idx, dtype=np.int64)), np.sort(np.asarray(val_idx, dtype=np.int64))
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    tiles = _Batches(x, y, valid, x2, classes.ids, device)
    counts = tiles.class_counts(train_idx)
    if (counts > 0).sum() < 2:
        raise DataError("The training tiles have fewer than 2 classes with labelled, valid pixels.", argument="dataset_path")
    model, mean, std, second = _build_network(tiles, train_idx, config)
    model = model.to(device)
    weight = torch.as_tensor(class_weight_vector(counts), device=device) if config.class_weights else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight, ignore_index=-1, reduction="sum")
    started = time.perf_counter()
    history, best_epoch, best_state = _train_epochs(model, loss_fn, tiles, train_idx, val_idx, config, rng, monitor)
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        model.cpu(), history, best_epoch, mean.tolist(), std.tolist(), classes.ids,
        {cid: int(c) for cid, c in zip(classes.ids, counts)}, time.perf_counter() - started, device,
        None if second is None else (second[2].tolist(), second[3].tolist()),
    )


def _check_pooling(height: int, width: int, config: TrainConfig) -> None:
    from .models import downsampling

    factor = downsampling(config.depth)
    if height % factor or width % factor:
        raise InputError(
            f"Tiles of {height}×{width} px cannot be pooled {config.depth - 1} times; use a tile size that is a multiple of {factor} "
            "or a smaller depth.",
            argument="depth",
        )


def _build_network(tiles: _Batches, train_idx: np.ndarray, config: TrainConfig) -> tuple[Any, np.ndarray, np.ndarray, tuple | None]:
    """The network with its input normalisation (per-channel mean and std of the training tiles, of both inputs)."""
    from .models import build_model

    mean, std = channel_stats(tiles.x, train_idx)
    second = None
    if tiles.x2 is not None:
        if config.architecture not in MULTIMODAL_ARCHITECTURES:
            raise InputError(
                f"The {config.architecture} network takes one input; with a second modality use one of {', '.join(MULTIMODAL_ARCHITECTURES)}.",
                argument="architecture",
            )
        mean_2, std_2 = channel_stats(tiles.x2, train_idx)
        second = (tiles.x2.shape[1], tiles.x2.shape[2], mean_2, std_2)
    n_dates, n_channels = tiles.x.shape[1], tiles.x.shape[2]
    model = build_model(
        config.architecture, n_dates, n_channels, len(tiles.class_ids), width=config.width, depth=config.depth, mean=mean, std=std, second=second
    )
    return model, mean, std, second


@dataclass
class _Batches:
    """The tiles a network trains on, served as tensors on ``device`` in batches of sorted indices."""

    x: Any
    y: Any
    valid: Any
    x2: Any
    class_ids: list[int]
    device: str

    def targets(self, idx: np.ndarray, xb: np.ndarray | None = None) -> np.ndarray:
        xb = take(self.x, idx) if xb is None else xb
        return targets(xb, take(self.y, idx), self.class_ids, None if self.valid is None else take(self.valid, idx))

    def class_counts(self, idx: np.ndarray, chunk: int = 64) -> np.ndarray:
        """Usable pixels of each class in tiles ``idx``."""
        counts = np.zeros(len(self.class_ids), dtype=np.int64)
        for start in range(0, len(idx), chunk):
            t = self.targets(idx[start:start + chunk])
            counts += np.bincount(t[t >= 0], minlength=len(self.class_ids))
        return counts

    def batch(self, idx: np.ndarray) -> tuple[tuple, Any]:
        """(inputs, targets): inputs is (x,) or (x, x2), as the network's forward takes them."""
        torch = require("torch")

        def tensor(array: np.ndarray) -> Any:
            return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)

        xb = take(self.x, idx)
        tb = self.targets(idx, xb)
        inputs = (tensor(xb),) if self.x2 is None else (tensor(xb), tensor(take(self.x2, idx)))
        return inputs, torch.from_numpy(tb).to(self.device)

    def evaluate(self, model: Any, loss_fn: Any, idx: np.ndarray, batch_size: int) -> tuple[float, float]:
        """Mean loss per labelled pixel and MIoU of tiles ``idx`` (eval mode)."""
        torch = require("torch")
        k = len(self.class_ids)
        model.eval()
        loss_sum, n_pix = 0.0, 0
        cm = np.zeros((k, k), dtype=np.int64)
        with torch.no_grad():
            for start in range(0, len(idx), batch_size):
                xb, tb = self.batch(idx[start:start + batch_size])
                logits = model.logits(*xb)
                loss_sum += float(loss_fn(logits, tb))
                n_pix += int((tb >= 0).sum())
                pred = logits.argmax(dim=1).cpu().numpy()
                cm += confusion_matrix(tb.cpu().numpy(), pred, list(range(k)))
        miou = accuracy_metrics(cm, list(range(k)))["miou"] if cm.sum() else 0.0
        return loss_sum / max(n_pix, 1), miou


def _train_epochs(
    model: Any, loss_fn: Any, tiles: _Batches, train_idx: np.ndarray, val_idx: np.ndarray, config: TrainConfig, rng: np.random.Generator, monitor: Monitor
) -> tuple[list[dict], int, Any]:
    """Adam with reduce-LR-on-plateau and early stopping on the validation loss (the training loss without a
    validation fold); returns the history, the best epoch and its weights."""
    torch = require("torch")
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=config.lr_factor, patience=config.lr_patience)
    history: list[dict] = []
    best_loss, best_epoch, best_state, stale = float("inf"), 0, None, 0
    steps_per_epoch = -(-len(train_idx) // config.batch_size)
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        progress = monitor.sub((epoch - 1) / config.epochs, epoch / config.epochs)
        train_loss = _train_epoch(model, loss_fn, optimizer, tiles, rng.permutation(train_idx), config.batch_size, steps_per_epoch, progress)
        if val_idx.size:
            val_loss, val_miou = tiles.evaluate(model, loss_fn, val_idx, config.batch_size)
        else:  # no validation fold: the training loss decides, the MIoU is the training tiles'
            val_loss, val_miou = train_loss, tiles.evaluate(model, loss_fn, train_idx, config.batch_size)[1]
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_miou": val_miou,
            "lr": float(optimizer.param_groups[0]["lr"]),
            "seconds": time.perf_counter() - epoch_start,
        }
        history.append(record)
        monitor.info(
            f"Epoch {epoch}: training loss {train_loss:.4f}, validation loss {val_loss:.4f}, validation MIoU {val_miou:.4f}, "
            f"learning rate {record['lr']:.2e}."
        )
        scheduler.step(val_loss)
        if val_loss < best_loss - 1e-7:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                monitor.info(f"Early stopping: no better validation loss for {config.patience} epochs (best: epoch {best_epoch}).")
                break
    return history, best_epoch, best_state


def _train_epoch(
    model: Any, loss_fn: Any, optimizer: Any, tiles: _Batches, order: np.ndarray, batch_size: int, steps: int, monitor: Monitor
) -> float:
    """One pass over the training tiles in ``order``; returns the mean loss per labelled pixel."""
    model.train()
    loss_sum, n_pix = 0.0, 0
    for step, start in enumerate(range(0, len(order), batch_size)):
        xb, tb = tiles.batch(np.sort(order[start:start + batch_size]))
        labelled = int((tb >= 0).sum())
        if labelled == 0:
            continue
        optimizer.zero_grad()
        loss = loss_fn(model.logits(*xb), tb)
        (loss / labelled).backward()
        optimizer.step()
        loss_sum += float(loss.detach())
        n_pix += labelled
        monitor.update((step + 1) / steps)
    return loss_sum / max(n_pix, 1)
