"""A grid run's report: ``report.json`` (every patch's record, parameters, package versions) and
``report.html`` (the same for a person, with the per-patch step graph)."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import platform
from typing import Any

from ..core.atomic import atomic_output
from .parameters import BatchParameters


def package_versions() -> dict[str, str]:
    """Versions of what decides the results, for the report (reproducibility)."""
    from importlib import metadata

    from .. import __version__

    versions = {"lc_plugin": __version__, "python": platform.python_version()}
    for name in ("numpy", "rasterio", "lightgbm", "onnxruntime", "s2cloudless", "dask", "distributed"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        from osgeo import gdal

        versions["gdal"] = gdal.__version__
    except ImportError:
        pass
    return versions


def workflow_figure(path: str, with_reference: bool) -> str | None:
    """Draw the per-patch step graph (PNG) with matplotlib's Agg canvas; None without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    names = ["grid", "download", "cloud mask", "filter", "interpolate"] + (["reference"] if with_reference else []) + ["classify", "mosaic", "report"]
    fig = Figure(figsize=(1.3 * len(names), 1.6))
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(-1, 1)
    ax.axis("off")
    for i, name in enumerate(names):
        per_patch = name not in ("grid", "mosaic", "report")
        ax.text(
            i,
            0,
            name,
            ha="center",
            va="center",
            fontsize=9,
            bbox={"boxstyle": "round", "facecolor": "#cfe8cf" if per_patch else "#dddddd", "edgecolor": "#555555"},
        )
        if i:
            ax.annotate("", xy=(i - 0.42, 0), xytext=(i - 0.58, 0), arrowprops={"arrowstyle": "->"})
    ax.text((len(names) - 1) / 2, -0.75, "green: once per patch (in parallel); grey: once per run", ha="center", fontsize=8)
    fig.savefig(path, dpi=80)
    return path


def write_report(
    run_folder: str, params: BatchParameters, records: list[dict], mosaic_info: dict | None, *, executor: str, workers: int, wall_s: float
) -> tuple[str, str]:
    """``report.json`` and ``report.html``: per patch status, duration, error; parameters, versions, graph."""
    counts = {s: sum(r["status"] == s for r in records) for s in ("done", "skipped", "failed")}
    report: dict[str, Any] = {
        "run_folder": run_folder,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(),
        "executor": executor,
        "workers": workers,
        "wall_s": round(wall_s, 3),
        "counts": counts,
        "parameters": params.public(),
        "parameters_hash": params.digest(),
        "versions": package_versions(),
        "mosaic": mosaic_info,
        "patches": records,
    }
    rj = os.path.join(run_folder, "report.json")
    with atomic_output(rj) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, default=str)
    graph = workflow_figure(os.path.join(run_folder, "workflow.png"), bool(params.reference))
    e = html.escape
    rows = []
    for r in records:
        tb = f"<details><summary>traceback</summary><pre>{e(r.get('traceback') or '')}</pre></details>" if r.get("traceback") else ""
        colour = {"done": "#e6f4e6", "skipped": "#eeeeee", "failed": "#fbe3e3"}.get(r["status"], "")
        rows.append(
            f"<tr style='background:{colour}'><td>{e(r['patch'])}</td><td>{e(r['status'])}</td>"
            f"<td>{r.get('duration_s', '')}</td><td>{e(r.get('error') or '')}{tb}</td></tr>"
        )
    params_rows = "".join(f"<tr><td>{e(k)}</td><td>{e(json.dumps(v))}</td></tr>" for k, v in params.public().items())
    version_rows = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in report["versions"].items())
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Land-cover run report</title>
<style>body{{font-family:sans-serif}} td,th{{border:1px solid #ccc;padding:2px 6px}} table{{border-collapse:collapse}}</style></head><body>
<h1>Land-cover run over a grid</h1>
<p>{e(run_folder)} — executor {e(executor)}, {workers} worker(s), {wall_s:.1f} s;
{counts['done']} done, {counts['skipped']} skipped (done before), {counts['failed']} failed.</p>
{f'<img src="{os.path.basename(graph)}" alt="workflow">' if graph else ''}
<h2>Patches</h2><table><tr><th>patch</th><th>status</th><th>duration (s)</th><th>error</th></tr>{''.join(rows)}</table>
<h2>Parameters</h2><p>hash {e(params.digest())}</p><table>{params_rows}</table>
<h2>Versions</h2><table>{version_rows}</table></body></html>"""
    rh = os.path.join(run_folder, "report.html")
    with atomic_output(rh) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    return rj, rh
