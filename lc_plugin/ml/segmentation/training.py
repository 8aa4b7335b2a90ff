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

import numpy as np

from ...core.classes import ClassTable
from ...core.deps import require
from ...core.errors import LandCoverError
from ...core.monitor import ensure_monitor
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
        """LandCoverError naming the Processing parameter of the first bad field."""
        if self.architecture not in ARCHITECTURES:
            raise LandCoverError(f"Unknown architecture '{self.architecture}'; use one of {', '.join(ARCHITECTURES)}.", "ARCHITECTURE")
        if self.device not in DEVICES:
            raise LandCoverError(f"Unknown device '{self.device}'; use one of {', '.join(DEVICES)}.", "DEVICE")
        for name, parameter, low in (
            ("epochs", "EPOCHS", 1), ("batch_size", "BATCH_SIZE", 1), ("patience", "PATIENCE", 1),
            ("width", "CONFIG", 1), ("depth", "CONFIG", 1), ("lr_patience", "CONFIG", 0),
        ):
            if getattr(self, name) < low:
                raise LandCoverError(f"{name} must be at least {low}, got {getattr(self, name)}.", parameter)
        if not self.learning_rate > 0:
            raise LandCoverError(f"The learning rate must be above 0, got {self.learning_rate}.", "LEARNING_RATE")
        if not 0 < self.lr_factor < 1:
            raise LandCoverError(f"lr_factor must be between 0 and 1, got {self.lr_factor}.", "CONFIG")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, base: TrainConfig | None = None) -> TrainConfig:
        """``base`` (default: the defaults) with ``values`` applied; unknown keys are an error, types are coerced."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise LandCoverError(f"Unknown training setting(s) {', '.join(unknown)}; known: {', '.join(known)}.", "CONFIG")
        merged = (base or cls()).to_dict()
        for key, value in values.items():
            kind = type(merged[key])
            try:
                merged[key] = kind(value) if kind is not bool else _as_bool(value)
            except (TypeError, ValueError) as exc:
                raise LandCoverError(f"Training setting {key}: expected {kind.__name__}, got {value!r}.", "CONFIG") from exc
        return cls(**merged)


def _as_bool(value) -> bool:
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
        raise LandCoverError(f"Could not read the training configuration {path}: {exc}", "CONFIG") from exc
    try:
        if path.lower().endswith((".yaml", ".yml")):
            values = require("yaml").safe_load(text)
        else:
            values = json.loads(text)
    except LandCoverError as exc:
        raise LandCoverError(f"{exc} (or write the configuration as JSON)", "CONFIG") from exc
    except Exception as exc:  # json and yaml raise their own error types
        raise LandCoverError(f"{path} is not valid {'YAML' if path.lower().endswith(('.yaml', '.yml')) else 'JSON'}: {exc}", "CONFIG") from exc
    if not isinstance(values, dict):
        raise LandCoverError(f"{path} must hold a mapping of setting → value.", "CONFIG")
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


def take(array, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` (sorted) of a numpy or zarr array as a numpy array."""
    idx = np.asarray(idx, dtype=np.int64)
    if hasattr(array, "oindex"):
        return np.asarray(array.oindex[idx])
    return np.asarray(array[idx])


def channel_stats(x, idx: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
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
    torch = require("torch")
    if name == "cuda" and not torch.cuda.is_available():
        raise LandCoverError("DEVICE is 'cuda' but PyTorch sees no CUDA GPU (or is a CPU build); use 'auto' or 'cpu'.", "DEVICE")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def split_folds(folds: np.ndarray, config: TrainConfig, n_folds: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test tile indices: the test fold, the validation fold (default the next one), the rest."""
    folds = np.asarray(folds)
    if n_folds is None:
        n_folds = int(folds.max()) + 1 if folds.size else 0
    if not 0 <= config.test_fold < n_folds:
        raise LandCoverError(f"TEST_FOLD must be between 0 and {n_folds - 1} (the data set has {n_folds} folds), got {config.test_fold}.", "TEST_FOLD")
    val_fold = config.validation_fold if config.validation_fold >= 0 else (config.test_fold + 1) % n_folds
    if n_folds < 3 or val_fold == config.test_fold:
        val_fold = -1  # too few folds: early stopping and LR reduction follow the training loss
    test = np.flatnonzero(folds == config.test_fold)
    val = np.flatnonzero(folds == val_fold)
    train = np.flatnonzero((folds != config.test_fold) & (folds != val_fold))
    if train.size == 0:
        raise LandCoverError("No training tiles are left after holding out the test (and validation) fold.", "TEST_FOLD")
    return train, val, test


def fit(
    x,
    y,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    classes: ClassTable,
    config: TrainConfig,
    *,
    valid=None,
    x2=None,
    monitor=None,
) -> FitResult:
    """Train ``config.architecture`` on tiles ``x`` (N, T, C, H, W) float32 NaN = no data, ``y`` (N, H, W) class ids;
    ``x2`` (N, T2, C2, h, w): the same tiles of a coarse second modality (fused at the bottleneck)."""
    torch = require("torch")
    from .models import build_model, downsampling

    monitor = ensure_monitor(monitor)
    config.validate()
    n, n_dates, n_channels, height, width = x.shape
    factor = downsampling(config.depth)
    if height % factor or width % factor:
        raise LandCoverError(
            f"Tiles of {height}×{width} px cannot be pooled {config.depth - 1} times; use a tile size that is a multiple of {factor} "
            "or a smaller depth.",
            "CONFIG",
        )
    train_idx, val_idx = np.sort(np.asarray(train_idx, dtype=np.int64)), np.sort(np.asarray(val_idx, dtype=np.int64))
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    class_ids = classes.ids
    counts = np.zeros(len(class_ids), dtype=np.int64)
    for start in range(0, len(train_idx), 64):
        part = train_idx[start:start + 64]
        t = targets(take(x, part), take(y, part), class_ids, None if valid is None else take(valid, part))
        counts += np.bincount(t[t >= 0], minlength=len(class_ids))
    if (counts > 0).sum() < 2:
        raise LandCoverError("The training tiles have fewer than 2 classes with labelled, valid pixels.", "DATASET")
    mean, std = channel_stats(x, train_idx)
    second = None
    if x2 is not None:
        if config.architecture not in MULTIMODAL_ARCHITECTURES:
            raise LandCoverError(
                f"The {config.architecture} network takes one input; with a second modality use one of {', '.join(MULTIMODAL_ARCHITECTURES)}.", "ARCHITECTURE"
            )
        mean_2, std_2 = channel_stats(x2, train_idx)
        second = (x2.shape[1], x2.shape[2], mean_2, std_2)
    model = build_model(
        config.architecture, n_dates, n_channels, len(class_ids), width=config.width, depth=config.depth, mean=mean, std=std, second=second
    ).to(device)
    weight = torch.as_tensor(class_weight_vector(counts), device=device) if config.class_weights else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight, ignore_index=-1, reduction="sum")
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=config.lr_factor, patience=config.lr_patience)

    def tensor(array) -> object:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)

    def batch(idx: np.ndarray):
        """(inputs, targets): inputs is (x,) or (x, x2), as the network's forward takes them."""
        xb = take(x, idx)
        tb = targets(xb, take(y, idx), class_ids, None if valid is None else take(valid, idx))
        inputs = (tensor(xb),) if x2 is None else (tensor(xb), tensor(take(x2, idx)))
        return inputs, torch.from_numpy(tb).to(device)

    def evaluate(idx: np.ndarray) -> tuple[float, float]:
        """Mean loss per labelled pixel and MIoU of tiles ``idx`` (eval mode)."""
        model.eval()
        loss_sum, n_pix = 0.0, 0
        cm = np.zeros((len(class_ids), len(class_ids)), dtype=np.int64)
        with torch.no_grad():
            for start in range(0, len(idx), config.batch_size):
                xb, tb = batch(idx[start:start + config.batch_size])
                logits = model.logits(*xb)
                loss_sum += float(loss_fn(logits, tb))
                n_pix += int((tb >= 0).sum())
                pred = logits.argmax(dim=1).cpu().numpy()
                cm += confusion_matrix(tb.cpu().numpy(), pred, list(range(len(class_ids))))
        miou = accuracy_metrics(cm, list(range(len(class_ids))))["miou"] if cm.sum() else 0.0
        return loss_sum / max(n_pix, 1), miou

    history: list[dict] = []
    best_loss, best_epoch, best_state, stale = float("inf"), 0, None, 0
    started = time.perf_counter()
    steps_per_epoch = -(-len(train_idx) // config.batch_size)
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        order = rng.permutation(train_idx)
        loss_sum, n_pix = 0.0, 0
        for step, start in enumerate(range(0, len(order), config.batch_size)):
            xb, tb = batch(np.sort(order[start:start + config.batch_size]))
            labelled = int((tb >= 0).sum())
            if labelled == 0:
                continue
            optimizer.zero_grad()
            loss = loss_fn(model.logits(*xb), tb)
            (loss / labelled).backward()
            optimizer.step()
            loss_sum += float(loss.detach())
            n_pix += labelled
            monitor.update(((epoch - 1) * steps_per_epoch + step + 1) / (config.epochs * steps_per_epoch))
        train_loss = loss_sum / max(n_pix, 1)
        val_loss, val_miou = evaluate(val_idx) if val_idx.size else (train_loss, evaluate(train_idx)[1])
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
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        model.cpu(), history, best_epoch, mean.tolist(), std.tolist(), class_ids,
        {cid: int(c) for cid, c in zip(class_ids, counts)}, time.perf_counter() - started, device,
        None if second is None else (second[2].tolist(), second[3].tolist()),
    )

