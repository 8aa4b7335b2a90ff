"""The accuracy report as a page: what it leads with, the error matrix, per-class scores, the figures.

The page is written from the report's JSON document alone (plus the class colours and the figures
drawn from it), so everything it shows is also in the JSON. Sections appear in the order a reader
needs them: the honest estimate and its warnings, the methods, the headline figures, the error
matrix with confidence intervals, then the details (per class, notes, matrices, ROC, model).
"""

from __future__ import annotations

import numpy as np

from ..core.classes import ClassTable
from . import figures
from .pages import bullets, cards, esc, image, number, page, swatch, table

Images = dict[str, list[tuple[str, bytes]]]


def _fmt(value: float | None) -> str:
    return number(value, 4)


def _with_ci(entry: dict) -> str:
    return "n/a" if entry["value"] is None else f"{entry['value']:.3f} [{entry['low']:.3f}–{entry['high']:.3f}]"


def lead_value(lead: dict) -> str:
    """The lead estimate as one line: value [low, high], or mean ± std for a cross-validation."""
    value = lead["value"]
    if "std" in value:
        return f"{value['value']:.3f} ± {value['std']:.3f}"
    if value["value"] is None:
        return "n/a"
    return f"{value['value']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"


def report_figures(doc: dict, colors: dict[int, str]) -> Images:
    """Every figure of the report by section, as (caption, bytes) in the current ``figures.figure_format``."""
    cm = np.asarray(doc["confusion_matrix"], dtype=np.float64)
    recall = np.asarray(doc["confusion_matrix_recall"], dtype=np.float64)
    precision = np.asarray(doc["confusion_matrix_precision"], dtype=np.float64)
    names = list(doc["names"])
    images: Images = {
        "confusion": [
            ("Confusion matrix (pixel counts)", figures.heatmap_png(cm, names, "Pixel counts", "{:.0f}", float(cm.max()))),
            (
                "Confusion matrix normalised by reference (recall)",
                figures.heatmap_png(recall, names, "Share of reference (row-normalised, recall)", "{:.2f}", 1.0),
            ),
            (
                "Confusion matrix normalised by prediction (precision)",
                figures.heatmap_png(precision, names, "Share of predicted (column-normalised, precision)", "{:.2f}", 1.0),
            ),
        ]
    }
    if doc["roc"] and any(c["auc"] is not None for c in doc["roc"]["per_class"]):
        images["roc"] = [("ROC curves one-vs-rest", figures.roc_png(doc["roc"]["per_class"], colors))]
    if doc.get("training_counts"):
        tc = doc["training_counts"]
        drawn = figures.class_counts_png([c["name"] for c in tc], [c["count"] for c in tc], [colors.get(c["id"]) for c in tc], "Training samples per class")
        images["counts"] = [("Training samples per class", drawn)]
    fi = doc.get("feature_importance")
    if fi:
        t, f = len(fi["dates"]), len(fi["features"])
        images["importance"] = [
            (
                f"Feature importance ({kind})",
                figures.importance_png(
                    np.asarray(fi[kind], dtype=np.float64).reshape(t, f).T, fi["dates"], fi["features"], f"Feature importance ({kind}) by band/index and date"
                ),
            )
            for kind in ("gain", "split")
        ]
    if doc.get("training_history"):
        hist = doc["training_history"]
        images["history"] = [("Training curves", figures.training_curves_png(hist["epochs"], hist["best_epoch"]))]
    if doc.get("cross_validation"):
        images["cv"] = [("Cross-validation folds", figures.cv_png(doc["cross_validation"]["folds"]))]
    return images


def _assessment(doc: dict) -> list[str]:
    """Lead estimate, warnings, other figures explained, methods paragraph."""
    a = doc["assessment"]
    lead = a["lead"]
    parts = [f'<div class="lead"><div class="k">{esc(lead["label"])}</div><div class="v">{esc(lead_value(lead))}</div>', f"<p>{esc(lead['why'])}</p></div>"]
    parts += [f'<p class="warning">⚠ {esc(w)}</p>' for w in a["warnings"]]
    if a["others"]:
        parts.append("<h2>Other figures in this report</h2>" + bullets(a["others"]))
    parts.append("<h2>Methods</h2><p>" + esc(" ".join(a["methods"])) + "</p>")
    return parts


def _headline(doc: dict) -> list[str]:
    oa = doc["overall_accuracy"]
    items = [
        ("Overall accuracy of this report", f"{_fmt(oa)} ({oa * 100:.1f} %)"),
        ("Cohen's kappa", _fmt(doc["kappa"])),
        ("Weighted F1", _fmt(doc["weighted_f1"])),
        ("Macro F1", _fmt(doc["macro_f1"])),
        ("MIoU", _fmt(doc.get("miou"))),
        ("Pixels compared (n)", f"{doc['n']:,}"),
    ]
    roc = doc.get("roc")
    if roc and roc.get("macro_auc") is not None:
        items.append(("Macro AUC (one-vs-rest)", _fmt(roc["macro_auc"])))
    cv = doc.get("cross_validation")
    if cv:
        items.append((f"CV overall accuracy ({cv['k']} folds)", f"{_fmt(cv['overall_accuracy_mean'])} ± {_fmt(cv['overall_accuracy_std'])}"))
    return ["<h2>Headline figures</h2>", cards(items)]


def _error_matrix(doc: dict, colors: dict[int, str]) -> list[str]:
    """The error matrix with row and column totals (rows reference, columns map), as a paper prints it."""
    cm = np.asarray(doc["confusion_matrix"], dtype=np.int64)
    head = ["Reference \\ map", *(esc(n) for n in doc["names"]), "Total", "Producer's acc."]
    per_class = {c["id"]: c for c in doc["intervals"]["per_class"]}
    rows = [
        [swatch(colors.get(cid)) + esc(name), *(f"{v:,}" for v in cm[i]), f"<b>{int(cm[i].sum()):,}</b>", _with_ci(per_class[cid]["producers_accuracy"])]
        for i, (cid, name) in enumerate(zip(doc["labels"], doc["names"]))
    ]
    rows.append(["<b>Total</b>", *(f"<b>{int(v):,}</b>" for v in cm.sum(axis=0)), f"<b>{int(cm.sum()):,}</b>", ""])
    users = [_with_ci(per_class[cid]["users_accuracy"]) for cid in doc["labels"]]
    rows.append(["User's acc.", *users, "", f"OA {_with_ci(doc['intervals']['overall_accuracy'])}"])
    note = (
        f"<p class=\"meta\">Accuracies with 95 % confidence intervals: {esc(doc['intervals']['method'])}; "
        "n/a where undefined (no pixel mapped as, or referenced as, the class).</p>"
    )
    return ["<h2>Error matrix</h2>" + table(head, rows), note]


def _per_class(doc: dict, colors: dict[int, str]) -> list[str]:
    head = ["Class", "Id", "Precision<br>(user's acc.)", "Recall<br>(producer's acc.)", "F1", "IoU", "Support<br>(reference)", "Predicted"]
    rows = [
        [swatch(colors.get(c["id"])) + esc(c["name"]), str(c["id"]), _fmt(c["precision"]), _fmt(c["recall"]), _fmt(c["f1"]), _fmt(c.get("iou"))]
        + [f"{c['support']:,}", f"{c['predicted']:,}"]
        for c in doc["per_class"]
    ]
    parts = ["<h2>Per class</h2>" + table(head, rows)]
    if doc.get("notes"):
        parts.append("<h2>Notes</h2>" + bullets(doc["notes"]))
    return parts


def _confusion(doc: dict, images: Images, csv_name: str, svg_names: list[str]) -> list[str]:
    parts = [
        "<h2>Confusion matrix</h2><p>Rows are reference classes, columns predicted classes. Row-normalised cells are "
        "the share of each reference class (recall), column-normalised cells the share of each predicted class "
        f"(precision). The counts are also in {esc(csv_name)}.</p>"
    ]
    if svg_names:
        parts.append('<p class="meta">Every figure is also written as SVG beside this page: ' + ", ".join(esc(n) for n in svg_names) + ".</p>")
    return parts + [image(png, alt) for alt, png in images.get("confusion", [])]


def _roc(doc: dict, images: Images, colors: dict[int, str]) -> list[str]:
    roc = doc.get("roc")
    if not roc:
        return ["<h2>ROC curves</h2>", f"<p>{esc(doc.get('roc_note') or 'ROC curves are unavailable: no class probabilities.')}</p>"]
    rows = [[swatch(colors.get(c["id"])) + esc(c["name"]), _fmt(c["auc"]), f"{c['support']:,}"] for c in roc["per_class"]]
    rows += [["macro average", _fmt(roc["macro_auc"]), ""], ["support-weighted average", _fmt(roc["weighted_auc"]), ""]]
    return ["<h2>ROC curves</h2>", table(["Class", "AUC", "Test samples"], rows), *(image(png, alt) for alt, png in images.get("roc", []))]


def _model(doc: dict, images: Images, colors: dict[int, str]) -> list[str]:
    """What the model adds: training counts, feature importance, a network's training curves."""
    parts: list[str] = []
    counts = doc.get("training_counts")
    if counts:
        rows = [[swatch(colors.get(c["id"])) + esc(c["name"]), str(c["id"]), f"{c['count']:,}"] for c in counts]
        parts += ["<h2>Training samples per class</h2>" + table(["Class", "Id", "Training samples"], rows), *(image(p, a) for a, p in images.get("counts", []))]
    if doc.get("feature_importance"):
        parts.append(
            "<h2>Feature importance</h2><p>LightGBM importance of every band/index on every date: <i>gain</i> is the "
            "total loss reduction of the splits on a feature, <i>split</i> how often it is used.</p>"
        )
        parts += [image(png, alt) for alt, png in images.get("importance", [])]
    history = doc.get("training_history")
    if history:
        arch = doc.get("architecture") or {}
        described = f"{esc(arch.get('name', 'network'))} (width {arch.get('width', '?')}, depth {arch.get('depth', '?')}), " if arch else ""
        parts.append(
            f"<h2>Training curves</h2><p>{described}{len(history['epochs'])} epochs in {history['seconds']:.1f} s on "
            f"{esc(history.get('device', '?'))}; the model keeps the weights of epoch {history['best_epoch']} (lowest validation loss).</p>"
        )
        parts += [image(png, alt) for alt, png in images.get("history", [])]
    return parts


def _cross_validation(doc: dict, images: Images) -> list[str]:
    cv = doc.get("cross_validation")
    if not cv:
        return []
    text = (
        f"<h2>Cross-validation</h2><p>{cv['k']}-fold, stratified by spatial group ({esc(cv.get('group', ''))}, "
        f"{cv['n_groups']} groups): overall accuracy {_fmt(cv['overall_accuracy_mean'])} ± {_fmt(cv['overall_accuracy_std'])}, "
        f"weighted F1 {_fmt(cv['weighted_f1_mean'])} ± {_fmt(cv['weighted_f1_std'])} (mean ± std).</p>"
    )
    rows = [
        [str(f["fold"]), f"{f['n_train']:,}", f"{f['n_test']:,}", _fmt(f["overall_accuracy"]), _fmt(f["weighted_f1"])] for f in cv["folds"]
    ]
    folds = table(["Fold", "Train", "Test", "Overall accuracy", "Weighted F1"], rows, text=())
    return [text + folds, *(image(png, alt) for alt, png in images.get("cv", []))]


def accuracy_page(doc: dict, classes: ClassTable, images: Images, csv_name: str, svg_names: list[str]) -> str:
    """The whole page of an accuracy report document, with its figures embedded."""
    colors = {c.id: c.color for c in classes}
    parts = [f"<h1>{esc(doc['title'])}</h1>", f'<p class="meta">Created {esc(doc["created"])}</p>']
    inputs = {k: v for k, v in (doc.get("inputs") or {}).items() if v is not None}
    if inputs:
        parts.append(bullets((f"{k}: {v}" for k, v in inputs.items()), "meta"))
    parts += _assessment(doc) + _headline(doc) + _error_matrix(doc, colors) + _per_class(doc, colors)
    parts += _confusion(doc, images, csv_name, svg_names) + _roc(doc, images, colors) + _model(doc, images, colors) + _cross_validation(doc, images)
    return page(doc["title"], parts)
