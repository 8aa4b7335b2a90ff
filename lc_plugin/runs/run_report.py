"""A grid run's report: ``report.json`` (every patch's record, parameters, package versions) and
``report.html`` (the same for a person, with the per-patch step graph, rendered by ``run_page``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from dataclasses import asdict
from typing import Any

from ..core.atomic import atomic_output
from ..io.mosaic import MosaicResult
from .parameters import BatchParameters
from .run_page import run_page


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
    run_folder: str, params: BatchParameters, records: list[dict], mosaic_info: MosaicResult | None, *, executor: str, workers: int, wall_s: float
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
        "mosaic": asdict(mosaic_info) if mosaic_info else None,
        "patches": records,
    }
    rj = os.path.join(run_folder, "report.json")
    with atomic_output(rj) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, default=str)
    graph = workflow_figure(os.path.join(run_folder, "workflow.png"), bool(params.reference))
    rh = os.path.join(run_folder, "report.html")
    with atomic_output(rh) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(run_page(report, graph))
    return rj, rh
