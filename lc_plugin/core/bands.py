"""Which bands of a stack hold classes rather than reflectance: one answer for every step.

Sentinel-2's scene classification (``SCL``) and Sentinel Hub's cloud mask (``CLM``) are class codes: they
are resampled by nearest neighbour, never scaled, interpolated in time or fed to a classifier as a number.
Sentinel Hub's cloud probability (``CLP``) is a number (interpolated and usable as a feature like any band)
but not a reflectance, so it does not say whether a pixel was observed.
"""

from __future__ import annotations

from collections.abc import Sequence

CATEGORICAL_BANDS = ("SCL", "CLM")
NON_REFLECTANCE_BANDS = (*CATEGORICAL_BANDS, "CLP")


def numeric_bands(bands: Sequence[str]) -> list[str]:
    """The bands that are numbers (every band but the class codes), in stack order."""
    return [b for b in bands if b not in CATEGORICAL_BANDS]


def reflectance_indices(bands: Sequence[str]) -> list[int]:
    """Positions of the reflectance bands; all positions for a stack of none (then every band counts)."""
    return [i for i, b in enumerate(bands) if b not in NON_REFLECTANCE_BANDS] or list(range(len(bands)))
