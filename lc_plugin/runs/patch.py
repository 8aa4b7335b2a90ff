"""One patch of a grid run: download → cloud mask → filter → interpolate → (reference) → classify.

``process_patch`` takes plain data (a dict of parameters, the patch id) so it pickles to any worker,
writes into ``<run_folder>/<patch_id>/`` and returns the patch's record (status, outputs, step
durations, error) instead of raising, so one failed patch never stops the run. With a pixel model
the patch runs in one pass after its download (``fused.classify_stack``: no cloud-mask, filtered or
interpolated stack is written, and the class map is the one the separate steps would write);
``keep_intermediates`` runs the separate steps instead, keeping their files (the filtered stack as a
VRT of the downloaded one).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
import traceback
from dataclasses import dataclass, field

from ..core.errors import Cancelled
from ..core.monitor import Monitor
from ..core.redaction import redact_text
from . import runstate
from .markers import DONE_MARKER, PREPARED_MARKER, is_done, write_marker
from .parameters import BatchParameters

STEPS = ["download", "cloud mask", "filter", "interpolate", "reference", "classify"]
ONE_PASS_STEP = "cloud mask → filter → interpolate → classify (one pass)"


@dataclass
class StepClock:
    """Gives each step of a patch its slice of the patch's monitor, logs it and times it."""

    monitor: Monitor
    patch_id: str
    count: int
    times: dict[str, float] = field(default_factory=dict)

    def start(self, name: str) -> Monitor:
        done = len(self.times)
        self.times[name] = time.time()
        self.monitor.info(f"Patch {self.patch_id}: {name}")
        return self.monitor.sub(done / self.count, (done + 1) / self.count)

    def close(self, name: str) -> None:
        self.times[name] = round(time.time() - self.times[name], 3)

    def close_failed(self) -> None:
        """Give the step that raised (never closed: it still holds its start time) its duration."""
        for name, value in list(self.times.items()):
            if value > 1e9:
                self.close(name)


@dataclass(frozen=True)
class PatchPlan:
    """What one patch run does: reuse an earlier preparation, run in one pass, or step by step; and its files."""

    params: BatchParameters
    patch_id: str
    folder: str
    reuse: bool
    one_pass: bool
    outputs: dict[str, str]  # output kind → file name in the patch folder

    def path(self, kind: str) -> str:
        return os.path.join(self.folder, self.outputs[kind])

    @property
    def step_count(self) -> int:
        p = self.params
        if self.reuse:
            return 1
        if self.one_pass:
            return 2 + bool(p.reference)
        return len(STEPS) - (not p.reference) - (not p.model)


def plan_patch(p: BatchParameters, patch_id: str, run_folder: str) -> PatchPlan:
    """Decide how the patch runs and which files it writes."""
    from .fused import supports

    folder = os.path.join(run_folder, patch_id)
    reuse = is_done(folder, p.prepare_digest(), PREPARED_MARKER)
    one_pass = bool(p.model) and not p.keep_intermediates and not reuse and supports(str(p.model))
    names = {
        "stack": "stack.tif",
        "mask": None if one_pass else "clm.tif",
        "filtered": None if one_pass else "filtered.vrt",
        "filtered_mask": None if one_pass else "filtered_clm.vrt",
        "interpolated": None if one_pass else "interpolated.tif",
        "reference": "reference.tif" if p.reference else None,
        "landcover": "landcover.tif" if p.model else None,
    }
    return PatchPlan(p, patch_id, folder, reuse, one_pass, {k: v for k, v in names.items() if v})


def process_patch(params: dict, patch_id: str, run_folder: str, monitor: Monitor | None = None) -> dict:
    """Run the chain for one patch; return its record (never raises, except ``Cancelled``).

    The patch geometry is read from the grid file, which workers must see at the same path. Without a
    monitor (a worker process) progress and cancel go through the run folder (``runstate``).
    """
    plan = plan_patch(BatchParameters(**params), patch_id, run_folder)
    monitor = monitor or runstate.worker_monitor(run_folder, patch_id)
    clock = StepClock(monitor, patch_id, plan.step_count)
    started = time.time()
    record: dict = {"patch": patch_id, "status": "failed", "outputs": {}, "steps": clock.times, "error": None, "traceback": None}
    record["worker"] = f"{platform.node()}:{os.getpid()}"
    try:
        _run_plan(plan, clock, record)
        record.update(status="done", outputs=plan.outputs, duration_s=round(time.time() - started, 3), parameters_hash=plan.params.digest())
        write_marker(plan.folder, DONE_MARKER, record)
    except (Cancelled, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - a patch's failure is data for the report
        error, trace = redact_text(f"{type(exc).__name__}: {exc}"), redact_text(traceback.format_exc())
        record.update(error=error, traceback=trace, duration_s=round(time.time() - started, 3))
        clock.close_failed()
    return record


def _run_plan(plan: PatchPlan, clock: StepClock, record: dict) -> None:
    """The patch's steps: prepare (or reuse) its stacks, then classify."""
    from ..ml import classify

    p = plan.params
    os.makedirs(plan.folder, exist_ok=True)
    marker = os.path.join(plan.folder, DONE_MARKER)
    if os.path.exists(marker):
        os.remove(marker)
    if plan.reuse:
        clock.monitor.info(f"Patch {plan.patch_id}: stacks prepared by an earlier run are reused")
        record["reused_preparation"] = True
    elif plan.one_pass:
        _one_pass_patch(plan, clock)
    else:
        _prepare_patch(plan, clock)
        prepared = {k: v for k, v in plan.outputs.items() if k != "landcover"}
        write_marker(plan.folder, PREPARED_MARKER, {"patch": plan.patch_id, "outputs": prepared, "parameters_hash": p.prepare_digest()})
    if p.model and not plan.one_pass:
        m = clock.start("classify")
        classify.classify_file(p.model, plan.path("interpolated"), plan.path("landcover"), monitor=m)
        clock.close("classify")


def _one_pass_patch(plan: PatchPlan, clock: StepClock) -> None:
    """Download → (reference) → the one-pass chain to the class map (``fused.classify_stack``)."""
    from ..timeseries import interpolate
    from . import fused

    p = plan.params
    _download(plan, clock)
    _reference(plan, plan.path("stack"), clock)
    m = clock.start(ONE_PASS_STEP)
    settings = fused.FusedSettings(
        cloud_method=p.cloud_method,
        processing_resolution=float(p.cloud_resolution),
        min_valid_fraction=p.min_valid_fraction,
        step_days=int(p.step_days),
        start=dt.date.fromisoformat(str(p.start)),
        end=dt.date.fromisoformat(str(p.end)),
        edge_days=interpolate.GRID_EDGE_DAYS,
    )
    fused.classify_stack(plan.path("stack"), str(p.model), plan.path("landcover"), settings, monitor=m)
    clock.close(ONE_PASS_STEP)


def _download(plan: PatchPlan, clock: StepClock) -> None:
    from ..sources.download import download_patch
    from .grid import read_patches

    p = plan.params
    (patch,) = read_patches(p.grid, [plan.patch_id], layer=p.grid_layer)
    m = clock.start("download")
    download_patch(
        patch,
        plan.path("stack"),
        start=p.start,
        end=p.end,
        stac_url=p.stac_url,
        collection=p.collection,
        max_cloud=p.max_cloud,
        bands=list(p.bands),
        threads=p.download_threads,
        resume=True,
        monitor=m,
    )
    clock.close("download")


def _prepare_patch(plan: PatchPlan, clock: StepClock) -> None:
    """Download → cloud mask → filter → interpolate → (reference) for one patch, keeping every file."""
    from ..timeseries import clouds, interpolate, scenes

    p, path = plan.params, plan.path
    _download(plan, clock)
    m = clock.start("cloud mask")
    clouds.cloud_masks_file(path("stack"), path("mask"), method=p.cloud_method, monitor=m, processing_resolution=float(p.cloud_resolution))
    clock.close("cloud mask")
    m = clock.start("filter")
    scenes.filter_scenes_file(path("stack"), path("mask"), path("filtered"), path("filtered_mask"), min_valid_fraction=p.min_valid_fraction, monitor=m)
    clock.close("filter")
    m = clock.start("interpolate")
    interpolate.interpolate_file(
        path("filtered"),
        path("interpolated"),
        mask_path=path("filtered_mask"),
        step_days=int(p.step_days),
        start=dt.date.fromisoformat(str(p.start)),
        end=dt.date.fromisoformat(str(p.end)),
        edge_days=interpolate.GRID_EDGE_DAYS,
        monitor=m,
    )
    clock.close("interpolate")
    _reference(plan, path("interpolated"), clock)


def _reference(plan: PatchPlan, grid_path: str, clock: StepClock) -> None:
    """Rasterize the run's reference (if any) on the grid of ``grid_path``, with the run's class options."""
    from ..reference import rasterize as reference

    p = plan.params
    if not p.reference:
        return
    m = clock.start("reference")
    options = reference.ClassOptions(zero=p.reference_zero, legend=p.reference_legend)
    reference.rasterize_reference_file(
        p.reference, str(p.reference_field), grid_path, plan.path("reference"), erosion_px=int(p.erosion_px), options=options, monitor=m
    )
    clock.close("reference")
