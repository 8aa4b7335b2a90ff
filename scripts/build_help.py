"""Regenerate resources/help/index.html, the help shipped inside the plugin, from the algorithms' help texts.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/build_help.py (``make help``)
Each algorithm's *Help* button opens its section (``#alg-<id>``, see LandCoverAlgorithm.helpUrl); the
page works offline and needs no homepage. tests/processing/test_help.py checks the file is current.
"""

from __future__ import annotations

import html
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "resources", "help", "index.html")

STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em;line-height:1.45}"
    "h2{border-bottom:1px solid #ccc;margin-top:2em}h3{margin-top:1.6em}code{background:#f3f3f3;padding:0 .2em}"
    "img{vertical-align:middle;margin-right:.4em}"
)


def help_html(algorithms, groups: dict[str, str]) -> str:
    """One page: contents by workflow group, then each algorithm's help text under its anchor."""
    by_group: dict[str, list] = {group_id: [] for group_id in groups}
    for algorithm in algorithms:
        by_group[algorithm.groupId()].append(algorithm)
    contents, sections = [], []
    for group_id, title in groups.items():
        items = sorted(by_group[group_id], key=lambda a: a.displayName())
        contents.append(f"<li>{html.escape(title)}: " + ", ".join(f'<a href="#alg-{a.name()}">{html.escape(a.displayName())}</a>' for a in items) + "</li>")
        sections.append(f"<h2>{html.escape(title)}</h2>")
        for a in items:
            icon = "../" + "/".join(a.svgIconPath().replace(os.sep, "/").split("/resources/")[-1:])  # relative to resources/help
            sections.append(
                f'<h3 id="alg-{a.name()}"><img src="{icon}" width="24" height="24" alt="">{html.escape(a.displayName())} '
                f"<small>(<code>landcover:{a.name()}</code>)</small></h3>\n<p>{a.shortHelpString()}</p>"
            )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Land cover (lc-plugin): help</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n<h1>Land cover (lc-plugin)</h1>\n"
        "<p>Sentinel-2 time series to a validated land-cover map, as QGIS Processing algorithms (provider "
        "<code>landcover</code>). Every parameter is named with its id in brackets, as <code>qgis_process</code> wants it. "
        "Missing Python packages: <i>Plugins → Land cover → Install Python dependencies…</i> (the README, shipped with the "
        "plugin, says how to install them by hand).</p>\n"
        "<ul>\n" + "\n".join(contents) + "\n</ul>\n" + "\n".join(sections) + "\n</body>\n</html>\n"
    )


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    plugins = os.path.join(ROOT, "build", "plugins")
    os.makedirs(plugins, exist_ok=True)
    link = os.path.join(plugins, "landcover")
    if not os.path.exists(link):
        os.symlink(ROOT, link)
    sys.path.insert(0, plugins)
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    from landcover.algorithms import ALGORITHMS
    from landcover.algorithms.base import GROUPS

    algorithms = []
    for algorithm_class in ALGORITHMS:
        algorithm = algorithm_class()
        algorithm.initAlgorithm()
        algorithms.append(algorithm)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(help_html(algorithms, GROUPS))
    sys.stderr.write(f"wrote {OUT}\n")
    del algorithms
    app.exitQgis()


if __name__ == "__main__":
    main()
