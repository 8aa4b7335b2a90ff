"""Pair time stacks with their reference rasters by name, not by the order of two lists.

A dialog's two layer lists are easy to fill in different orders; a stack trained against another
patch's reference gives a quietly wrong model. So pairs are found by the patch id (``col_row`` as
Create patch grid names patches, in the file name or its folder's name), else by what differs
between the file names of each list (``a_interp.tif`` ↔ ``ref_a.tif``), and anything else is an error
that says which files are left without a partner.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from ..core.errors import InputError

_PATCH_ID = re.compile(r"\d+_\d+")


def patch_key(path: str) -> str | None:
    """The patch id of a file: the last ``col_row`` in its name, else in its folder's name."""
    stem = os.path.splitext(os.path.basename(path))[0]
    for text in (stem, os.path.basename(os.path.dirname(os.path.abspath(path)))):
        found = _PATCH_ID.findall(text)
        if found:
            return found[-1]
    return None


def name_keys(paths: Sequence[str]) -> list[str]:
    """File names without what all of them share at the start and the end (``a_interp``, ``b_interp`` → ``a``, ``b``)."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    prefix = os.path.commonprefix(stems)
    suffix = os.path.commonprefix([s[::-1] for s in stems])[::-1]
    return [s[len(prefix) : len(s) - len(suffix)] if len(prefix) + len(suffix) < len(s) else s for s in stems]


def _match(stacks: Sequence[str], references: Sequence[str], stack_keys: list, ref_keys: list) -> list[tuple[str, str]] | None:
    if None in stack_keys or None in ref_keys or len(set(stack_keys)) < len(stacks) or len(set(ref_keys)) < len(references):
        return None
    if set(stack_keys) != set(ref_keys):
        return None
    by_key = dict(zip(ref_keys, references))
    return [(stack, by_key[key]) for stack, key in zip(stacks, stack_keys)]


def pair_stacks(stacks: Sequence[str], references: Sequence[str]) -> list[tuple[str, str]]:
    """(stack, reference) pairs, matched by patch id or file name; an InputError naming ``references`` when they do not pair."""
    if len(stacks) != len(references):
        raise InputError(f"{len(stacks)} time stacks but {len(references)} reference rasters; give one reference per stack.", argument="references")
    if len(stacks) <= 1:
        return list(zip(stacks, references))
    pairs = _match(stacks, references, [patch_key(p) for p in stacks], [patch_key(p) for p in references])
    pairs = pairs or _match(stacks, references, name_keys(stacks), name_keys(references))
    if pairs is None:
        names = ", ".join(os.path.basename(p) for p in stacks)
        refs = ", ".join(os.path.basename(p) for p in references)
        raise InputError(
            f"Cannot tell which reference raster goes with which time stack ({names} / {refs}): name each pair by its "
            "patch id (e.g. 465_5079/interpolated.tif and 465_5079/reference.tif, or i_465_5079.tif and r_465_5079.tif) "
            "or by the same name with a common prefix or suffix (forest_i.tif and forest_r.tif).",
            argument="references",
        )
    return pairs
