"""How the DN of a Sentinel-2 STAC asset become reflectance: scale, offset and no-data, and why.

Why its own module: the catalogues disagree (STAC 1.0 ``raster:bands``, STAC 1.1 ``raster:scale``,
Earth Search's offset flag that is sometimes wrong, Planetary Computer's silence), so the rules
are many and each is documented where it is decided; the numbers, with the reason, go into the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

DEFAULT_SCALE = 0.0001
# L2A processing baseline 04.00+ adds 1000 to DN (ESA's BOA_ADD_OFFSET); used when an asset's
# raster:bands metadata does not give a scale.
BASELINE_OFFSET = -0.1


@dataclass(frozen=True)
class Scaling:
    """How an asset's numbers become physical values: ``value = DN * scale + offset``, DN ``nodata`` = no data.

    ``reason`` says in words why these numbers were chosen (it goes into the download log).
    ``check_pixels``: the metadata cannot be trusted (an Earth Search ``sentinel-2-l2a`` item
    flagged as not offset-corrected although its baseline is >= 04.00); ``read_item`` then looks
    at the pixels before applying the offset (``confirm_offset``).
    """

    scale: float
    offset: float
    nodata: float
    reason: str
    check_pixels: bool = False

    def apply(self, dn: np.ndarray) -> np.ndarray:
        return dn * np.float32(self.scale) + np.float32(self.offset)


# The metadata properties that say an Earth Search v1 sentinel-2-l2a item's COGs had the -1000 DN
# offset subtracted (the second is the name used before 2023).
BOA_FLAGS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")
# ESA quantifies AOT and WVP by 1000 without offset (MTD_MSIL2A.xml AOT_/WVP_QUANTIFICATION_VALUE).
_ATMOSPHERE_SCALE = 0.001
# A window whose median DN is below this in some reflectance band cannot still carry ESA's +1000:
# its median reflectance would be below -0.01 (a margin over 1000 for noise on dark water).
_SHIFTED_DN = 900.0
_MIN_CHECK_PIXELS = 50


def processing_baseline(item: dict) -> str | None:
    """The item's processing baseline: ``s2:processing_baseline`` (STAC 1.0), ``processing:version``
    (STAC 1.1, CDSE) or the ``_Nxxxx_`` part of the product URI or id."""
    props = item.get("properties") or {}
    for key in ("s2:processing_baseline", "processing:version"):
        if props.get(key):
            return str(props[key])
    for text in (props.get("s2:product_uri"), item.get("id")):
        match = re.search(r"_N(\d{2})(\d{2})_", str(text or ""))
        if match:
            return f"{match.group(1)}.{match.group(2)}"
    return None


def _baseline_shifts_dn(baseline: str | None) -> bool | None:
    """True from baseline 04.00 on (DN carry ESA's +1000), None when unknown."""
    try:
        return float(baseline) >= 4.0 if baseline else None
    except ValueError:
        return None


def _declared(asset: dict) -> tuple[float | None, float | None, float, str]:
    """(scale, offset, nodata, where) as the asset declares them: STAC 1.1 ``raster:scale``/
    ``raster:offset`` on the asset or its ``bands``, else STAC 1.0 ``raster:bands``."""
    rb = (asset.get("raster:bands") or [None])[0]
    rb = rb if isinstance(rb, dict) else {}
    band = (asset.get("bands") or [None])[0]
    band = band if isinstance(band, dict) else {}
    nodata = float(next((d["nodata"] for d in (asset, band, rb) if d.get("nodata") is not None), 0))
    for holder, where in ((asset, "asset raster:scale/raster:offset (STAC 1.1)"), (band, "bands raster:scale/raster:offset (STAC 1.1)")):
        if "raster:scale" in holder or "raster:offset" in holder:
            return holder.get("raster:scale"), holder.get("raster:offset"), nodata, where
    if "scale" in rb or "offset" in rb:
        return rb.get("scale"), rb.get("offset"), nodata, "raster:bands scale/offset (STAC 1.0)"
    return None, None, nodata, ""


def scaling(item: dict, key: str) -> Scaling:
    """The scale, offset and no-data DN of asset ``key`` of a Sentinel-2 STAC item, and why.

    The rules (README, Data sources):

    * SCL: classes, read as they are. AOT/WVP: DN / 1000, as ESA quantifies them (CDSE items
      declare 0.0001/-0.1 for them, which is wrong).
    * Earth Search ``sentinel-2-l2a`` (items carry ``earthsearch:boa_offset_applied``): its
      COGs from baseline 04.00 on had the -1000 offset subtracted, yet ``raster:bands`` still
      says offset -0.1. Flag true: the offset is NOT applied again (the real pixels of such
      items in tests/data confirm it). Flag false with baseline >= 04.00: the offset is applied,
      but the flag is known to be false on some items whose pixels were corrected (earth-search
      issues #66, #71; cirrus-earth-search #33), so ``check_pixels`` asks ``read_item`` to look.
    * Otherwise what the item declares: STAC 1.1 asset ``raster:scale``/``raster:offset`` (CDSE),
      STAC 1.0 ``raster:bands`` (Earth Search ``sentinel-2-c1-l2a``, whose DN keep ESA's +1000).
    * Nothing declared (Planetary Computer): DN × 0.0001, minus 0.1 from baseline 04.00 on
      (ESA's BOA_ADD_OFFSET / RADIO_ADD_OFFSET of -1000), no offset before.
    """
    asset = (item.get("assets") or {})[key]
    props = item.get("properties") or {}
    scale, offset, nodata, where = _declared(asset)
    base = re.sub(r"_\d+m$", "", key.lower())
    if base == "scl":
        return Scaling(1.0, 0.0, nodata, "scene classes, used as they are")
    if base in ("aot", "wvp"):
        ignored = "" if (scale, offset or 0) == (_ATMOSPHERE_SCALE, 0) or scale is None else f"; the item's {scale:g}/{offset or 0:g} is not followed"
        return Scaling(_ATMOSPHERE_SCALE, 0.0, nodata, f"{base.upper()} is quantified by 1000 without offset (ESA product XML){ignored}")
    baseline = processing_baseline(item)
    shifted = _baseline_shifts_dn(baseline)
    scale = float(scale) if scale is not None else DEFAULT_SCALE
    flag_key = next((k for k in BOA_FLAGS if k in props), None)
    if flag_key and props[flag_key] is True:
        return Scaling(
            scale, 0.0, nodata,
            f"{flag_key} is true (baseline {baseline}): Earth Search already subtracted the 1000 DN offset, so the "
            f"declared offset {float(offset or 0):g} is not applied again",
        )
    if flag_key and shifted:
        told = float(offset) if offset is not None else BASELINE_OFFSET
        return Scaling(
            scale, told, nodata,
            f"{flag_key} is false with baseline {baseline} >= 04.00: offset {told:g} applied unless the pixels show it was "
            "already subtracted (Earth Search mis-flags some such items)",
            check_pixels=True,
        )
    if where:
        return Scaling(scale, float(offset or 0.0), nodata, f"declared by the item: {where}")
    if shifted is None:
        return Scaling(scale, 0.0, nodata, "no scale/offset declared and no processing baseline known: DN × 0.0001, no offset")
    if shifted:
        return Scaling(scale, BASELINE_OFFSET, nodata, f"no scale/offset declared; baseline {baseline} >= 04.00 adds 1000 to DN (ESA's -1000 ADD_OFFSET)")
    return Scaling(scale, 0.0, nodata, f"no scale/offset declared; baseline {baseline} < 04.00 has no DN offset")


def confirm_offset(scalings: dict[str, Scaling], dn: dict[str, np.ndarray]) -> dict[str, Scaling]:
    """Settle the ``check_pixels`` scalings of one item from its pixels (DN, NaN = no data).

    A band whose median DN in the window is below 900 would have a median reflectance below
    -0.01 if the offset were still in the pixels: no real surface has that, so the offset was
    already subtracted. The test only ever proves that; when it proves nothing (a bright or
    cloudy window), the flag is followed.
    """
    doubtful = [b for b, s in scalings.items() if s.check_pixels]
    if not doubtful:
        return scalings
    medians = {b: float(np.nanmedian(dn[b])) for b in doubtful if np.count_nonzero(np.isfinite(dn[b])) >= _MIN_CHECK_PIXELS}
    low = {b: m for b, m in medians.items() if m < _SHIFTED_DN}
    out = dict(scalings)
    for band in doubtful:
        s = scalings[band]
        if low:
            proof, median = min(low.items(), key=lambda kv: kv[1])
            outcome = f"the median DN of {proof} is {median:.0f} < 900 (reflectance below -0.01 otherwise), so the offset was already subtracted: none applied"
            out[band] = Scaling(s.scale, 0.0, s.nodata, f"{s.reason}; pixels: {outcome}")
        else:
            out[band] = Scaling(s.scale, s.offset, s.nodata, f"{s.reason}; pixels: no band's median DN is below 900, offset {s.offset:g} applied")
    return out


def describe_scalings(scalings: dict[str, Scaling]) -> list[str]:
    """One line per group of bands scaled alike: ``B02,B04: DN × 0.0001 + 0 (reason)``."""
    groups: dict[Scaling, list[str]] = {}
    for band, s in scalings.items():
        groups.setdefault(s, []).append(band)
    return [f"{','.join(b)}: DN × {s.scale:g} {'-' if s.offset < 0 else '+'} {abs(s.offset):g} ({s.reason})" for s, b in groups.items()]
