"""Report figures as PNG (or SVG) bytes: error-matrix heat maps, ROC curves, feature importance, class
frequencies, area estimates, cross-validation folds and training curves.

Drawn with matplotlib's object API on an Agg canvas, never through ``pyplot`` (global state, and
Processing runs algorithms in a worker thread where QGIS's Qt backend is unsafe). Every figure
has a title, axis labels, class names and the class colours.
"""

from __future__ import annotations

import contextlib
import contextvars
import io

import numpy as np

from ..core.deps import require
from .pages import valid_color

MAX_ANNOTATED_CLASSES = 30  # larger matrices are drawn without numbers in the cells


def _label(name: str, width: int = 24) -> str:
    name = name if len(name) <= width else name[: width - 1] + "…"
    return name.replace("$", r"\$")  # matplotlib would read $…$ as math


def _color(color: str | None) -> str:
    return valid_color(color, "#888888")


def _figure(width: float, height: float):
    require("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


_FORMAT: contextvars.ContextVar[str] = contextvars.ContextVar("figure_format", default="png")


@contextlib.contextmanager
def figure_format(fmt: str):
    """Figures drawn inside are saved as ``fmt`` ("png" or "svg"; reports embed PNG and ship SVG beside)."""
    token = _FORMAT.set(fmt)
    try:
        yield
    finally:
        _FORMAT.reset(token)


def render(fig) -> bytes:
    """The figure's bytes in the current format; SVG without a creation date, so reruns give the same file."""
    fig.tight_layout()
    buf = io.BytesIO()
    fmt = _FORMAT.get()
    fig.savefig(buf, format=fmt, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
    return buf.getvalue()


def heatmap_png(values: np.ndarray, names: list[str], title: str, fmt: str, vmax: float, xlabel: str = "Predicted", ylabel: str = "Reference") -> bytes:
    """An error-matrix heat map (rows = ``ylabel``, columns = ``xlabel``), cells written with ``fmt`` up to 30 classes."""
    k = len(names)
    side = min(max(4.5, 0.55 * k + 2.5), 24.0)
    fig = _figure(side + 1.2, side)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax if vmax > 0 else 1.0, interpolation="nearest")
    ticks = [_label(n) for n in names]
    ax.set_xticks(range(k))
    ax.set_xticklabels(ticks, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k))
    ax.set_yticklabels(ticks)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if k <= MAX_ANNOTATED_CLASSES:
        size = 10 if k <= 8 else (8 if k <= 15 else 6)
        threshold = 0.5 * (vmax if vmax > 0 else 1.0)
        for i in range(k):
            for j in range(k):
                v = values[i, j]
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=size, color="white" if v > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return render(fig)


def roc_png(curves: list[dict], colors: dict[int, str]) -> bytes:
    """All one-vs-rest ROC curves in one figure (entries of ``metrics.roc_one_vs_rest``)."""
    fig = _figure(6.5, 6.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], linestyle="--", color="#999999", linewidth=1, label="chance (AUC 0.5)")
    for c in curves:
        if c["auc"] is None:
            continue
        ax.plot(c["fpr"], c["tpr"], color=_color(colors.get(c["id"])), linewidth=2, label=f"{_label(c['name'])} (AUC {c['auc']:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("False positive rate (1 − specificity)")
    ax.set_ylabel("True positive rate (recall)")
    ax.set_title("ROC curves, one class vs the rest")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return render(fig)


def importance_png(importance: np.ndarray, dates: list[str], features: list[str], title: str) -> bytes:
    """A band/index × date heat map of feature importance (rows = bands/indices, columns = dates)."""
    importance = np.asarray(importance, dtype=np.float64)
    fig = _figure(min(max(6.0, 0.22 * len(dates) + 3.0), 24.0), max(3.0, 0.4 * len(features) + 2.0))
    ax = fig.add_subplot(1, 1, 1)
    vmax = float(importance.max()) if importance.size and importance.max() > 0 else 1.0
    image = ax.imshow(importance, cmap="viridis", aspect="auto", vmin=0.0, vmax=vmax, interpolation="nearest")
    ax.set_yticks(range(len(features)))
    ax.set_yticklabels([_label(f) for f in features])
    step = max(1, len(dates) // 40)
    ax.set_xticks(range(0, len(dates), step))
    ax.set_xticklabels(dates[::step], rotation=90, fontsize=7)
    ax.set_xlabel("Date")
    ax.set_ylabel("Band / index")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    return render(fig)


def class_counts_png(names: list[str], counts: list[int], colors: list[str | None], title: str) -> bytes:
    """A bar chart of sample counts per class, with the counts written on the bars."""
    fig = _figure(min(max(5.0, 0.7 * len(names) + 2.5), 20.0), 4.5)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(names))
    bars = ax.bar(x, counts, color=[_color(c) for c in colors], edgecolor="#333333")
    for bar, count in zip(bars, counts):
        ax.annotate(f"{count:,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels([_label(n) for n in names], rotation=30, ha="right", rotation_mode="anchor")
    ax.set_xlabel("Class")
    ax.set_ylabel("Samples")
    ax.set_title(title)
    ax.margins(y=0.12)
    return render(fig)


def area_png(names: list[str], mapped: list[float], estimated: list[float], ci: list[float], colors: list[str | None]) -> bytes:
    """Mapped area vs the stratified estimate with its 95 % confidence interval, per class (ha)."""
    fig = _figure(min(max(5.5, 0.9 * len(names) + 2.5), 20.0), 4.8)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(names))
    ax.bar(x - 0.2, mapped, width=0.4, color=[_color(c) for c in colors], alpha=0.45, edgecolor="#333333", label="mapped area")
    ax.bar(x + 0.2, estimated, width=0.4, color=[_color(c) for c in colors], edgecolor="#333333", yerr=ci, capsize=4, label="estimated area ± 95 % CI")
    ax.set_xticks(x)
    ax.set_xticklabels([_label(n) for n in names], rotation=30, ha="right", rotation_mode="anchor")
    ax.set_xlabel("Class")
    ax.set_ylabel("Area (ha)")
    ax.set_title("Mapped vs estimated area (Olofsson et al. 2014)")
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor="#888888", alpha=0.45, edgecolor="#333333", label="mapped area (left, pale)"),
        Patch(facecolor="#888888", edgecolor="#333333", label="estimated area ± 95 % CI (right)"),
    ]
    ax.legend(handles=handles, fontsize=8)
    return render(fig)


def cv_png(folds: list[dict]) -> bytes:
    """Overall accuracy and weighted F1 per cross-validation fold."""
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(folds))
    ax.bar(x - 0.2, [f["overall_accuracy"] for f in folds], width=0.4, label="overall accuracy", color="#1f77b4")
    ax.bar(x + 0.2, [f["weighted_f1"] for f in folds], width=0.4, label="weighted F1", color="#ff7f0e")
    ax.set_xticks(x)
    ax.set_xticklabels([str(i + 1) for i in x])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("Fold")
    ax.set_ylabel("Score")
    ax.set_title("Cross-validation by spatial group")
    ax.legend(fontsize=8, loc="lower right")
    return render(fig)


def training_curves_png(epochs: list[dict], best_epoch: int) -> bytes:
    """Training and validation loss, and validation MIoU, per epoch of a network's training."""
    fig = _figure(10.0, 3.8)
    from matplotlib.ticker import MaxNLocator

    x = [e["epoch"] for e in epochs]
    ax = fig.add_subplot(1, 2, 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.plot(x, [e["train_loss"] for e in epochs], marker="o", markersize=3, label="training", color="#1f77b4")
    ax.plot(x, [e["val_loss"] for e in epochs], marker="o", markersize=3, label="validation", color="#ff7f0e")
    ax.axvline(best_epoch, linestyle="--", color="#999999", linewidth=1, label=f"best epoch ({best_epoch})")
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Cross-entropy per labelled pixel")
    ax.set_title("Loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = fig.add_subplot(1, 2, 2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.plot(x, [e["val_miou"] for e in epochs], marker="o", markersize=3, color="#2ca02c")
    ax.axvline(best_epoch, linestyle="--", color="#999999", linewidth=1)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("Epoch")
    ax.set_ylabel("MIoU")
    ax.set_title("Validation mean intersection over union")
    ax.grid(alpha=0.3)
    return render(fig)
