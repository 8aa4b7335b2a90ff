"""The grid run's ``report.html``: what ran, per patch status and errors, parameters and versions.

Rendered from the run's ``report.json`` document with the same renderer and stylesheet as the
accuracy and area reports (``validation.pages``), so a run folder's pages look and escape alike.
"""

from __future__ import annotations

import json
import os

from ..validation.pages import esc, page, table


def _patch_row(record: dict) -> list[str]:
    error = esc(record.get("error") or "")
    if record.get("traceback"):
        error += f"<details><summary>traceback</summary><pre>{esc(record['traceback'])}</pre></details>"
    return [esc(record["patch"]), esc(record["status"]), str(record.get("duration_s", "")), error]


def run_page(report: dict, graph: str | None) -> str:
    """The page of a run's report document (``batch.write_report``); ``graph`` is the workflow PNG beside it, if drawn."""
    counts = report["counts"]
    records = report["patches"]
    summary = (
        f"<p>{esc(report['run_folder'])} — executor {esc(report['executor'])}, {report['workers']} worker(s), {report['wall_s']:.1f} s;\n"
        f"{counts['done']} done, {counts['skipped']} skipped (done before), {counts['failed']} failed.</p>"
    )
    patches = table(["patch", "status", "duration (s)", "error"], [_patch_row(r) for r in records], text=(0, 1, 3), row_classes=[r["status"] for r in records])
    parameters = table(None, [[esc(k), esc(json.dumps(v))] for k, v in report["parameters"].items()], text=(0, 1))
    versions = table(None, [[esc(k), esc(v)] for k, v in report["versions"].items()], text=(0, 1))
    parts = [
        "<h1>Land-cover run over a grid</h1>",
        summary,
        f'<p><img src="{esc(os.path.basename(graph))}" alt="workflow"></p>' if graph else "",
        "<h2>Patches</h2>" + patches,
        f"<h2>Parameters</h2><p>hash {esc(report['parameters_hash'])}</p>" + parameters,
        "<h2>Versions</h2>" + versions,
    ]
    return page("Land-cover run report", parts)
