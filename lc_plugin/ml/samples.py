"""The training pixels of a pixel classifier, drawn from many patches without holding them all.

Pass 1 (``scan_usable``) finds, patch by patch, the labelled pixels with every feature finite; the
class-balanced sample is then spread over the patches by quotas (``draw_sample``), split into
training and test pixels (``split_sample``: by held-out patch, block or pixel), and pass 2
(``extract_features``) reads the features of the sampled pixels only. Pixels are numbered across
patches: flat index = the patch's offset + row * width + col.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio

from ..core.classes import NODATA_CLASS, ClassTable
from ..core.monitor import Monitor
from ..io.rasters import Grid
from ..reference.sampling import allocate_quotas, sample_with_quotas
from ..reference.training_inputs import read_reference_labels
from ..timeseries.cloudcheck import clear_pixels
from ..timeseries.features import feature_block, feature_layout, iter_feature_windows, read_bands_window
from .spatial import block_split, patch_and_local

if TYPE_CHECKING:
    from .train import ClassifierConfig


@dataclass(frozen=True)
class PatchSet:
    """The checked inputs: one stack, reference and cloud mask (or None) per patch, their shared layout."""

    stacks: list[str]
    references: list[str]
    masks: list[str | None]
    dates: list[dt.date]
    bands: list[str]
    fbands: list[str]
    grids: list[Grid]
    tables: list[ClassTable | None]
    n_unmasked: int

    @property
    def feature_names(self) -> list[str]:
        return feature_layout(self.dates, self.fbands)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def offsets(self) -> np.ndarray:
        """First flat index of each patch when pixels are numbered across patches (row-major within one)."""
        return np.cumsum([0] + [g.height * g.width for g in self.grids])

    def labels(self, p: int) -> np.ndarray:
        """Reference ids of patch ``p``, no data where its cloud mask (if any) is not clear on every date."""
        lab = read_reference_labels(self.references[p])
        mask = self.masks[p]
        if mask:
            lab = np.where(clear_pixels(mask, self.dates, self.grids[p], "mask_paths"), lab, NODATA_CLASS)
        return lab


@dataclass(frozen=True)
class UsablePixels:
    """Pass 1: per patch, which labelled pixels have every feature finite (packed bits) and how many of each class."""

    usable_bits: list[np.ndarray]
    counts: np.ndarray  # (patches, 256)
    present: set[int]


@dataclass(frozen=True)
class SampleSplit:
    """Sampled pixels (flat indices across patches, sorted) and their labels, for training and testing."""

    train_idx: np.ndarray
    y_train: np.ndarray
    test_idx: np.ndarray
    y_test: np.ndarray
    test_patches: list[int]


def scan_usable(patches: PatchSet, monitor: Monitor) -> UsablePixels:
    """Pass 1, one patch at a time: which labelled pixels have every feature finite (kept as bits),
    and how many of each class, so the sample can be spread over patches without holding them."""
    usable_bits, counts, present = [], np.zeros((len(patches.stacks), 256), dtype=np.int64), set[int]()
    total_pixels = sum(g.height * g.width for g in patches.grids)
    done_pixels = 0
    n_dates, n_features = len(patches.dates), patches.n_features
    for p, (path, grid) in enumerate(zip(patches.stacks, patches.grids)):
        lab = patches.labels(p)
        present.update(int(v) for v in np.unique(lab))
        mask = np.zeros(lab.shape, dtype=bool)
        with rasterio.open(path) as src:
            for win in iter_feature_windows(grid.height, grid.width, n_features):
                rs, cs = win.toslices()
                labelled = lab[rs, cs] != NODATA_CLASS
                if labelled.any():
                    feats = feature_block(read_bands_window(src, n_dates, patches.bands, patches.fbands, win), patches.fbands)
                    mask[rs, cs] = np.isfinite(feats).all(axis=1).reshape(win.height, win.width) & labelled
                done_pixels += win.height * win.width
                monitor.update(done_pixels / total_pixels)
        counts[p] = np.bincount(lab[mask], minlength=256)
        usable_bits.append(np.packbits(mask))
    return UsablePixels(usable_bits, counts, present)


def held_out_patches(n_patches: int, config: ClassifierConfig, rng: np.random.Generator) -> list[int]:
    """Patch split: whole patches held out (chosen with the seed); none for the other splits."""
    if config.split != "patch":
        return []
    n_test_patches = min(n_patches - 1, math.ceil(config.test_fraction * n_patches))
    return sorted(int(i) for i in rng.choice(n_patches, size=n_test_patches, replace=False))


def draw_sample(
    patches: PatchSet, scan: UsablePixels, table: ClassTable, test_patches: list[int], config: ClassifierConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified sampling with per-patch quotas: sorted flat indices (patch offset + row * width + col) and their labels."""
    n_patches = len(patches.stacks)
    ids = np.array(table.ids, dtype=np.int64)
    offsets = patches.offsets
    is_test = np.isin(np.arange(n_patches), test_patches)
    quotas = np.zeros((n_patches, ids.size), dtype=np.int64)
    quotas[~is_test] = allocate_quotas(scan.counts[~is_test][:, ids], config.samples_per_class)
    if config.split == "patch":
        test_cap = max(1, round(config.samples_per_class * config.test_fraction / (1.0 - config.test_fraction)))
        quotas[is_test] = allocate_quotas(scan.counts[is_test][:, ids], test_cap)
    drawn, drawn_labels = [], []
    for p, ref_path in enumerate(patches.references):
        if not quotas[p].any():
            continue
        lab = read_reference_labels(ref_path)
        usable = np.unpackbits(scan.usable_bits[p], count=lab.size).astype(bool).reshape(lab.shape)
        local = sample_with_quotas(lab, usable, quotas[p], ids, rng)
        drawn.append(local + offsets[p])
        drawn_labels.append(lab.ravel()[local])
    return np.concatenate(drawn), np.concatenate(drawn_labels).astype(np.int64)


def split_sample(
    patches: PatchSet,
    sampled: np.ndarray,
    labels: np.ndarray,
    table: ClassTable,
    test_patches: list[int],
    config: ClassifierConfig,
    rng: np.random.Generator,
    monitor: Monitor,
) -> SampleSplit:
    """Training and test pixels: by held-out patch, by held-out block, or (pixel split) per class at random."""
    offsets = patches.offsets
    if config.split in ("patch", "block"):
        if config.split == "patch":
            in_test = np.isin(np.arange(len(patches.stacks)), test_patches)[np.searchsorted(offsets, sampled, side="right") - 1]
        else:
            in_test = block_split(sampled, labels, offsets, patches.grids, config.block_px, config.test_fraction, config.seed, monitor)
        return SampleSplit(sampled[~in_test], labels[~in_test], sampled[in_test], labels[in_test], test_patches)
    train_parts, test_parts = [], []
    for class_id in table.ids:
        members = rng.permutation(sampled[labels == class_id])
        n_test = min(int(round(len(members) * config.test_fraction)), len(members) - 1)
        test_parts.append(members[:n_test])
        train_parts.append(members[n_test:])
    train_idx = np.sort(np.concatenate(train_parts))
    test_idx = np.sort(np.concatenate(test_parts))
    # sampled is sorted (patches in order), so a pixel's label is found by its position there
    return SampleSplit(train_idx, labels[np.searchsorted(sampled, train_idx)], test_idx, labels[np.searchsorted(sampled, test_idx)], test_patches)


def extract_features(patches: PatchSet, split: SampleSplit, monitor: Monitor) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2: features of the sampled pixels only, read window by window; (x_train, x_test)."""
    offsets, n_features, n_dates = patches.offsets, patches.n_features, len(patches.dates)
    wanted = np.sort(np.concatenate([split.train_idx, split.test_idx]))
    features = np.empty((wanted.size, n_features), dtype=np.float32)
    pos = 0
    for p, (path, grid) in enumerate(zip(patches.stacks, patches.grids)):
        lo, hi = np.searchsorted(wanted, [offsets[p], offsets[p + 1]])
        local = wanted[lo:hi] - offsets[p]
        rows, cols = local // grid.width, local % grid.width
        with rasterio.open(path) as src:
            for win in iter_feature_windows(grid.height, grid.width, n_features):
                a, b = np.searchsorted(rows, [win.row_off, win.row_off + win.height])
                inside = np.flatnonzero((cols[a:b] >= win.col_off) & (cols[a:b] < win.col_off + win.width)) + a
                if inside.size == 0:
                    continue
                block = read_bands_window(src, n_dates, patches.bands, patches.fbands, win)
                pixels = block[:, :, rows[inside] - win.row_off, cols[inside] - win.col_off]  # (T, B, k)
                features[pos + inside] = feature_block(pixels[:, :, np.newaxis, :], patches.fbands)
        pos += hi - lo
        monitor.update((p + 1) / len(patches.stacks))
    return features[np.searchsorted(wanted, split.train_idx)], features[np.searchsorted(wanted, split.test_idx)]


def prediction_rows(patches: PatchSet, split: SampleSplit, pred: np.ndarray, proba: Any) -> np.ndarray:
    """The test predictions CSV's rows: source patch, row, col, true and predicted class, class probabilities."""
    test_patch, local = patch_and_local(split.test_idx, patches.offsets)
    widths = np.array([g.width for g in patches.grids])[test_patch]
    columns = np.column_stack([test_patch, local // widths, local % widths, split.y_test, pred]).astype(np.float64)
    return np.column_stack([columns, np.asarray(proba, dtype=np.float64)])
