"""Shared fixtures: the engine on sys.path and the real Sentinel-2 data in ../shared/data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_DATA = ROOT.parent / "shared" / "data"
TESTPATCH = SHARED_DATA / "eo-learn-testpatch"


@pytest.fixture(scope="session")
def testpatch() -> Path:
    """The real eo-learn test patch (EPSG:32633, 101×100 px, 68 dates); see shared/data/README.md."""
    if not TESTPATCH.exists():
        pytest.skip(f"real test data not found at {TESTPATCH}")
    return TESTPATCH


@pytest.fixture(scope="session")
def s2cloudless_scene() -> Path:
    path = SHARED_DATA / "s2cloudless-scene" / "input_arrays.npz"
    if not path.exists():
        pytest.skip(f"real test data not found at {path}")
    return path
