"""Warping error: splits and mergers left after topology-preserving warping (Table 1: 0.000353 for U-Net).

Jain et al. (2010), "Boundary learning by optimization with topological constraints" (CVPR), section 3:
the label is warped towards the binarised proposal by flipping simple points only, and the mismatches
that remain are classified. The challenge called ``WarpingError.getMinimumSplitsAndMergersErrorValue(
0.0, 0.9, 0.1, false, 20)`` of Fiji "Trainable Weka Segmentation" (``trainableSegmentation.metrics``):
10 thresholds, mismatches visited most confident first (stable sort, column-major ties), 4-connected
cells / 8-connected membranes, a 41 x 41 window (radius 20) to tell a split from a hole deletion, and
only splits and mergers counted. ``tests/data/isbi2012_metrics/README.md`` sums up these conventions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ._common import (
    WARPING_THRESHOLDS,
    _flood,
    _label_components,
    _map_slices,
    _offsets,
    _stable_sort_descending,
    validate_inputs,
)
from .simple_points import _SIMPLE_LUT

#: Radius of the window that decides split vs. hole deletion (the challenge call passes 20).
WARPING_RADIUS = 20

#: The 8 neighbours (dx, dy) of a pixel.
_RING = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))

# Mismatch classes: the Java flag values.
MERGE = 0x1
SPLIT = 0x2
HOLE_ADDITION = 0x4
OBJECT_DELETION = 0x8
OBJECT_ADDITION = 0x10
HOLE_DELETION = 0x20
_COLUMN = np.zeros(HOLE_DELETION + 1, np.int64)  # class flag -> column of the counts of _warp_counts
for _col, _flag in enumerate((MERGE, SPLIT, HOLE_ADDITION, HOLE_DELETION, OBJECT_ADDITION, OBJECT_DELETION)):
    _COLUMN[_flag] = _col
MISMATCH_NAMES = {
    MERGE: "merge",
    SPLIT: "split",
    HOLE_ADDITION: "hole addition",
    OBJECT_DELETION: "object deletion",
    OBJECT_ADDITION: "object addition",
    HOLE_DELETION: "hole deletion",
}

# --------------------------------------------------------------------------------------------------
# Compiled kernels


@njit(cache=True, nogil=True)
def _cell_components(label_t: np.ndarray) -> np.ndarray:
    """4-connected components of the cells (``label_t != 0``) of a transposed slice, as a padded flat
    int32 image (0 = membrane or border). Only equality of the numbers matters to :func:`_classify`."""
    w, h = label_t.shape
    stride = h + 2
    comp = np.zeros((w + 2) * stride, np.int32)
    for x in range(w):
        for y in range(h):
            if label_t[x, y] != 0:
                comp[(x + 1) * stride + y + 1] = -1
    _label_components(comp, w, h, -1, 0, _offsets(h), np.empty(h * w, np.int64))
    return comp


@njit(cache=True, nogil=True)
def _warp(comp0: np.ndarray, prob_t: np.ndarray, th: float, lut: np.ndarray) -> tuple:
    """Simple-point warping of a label towards ``prob > th`` (Jain et al. 2010), one transposed slice.

    ``comp0``: the label's cells (:func:`_cell_components`). Returns the warped label's cells in the same
    form and the padded flat indexes of the mismatches that remain, in the order of the last pass. A
    simple point's flip neither splits nor merges cells (that is what simple means), so the cells'
    numbers are carried along instead of labelling every warped label again: a pixel that becomes cell
    takes the number of its 4-neighbour cells (all the same), one that becomes membrane gets 0.
    """
    w, h = prob_t.shape
    stride = h + 2  # transposed: rows are x, columns are y
    comp = comp0.copy()
    s = np.zeros(comp.shape[0], np.uint8)  # the label padded by one pixel of membrane, as the Java does
    for i in range(comp.shape[0]):
        if comp[i] > 0:
            s[i] = 1
    idx = np.empty(h * w, np.int64)
    keys = np.empty(h * w, np.float32)
    n = 0
    for x in range(w):  # column-major, as the Java loop (x outer, y inner): memory order here
        base = (x + 1) * stride + 1
        for y in range(h):
            v = np.float64(prob_t[x, y])
            t = 1 if v > th else 0
            if s[base + y] != t:
                idx[n] = base + y
                keys[n] = np.float32(abs(v - th))
                n += 1
    si = _stable_sort_descending(idx[:n], keys[:n])  # most confident first
    # Passes over the mismatch list. A flipped pixel becomes a match, other pixels never change, so the
    # next pass's list is this list minus the flipped pixels, and it is still sorted (stable sort of a
    # stable sort), exactly what re-scanning and re-sorting would give.
    m = n
    while m > 0:
        k = 0
        for t in range(m):
            i = si[t]
            # bit k = row-major position k of the image's 3x3 patch; image (dy, dx) is i + dx * stride + dy
            code = (
                s[i - stride - 1]
                | (s[i - 1] << 1)
                | (s[i + stride - 1] << 2)
                | (s[i - stride] << 3)
                | (s[i] << 4)
                | (s[i + stride] << 5)
                | (s[i - stride + 1] << 6)
                | (s[i + 1] << 7)
                | (s[i + stride + 1] << 8)
            )
            if lut[code] != 0:
                if s[i] != 0:
                    s[i] = 0
                    comp[i] = 0
                else:
                    s[i] = 1
                    comp[i] = max(max(comp[i - stride], comp[i - 1]), max(comp[i + stride], comp[i + 1]))
            else:
                si[k] = i
                k += 1
        if k == m:
            break
        m = k
    return comp, si[:m].copy()


@njit(cache=True, nogil=True)
def _classify(comp: np.ndarray, w: int, h: int, idx: np.ndarray, radius: int) -> np.ndarray:
    """Classify each remaining mismatch as merge, split, hole/object addition/deletion (Java flags).

    ``comp``: the warped label's cells (:func:`_warp`) of a transposed ``w x h`` slice; ``idx``: the
    mismatches' padded flat indexes.
    """
    stride = h + 2
    m = idx.shape[0]
    out = np.zeros(m, np.int32)
    r = radius
    whole = r < 1 or r > w or r > h
    if whole:
        wx0 = 0
        wy0 = 0
        ww = w
        wh = h
    else:
        ww = 2 * r + 1
        wh = 2 * r + 1
    wstride = wh + 2
    win = np.zeros((ww + 2) * wstride, np.int32)  # the window, padded; 1 = cell, 0 = membrane
    woffs = _offsets(wh)
    queue = np.empty(ww * wh, np.int64)
    uniq = np.empty(9, np.int64)
    for t in range(m):
        x = idx[t] // stride - 1
        y = idx[t] % stride - 1
        nu = 0
        for dx, dy in _RING:
            xx = x + dx
            yy = y + dy
            if 0 <= yy < h and 0 <= xx < w:
                v = comp[(xx + 1) * stride + yy + 1]
                found = False
                for u in range(nu):
                    if uniq[u] == v:
                        found = True
                        break
                if not found:
                    uniq[nu] = v
                    nu += 1
        c = comp[idx[t]]
        if nu == 1 and uniq[0] == 0:
            out[t] = OBJECT_DELETION if c != 0 else OBJECT_ADDITION
        elif nu == 1:
            out[t] = HOLE_ADDITION if c != 0 else HOLE_DELETION
        elif nu == 2:
            if c == 0:
                out[t] = HOLE_ADDITION
            else:
                # window of the warped label around p, centre set to membrane, cells relabelled
                # (4-connected); count distinct values among the centre's 8 neighbours (0 included)
                if not whole:
                    wx0 = x - r
                    wy0 = y - r
                for lx in range(ww):
                    ix = lx + wx0
                    for ly in range(wh):
                        iy = ly + wy0
                        cell = 0 <= iy < h and 0 <= ix < w and comp[(ix + 1) * stride + iy + 1] > 0
                        win[(lx + 1) * wstride + ly + 1] = 1 if cell else 0
                win[(x - wx0 + 1) * wstride + y - wy0 + 1] = 0  # the centre, set to membrane
                has0 = False
                ncomp = 0
                for dx, dy in _RING:
                    gx = x + dx
                    gy = y + dy
                    if whole and not (0 <= gy < h and 0 <= gx < w):
                        continue  # outside the image: not a neighbour
                    j = (gx - wx0 + 1) * wstride + gy - wy0 + 1
                    if win[j] == 0:
                        has0 = True
                    elif win[j] == 1:
                        ncomp += 1
                        _flood(win, j, 1, ncomp + 1, woffs, queue)
                total = ncomp + (1 if has0 else 0)
                out[t] = SPLIT if total > 2 else HOLE_DELETION
        else:
            out[t] = MERGE if c == 0 else SPLIT
    return out


@njit(cache=True, nogil=True)
def _warp_counts(label_t: np.ndarray, prob_t: np.ndarray, ths: np.ndarray, lut: np.ndarray, radius: int) -> np.ndarray:
    """Counts per (threshold, class) of one transposed slice: merge, split, hole addition, hole deletion,
    object addition, object deletion, then all remaining mismatches."""
    w, h = label_t.shape
    nt = ths.shape[0]
    counts = np.zeros((nt, 7), np.int64)
    comp0 = _cell_components(label_t)
    for ti in range(nt):
        comp, idx = _warp(comp0, prob_t, ths[ti], lut)
        cls = _classify(comp, w, h, idx, radius)
        for c in cls:
            counts[ti, _COLUMN[c]] += 1
        counts[ti, 6] += cls.shape[0]
    return counts


# --------------------------------------------------------------------------------------------------
# Results and public functions


@dataclass
class WarpingCurve:
    """Per-threshold counts of the remaining warping mismatches, summed over slices."""

    thresholds: np.ndarray
    splits: np.ndarray
    mergers: np.ndarray
    hole_additions: np.ndarray
    hole_deletions: np.ndarray
    object_additions: np.ndarray
    object_deletions: np.ndarray
    mismatches: np.ndarray
    n_pixels: int

    @property
    def error(self) -> np.ndarray:
        """(splits + mergers) / pixels at each threshold: the challenge's warping error curve."""
        return (self.splits + self.mergers) / float(self.n_pixels)

    @property
    def classic_error(self) -> np.ndarray:
        """All remaining mismatches / pixels: the classic warping error of Jain et al. (2010)."""
        return self.mismatches / float(self.n_pixels)

    @property
    def best_index(self) -> int:
        """First threshold of minimum error (strict <, as the Java loop)."""
        err = self.error
        best, idx = math.inf, 0
        for i, e in enumerate(err):
            if e < best:
                best, idx = float(e), i
        return idx

    @property
    def best_error(self) -> float:
        """min over thresholds of the error: the challenge's warping error."""
        return float(self.error[self.best_index])

    @property
    def best_pixels(self) -> int:
        """Split + merge pixels at the best threshold."""
        i = self.best_index
        return int(self.splits[i] + self.mergers[i])

    @property
    def best_threshold(self) -> float:
        """Threshold of :attr:`best_error`."""
        return float(self.thresholds[self.best_index])


@dataclass
class WarpResult:
    """The warped label and the classified mismatches of one threshold (for figures)."""

    threshold: float
    warped: np.ndarray  # (Z, H, W) uint8 0/1 (or (H, W) for 2D input)
    classes: np.ndarray  # same shape, 0 = no mismatch, else one of the class flags
    counts: dict[str, int] = field(default_factory=dict)


def _warping_curve(
    prob: np.ndarray, lab: np.ndarray, radius: int = WARPING_RADIUS, threads: int | None = None
) -> WarpingCurve:
    """The warping curve of checked inputs (float32 and 0/1 uint8 stacks) on ``threads`` threads."""
    ths = np.array(WARPING_THRESHOLDS)

    def one_slice(k: int) -> np.ndarray:
        # transposed (x, y): the warping visits pixels column-major
        label_t, prob_t = np.ascontiguousarray(lab[k].T), np.ascontiguousarray(prob[k].T)
        return _warp_counts(label_t, prob_t, ths, _SIMPLE_LUT, int(radius))

    counts = sum(_map_slices(one_slice, lab.shape[0], threads))  # integers: exact in any order
    return WarpingCurve(
        thresholds=ths,
        mergers=counts[:, 0],
        splits=counts[:, 1],
        hole_additions=counts[:, 2],
        hole_deletions=counts[:, 3],
        object_additions=counts[:, 4],
        object_deletions=counts[:, 5],
        mismatches=counts[:, 6],
        n_pixels=int(lab.size),
    )


def warping_error_curve(prob_cell: np.ndarray, label: np.ndarray, *, radius: int = WARPING_RADIUS) -> WarpingCurve:
    """Warping mismatches at the 10 warping thresholds (0.0 .. 0.9), summed over slices.

    The label is warped towards ``prob_cell > th`` by flipping simple points only (most confident
    mismatch first), then each remaining mismatch is classified (Jain et al. 2010; the challenge counts
    splits and mergers only).

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell.
        radius: half-size of the window that separates splits from hole deletions (20 in the challenge).

    Returns:
        :class:`WarpingCurve`; ``best_error`` is the warping error of Table 1 of the paper.
    """
    prob, lab = validate_inputs(prob_cell, label)
    return _warping_curve(prob, lab, radius)


def warping_error(prob_cell: np.ndarray, label: np.ndarray) -> float:
    """``min_th`` (split + merge pixels) / pixels after simple-point warping (Table 1: 0.000353).

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell.

    Returns:
        The warping error.
    """
    return warping_error_curve(prob_cell, label).best_error


def warp_label(
    prob_cell: np.ndarray, label: np.ndarray, threshold: float = 0.5, *, radius: int = WARPING_RADIUS
) -> WarpResult:
    """Warp the label towards ``prob_cell > threshold`` and classify the remaining mismatches.

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell.
        threshold: binarisation threshold of the proposal.
        radius: window half-size of the split test.

    Returns:
        :class:`WarpResult` with the warped label and an image of class flags (same dimensions as the
        input).
    """
    prob, lab = validate_inputs(prob_cell, label, warn_inverted=False)
    warped = np.zeros_like(lab)
    classes = np.zeros(lab.shape, np.uint8)
    h, w = lab.shape[1:]
    for k in range(lab.shape[0]):
        label_t, prob_t = np.ascontiguousarray(lab[k].T), np.ascontiguousarray(prob[k].T)
        comp, idx = _warp(_cell_components(label_t), prob_t, float(threshold), _SIMPLE_LUT)
        cls = _classify(comp, w, h, idx, int(radius))
        warped[k] = (comp.reshape(w + 2, h + 2)[1:-1, 1:-1] > 0).T
        classes[k][idx % (h + 2) - 1, idx // (h + 2) - 1] = cls  # padded transposed index -> (y, x)
    counts = {name: int((classes == flag).sum()) for flag, name in MISMATCH_NAMES.items()}
    if np.asarray(label).ndim == 2:
        warped, classes = warped[0], classes[0]
    return WarpResult(float(threshold), warped, classes, counts)


def jain_warping_error(prob_cell: np.ndarray, label: np.ndarray, threshold: float = 0.5) -> float:
    """The classic warping error of Jain et al. (2010): all mismatches left after warping / pixels.

    Unlike the challenge's warping error it also counts hole and object additions and deletions, and it
    uses one threshold.
    """
    res = warp_label(prob_cell, label, threshold)
    return float((res.classes != 0).sum()) / float(res.classes.size)
