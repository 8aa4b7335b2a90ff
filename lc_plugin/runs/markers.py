"""A patch folder's markers: ``prepared.json`` (stacks and reference written) and ``done.json`` (class map
written), each with the hash of the parameters that made them, so a rerun skips what is current."""

from __future__ import annotations

import datetime as dt
import json
import os

from ..core.atomic import atomic_output
from ..core.errors import DataError

DONE_MARKER = "done.json"
PREPARED_MARKER = "prepared.json"


def read_marker(folder: str, name: str = DONE_MARKER) -> dict | None:
    """The marker ``name`` of a patch folder, or None when it is missing or unreadable."""
    try:
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_marker(folder: str, name: str, record: dict) -> None:
    """Write the marker ``name`` with the time it was finished."""
    with atomic_output(os.path.join(folder, name)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump({**record, "finished": dt.datetime.now(dt.timezone.utc).isoformat()}, f, indent=2)


def is_done(folder: str, digest: str, marker_name: str = DONE_MARKER) -> bool:
    """True if the patch folder holds a (done or prepared) marker for these parameters and its outputs exist."""
    marker = read_marker(folder, marker_name)
    if not marker or marker.get("parameters_hash") != digest:
        return False
    return all(os.path.isfile(os.path.join(folder, p)) for p in marker.get("outputs", {}).values())


def training_pairs(run_folder: str) -> tuple[list[str], list[str]]:
    """(interpolated stacks, reference rasters) of every prepared patch of a run with a reference,
    in patch order: the inputs of training over the whole grid."""
    stacks, references = [], []
    for name in sorted(os.listdir(run_folder)) if os.path.isdir(run_folder) else []:
        folder = os.path.join(run_folder, name)
        marker = read_marker(folder, PREPARED_MARKER) or {}
        outputs = marker.get("outputs", {})
        if "reference" in outputs and is_done(folder, marker.get("parameters_hash", ""), PREPARED_MARKER):
            stacks.append(os.path.join(folder, outputs["interpolated"]))
            references.append(os.path.join(folder, outputs["reference"]))
    if not stacks:
        raise DataError(
            f"{run_folder} holds no prepared patch with a reference raster; run the grid with a reference layer first.", "run_folder"
        )
    return stacks, references
