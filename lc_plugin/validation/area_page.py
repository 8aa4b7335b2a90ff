"""The area estimate as a page: headline figures, the estimates per class, notes and the figures."""

from __future__ import annotations

import numpy as np

from ..core.classes import ClassTable
from . import figures
from .pages import bullets, cards, esc, image, number, page, swatch, table

_CITATION = (
    "Olofsson, Foody, Herold, Stehman, Woodcock, Wulder (2014), Good practices for estimating area and assessing "
    "accuracy of land change, Remote Sensing of Environment 148:42–57."
)
_HEAD = [
    "Class",
    "Id",
    "Mapped area (ha)",
    "Weight W<sub>i</sub>",
    "Sample n<sub>i·</sub>",
    "Estimated area (ha)",
    "± 95 % CI (ha)",
    "SE (ha)",
    "User's acc. ± 95 % CI",
    "Producer's acc. ± 95 % CI",
]


def _f(value: float | None) -> str:
    return number(value, 3)


def _ha(value: float) -> str:
    return f"{value:,.1f}"


def _with_ci(value: float | None, ci: float | None) -> str:
    return "n/a" if value is None else f"{_f(value)} ± {_f(ci)}"


def _estimates(doc: dict, colors: dict[int, str]) -> list[str]:
    rows = [
        [swatch(colors.get(c["id"])) + esc(c["name"]), str(c["id"]), _ha(c["mapped_area_ha"]), f"{c['weight']:.4f}", f"{c['sample_size']:,}"]
        + [_ha(c["area_ha"]), _ha(c["area_ci95_ha"]), _ha(c["area_se_ha"])]
        + [_with_ci(c["users_accuracy"], c["users_accuracy_ci95"]), _with_ci(c["producers_accuracy"], c["producers_accuracy_ci95"])]
        for c in doc["per_class"]
    ]
    text = (
        "<h2>Area estimates and accuracy per class</h2><p>Estimated areas are the stratified estimator "
        "Σ<sub>i</sub> W<sub>i</sub> n<sub>ij</sub>/n<sub>i·</sub> times the mapped total; ± is the 95 % confidence "
        "interval (1.96 standard errors). User's accuracy is per map class, producer's per reference class, both "
        "weighted by mapped area.</p>"
    )
    return [text, table(_HEAD, rows)]


def _images(doc: dict, colors: dict[int, str]) -> list[tuple[str, bytes]]:
    pc = doc["per_class"]
    names = list(doc["names"])
    colours = [colors.get(c["id"]) for c in pc]
    area = figures.area_png(names, [c["mapped_area_ha"] for c in pc], [c["area_ha"] for c in pc], [c["area_ci95_ha"] for c in pc], colours)
    counts = np.asarray(doc["sample_counts"], dtype=np.float64)
    props = np.asarray(doc["area_proportions"], dtype=np.float64)
    axes = {"xlabel": "Reference (analyst's label)", "ylabel": "Map class (stratum)"}
    return [
        ("Mapped vs estimated area", area),
        ("Error matrix (sample counts)", figures.heatmap_png(counts, names, "Sample counts n_ij", "{:.0f}", float(counts.max()), **axes)),
        (
            "Error matrix (estimated area proportions)",
            figures.heatmap_png(props, names, "Estimated area proportions p_ij", "{:.3f}", float(props.max()), **axes),
        ),
    ]


def area_page(doc: dict, classes: ClassTable, csv_name: str) -> str:
    """The whole page of an area-estimate document (``area.area_estimate_file``), with its figures embedded."""
    colors = {c.id: c.color for c in classes}
    headline = [
        ("Overall accuracy ± 95 % CI", f"{_f(doc['overall_accuracy'])} ± {_f(doc['overall_accuracy_ci95'])}"),
        ("Sample points", f"{doc['n_sample']:,}"),
        ("Mapped area (ha)", _ha(doc["total_area_ha"])),
    ]
    parts = [
        f"<h1>{esc(doc['title'])}</h1>",
        f'<p class="meta">Created {esc(doc["created"])}. {esc(doc["method"])}: {_CITATION}</p>',
        bullets((f"{k}: {v}" for k, v in doc["inputs"].items()), "meta"),
        cards(headline),
        *_estimates(doc, colors),
    ]
    if doc["notes"]:
        parts.append("<h2>Notes</h2>" + bullets(doc["notes"]))
    parts.append(
        f"<h2>Figures</h2><p>The sample counts are also in {esc(csv_name)}. In the error matrices rows are "
        "map classes (strata) and columns reference classes.</p>"
    )
    parts += [image(png, alt) for alt, png in _images(doc, colors)]
    return page(doc["title"], parts)
