"""One renderer for every HTML page the plugin writes: the skeleton, one stylesheet and the pieces.

The accuracy report, the area estimate and the grid run's report are self-contained pages (images
embedded, no script, no external file but the run's workflow PNG) that a user opens from disk or
mails on. They share this module so they look alike and escape alike: every function here takes
*text* where it says text (escaped here) and *HTML fragments* where it says cells or body (built
from these functions, or escaped with ``esc`` by the caller). No template engine: the pages are
short lists of fragments, and a dependency would have to reach every QGIS install.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Container, Iterable, Sequence

_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")

STYLESHEET = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
.meta{color:#666;font-size:.9em}
.headline{display:flex;flex-wrap:wrap;gap:1em;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}
.card .v{font-size:1.5em;font-weight:600}.card .k{color:#666;font-size:.85em}
table{border-collapse:collapse}th,td{border-bottom:1px solid #e5e5e5;padding:.3em .7em;text-align:right;vertical-align:top}
th{background:#f5f5f5}td.name,th.name{text-align:left}
tr.done{background:#e6f4e6}tr.skipped{background:#eeeeee}tr.failed{background:#fbe3e3}
pre{white-space:pre-wrap;font-size:.85em}
.swatch{display:inline-block;width:.9em;height:.9em;border:1px solid #555;margin-right:.5em;vertical-align:middle}
img{max-width:100%;height:auto}
.lead{border:2px solid #2e7d32;border-radius:6px;padding:.6em 1em;margin:1em 0;background:#f3faf3}
.lead .v{font-size:1.8em;font-weight:700}.lead .k{color:#333;font-weight:600}
.warning{border-left:4px solid #c62828;background:#fff4f4;padding:.5em .8em}
"""


def number(value: float | None, digits: int) -> str:
    """A score or estimate with ``digits`` decimals; "n/a" where it is undefined (None), never 0."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def valid_color(color: str | None, fallback: str) -> str:
    """A class colour if it is ``#rrggbb``, else ``fallback``: colours go into style attributes and figures."""
    return color if color and _COLOR_RE.match(color) else fallback


def esc(text: object) -> str:
    """``text`` (any value, as ``str``) safe inside an element or a quoted attribute."""
    return html.escape(str(text))


def page(title: str, body: Iterable[str]) -> str:
    """A whole page: ``title`` (text) and the ``body`` fragments, one per line, with the shared stylesheet."""
    head = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title><style>{STYLESHEET}</style></head><body>"]
    return "\n".join([*head, *body, "</body></html>"]) + "\n"


def table(head: Sequence[str] | None, rows: Iterable[Sequence[str]], *, text: Container[int] = (0,), row_classes: Sequence[str] | None = None) -> str:
    """A table of HTML cells (``head`` None: no header row); the columns in ``text`` (names, messages) are
    left-aligned, the others (numbers) right; ``row_classes`` gives each body row a class (e.g. a status)."""

    def cell(tag: str, i: int, content: str) -> str:
        return f'<{tag} class="name">{content}</{tag}>' if i in text else f"<{tag}>{content}</{tag}>"

    def row(cells: Sequence[str], tag: str, klass: str = "") -> str:
        attr = f' class="{klass}"' if klass else ""
        return f"<tr{attr}>" + "".join(cell(tag, i, c) for i, c in enumerate(cells)) + "</tr>"

    body = [row(cells, "td", row_classes[i] if row_classes else "") for i, cells in enumerate(rows)]
    thead = "" if head is None else "<thead>" + row(head, "th") + "</thead>"
    return "<table>" + thead + "<tbody>" + "".join(body) + "</tbody></table>"


def bullets(items: Iterable[str], klass: str = "") -> str:
    """A list of texts (escaped here)."""
    attr = f' class="{klass}"' if klass else ""
    return f"<ul{attr}>" + "".join(f"<li>{esc(item)}</li>" for item in items) + "</ul>"


def cards(items: Iterable[tuple[str, str]]) -> str:
    """Headline figures: (label, value) texts as a row of cards."""
    inner = "".join(f'<div class="card"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div></div>' for k, v in items)
    return f'<div class="headline">{inner}</div>'


def swatch(color: str | None) -> str:
    """A class colour as a small square; anything but ``#rrggbb`` (it goes into a style) shows grey."""
    return f'<span class="swatch" style="background:{valid_color(color, "#cccccc")}"></span>'


def image(png: bytes, alt: str) -> str:
    """A PNG embedded in the page, so the page stays one file."""
    data = base64.b64encode(png).decode("ascii")
    return f'<p><img src="data:image/png;base64,{data}" alt="{esc(alt)}"></p>'
