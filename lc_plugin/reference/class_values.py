"""How the values of a reference layer's class field become class ids, names and colours.

Every value of the whole layer is numbered at once (not only those on one patch), so all patches of
one layer share one numbering and one table; ``rasterize`` burns the ids. Errors name the arguments of
``rasterize_reference_file``: ``class_field`` and ``legend``.
"""

from __future__ import annotations

from collections import Counter

from ..core.classes import NODATA_CLASS, ClassTable, LandCoverClass, default_color
from ..core.errors import InputError
from ..core.legends import Legend

MAX_CLASS_ID = 255


def class_ids_of(values: set, *, is_text: bool, class_field: str, legend: Legend | None = None, zero: str = "refuse") -> tuple[dict, str]:
    """Field value → class id (1–255) for every value of the layer, and a sentence saying how.

    - With a built-in legend, its ids and aliases (CLC's "311" → 23) decide; a value it lacks is an error.
    - Whole numbers (numeric fields, or text fields holding only digits) are the ids themselves.
      0 means no data in a class raster, so a field holding 0 (QGIS's "Add unique value index
      field" numbers from 0) is refused (``zero="refuse"``), or every id is shifted up by one
      (``"shift"``), or 0 is burnt as no data (``"nodata"``, eo-learn's LULC convention).
    - Other text is numbered 1..n in sorted order (stable for one layer whatever the patch), the
      text becoming the class name.
    """
    if legend is not None:
        mapping = {v: legend.id_of(v) for v in values}
        unknown = sorted(str(v) for v, i in mapping.items() if i is None)
        if unknown:
            raise InputError(
                f"The class field '{class_field}' holds value(s) {', '.join(unknown[:10])} that the {legend.title} legend "
                "does not have; choose the field with its codes or another legend.",
                argument="legend",
            )
        return mapping, f"class ids from the {legend.title} legend"
    if is_text and not all(str(v).isdigit() for v in values):
        ordered = sorted(values, key=lambda v: (v.casefold(), v))
        if len(ordered) > MAX_CLASS_ID:
            raise InputError(
                f"The class field '{class_field}' holds {len(ordered)} different texts; at most {MAX_CLASS_ID} classes fit a class raster.",
                argument="class_field",
            )
        return {v: i for i, v in enumerate(ordered, start=1)}, f"text classes numbered 1–{len(ordered)} in sorted order"
    numbers = {v: int(v) for v in values}
    how = "class ids from the field"
    if numbers and min(numbers.values()) == 0:
        if zero == "refuse":
            raise InputError(
                f"The class field '{class_field}' holds the id 0, but 0 means no data in a class raster: "
                "those polygons would silently vanish (QGIS's 'Add unique value index field' numbers classes from 0). "
                "Choose to shift every id up by one (0 → 1, 1 → 2, …), or to burn 0 as no data if that is what it means, "
                "or recode the field to 1–255.",
                argument="class_field",
            )
        if zero == "shift":
            numbers = {v: n + 1 for v, n in numbers.items()}
            how = "class ids from the field shifted up by one (ZERO_ID: 0 → 1)"
        else:
            how = "class ids from the field; 0 burnt as no data"
    bad = sorted(n for n in numbers.values() if not 0 <= n <= MAX_CLASS_ID)
    if bad:
        raise InputError(
            f"Class ids in '{class_field}' must be 1–{MAX_CLASS_ID}, but it holds {bad[0] if bad[0] < 1 else bad[-1]}. "
            "Recode the classes to 1–255, or choose the legend they belong to (e.g. CORINE for codes 111–523).",
            argument="class_field",
        )
    return numbers, how


NODATA_NAMES = ("no data", "nodata", "no_data", "none", "unlabelled", "unlabeled", "unknown", "unclassified")


def zero_named_nodata(names: dict) -> bool:
    """True when the layer's own name field says id 0 is no data: its polygons unnamed or named so,
    while other classes have names (eo-learn's LULC: id 0, empty LULC_NAME)."""
    zero = names.get(0)
    if zero is None or not any(counter for value, counter in names.items() if value != 0):
        return False
    return all(name.casefold() in NODATA_NAMES for name in zero)


def most_common(counter: Counter | None) -> str:
    return counter.most_common(1)[0][0] if counter else ""


def build_class_table(
    ids: dict,
    names: dict[int, Counter],
    colors: dict[int, Counter],
    *,
    is_text: bool,
    legend: Legend | None,
    legend_file: dict[str, tuple[str, str]] | None,
    explicit_names: bool,
) -> tuple[ClassTable, str]:
    """Names and colours per id, from (in order) an explicit name/colour field, the legend file, the
    built-in legend, a guessed name field, the field's text, else "class <id>" and a meaningful or
    palette colour. Returns the table and where the names came from."""
    by_name = {name.casefold(): (name, color) for name, color in (legend_file or {}).values() if name}
    text_of = {i: str(v) for v, i in ids.items()} if is_text else {}
    classes, sources = [], set()
    for cid in sorted(set(ids.values()) - {NODATA_CLASS}):
        raw = [str(v) for v, i in ids.items() if i == cid]
        from_file = next((legend_file[r] for r in raw if legend_file and r in legend_file), None)
        if from_file is None and legend_file and str(cid) in legend_file:
            from_file = legend_file[str(cid)]
        if from_file is None and cid in text_of:
            from_file = by_name.get(text_of[cid].casefold())
        from_legend = legend.entries.get(cid) if legend else None
        field_name = most_common(names.get(cid))
        candidates = [
            (field_name if explicit_names else "", "the name field"),
            (from_file[0] if from_file else "", "the legend file"),
            (from_legend[0] if from_legend else "", "the legend"),
            (field_name, "the name field"),
            (text_of.get(cid, ""), "the class field's text"),
        ]
        name, source = next(((n, s) for n, s in candidates if n), (f"class {cid}", "none"))
        sources.add(source)
        color = most_common(colors.get(cid)) or (from_file[1] if from_file else "") or (from_legend[1] if from_legend else "")
        classes.append(LandCoverClass(int(cid), name, color or default_color(int(cid), name)))
    return ClassTable(classes), ", ".join(sorted(sources))
