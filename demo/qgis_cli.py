"""Run this checkout's algorithms through the headless ``qgis_process`` binary.

Used by ``make demo`` and by the tests that check the command-line path. Parameters go as
``-- KEY=VALUE`` (QGIS 3.22 has no JSON on stdin); a list value repeats the key.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "qgis-process")


class QgisProcessError(RuntimeError):
    """qgis_process exited non-zero; the message carries the algorithm's error text."""


def _pairs(params: dict[str, object]) -> Iterable[str]:
    for key, value in params.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, bool):
                item = "true" if item else "false"
            yield f"{key}={item}"


def run_algorithm(algorithm: str, params: dict[str, object], timeout: float = 900) -> dict:
    """Run ``landcover:<algorithm>`` (or any full id) and return the parsed ``--json`` results."""
    alg_id = algorithm if ":" in algorithm else f"landcover:{algorithm}"
    cmd = [SCRIPT, "run", alg_id, "--json", "--", *_pairs(params)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise QgisProcessError(f"{alg_id} failed (exit {proc.returncode}):\n{proc.stderr.strip()}\n{proc.stdout.strip()[-2000:]}")
    try:
        return json.loads(proc.stdout)["results"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise QgisProcessError(f"{alg_id}: qgis_process did not print JSON results: {proc.stdout[:500]!r}") from exc


def list_algorithms() -> str:
    """Plain-text algorithm listing (``qgis_process list``)."""
    return subprocess.run([SCRIPT, "list"], capture_output=True, text=True, timeout=120, cwd=ROOT, check=True).stdout
