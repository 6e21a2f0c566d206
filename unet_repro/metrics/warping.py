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
    validate_inputs,
)
from .simple_points import _SIMPLE_LUT

#: Radius of the window that decides split vs. hole deletion (the challenge call passes 20).
WARPING_RADIUS = 20

# Mismatch classes: the Java flag values.
MERGE = 0x1
SPLIT = 0x2
HOLE_ADDITION = 0x4
OBJECT_DELETION = 0x8
OBJECT_ADDITION = 0x10
HOLE_DELETION = 0x20
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
def _warp_slice(label: np.ndarray, prob: np.ndarray, th: float, lut: np.ndarray) -> tuple:
    """Simple-point warping of a binary label towards ``prob > th`` (Jain et al. 2010), one slice.

    Returns the warped label (uint8 0/1) and the (y, x) of the mismatches that remain, in the order of
    the last pass.
    """
    h, w = label.shape
    s = np.zeros((h + 2, w + 2), np.uint8)
    for y in range(h):
        for x in range(w):
            if label[y, x] != 0:
                s[y + 1, x + 1] = 1
    ys = np.empty(h * w, np.int32)
    xs = np.empty(h * w, np.int32)
    keys = np.empty(h * w, np.float32)
    n = 0
    for x in range(w):  # column-major, as the Java loop (x outer, y inner)
        for y in range(h):
            v = np.float64(prob[y, x])
            t = 1 if v > th else 0
            if s[y + 1, x + 1] != t:
                ys[n] = y
                xs[n] = x
                keys[n] = np.float32(abs(v - th))
                n += 1
    # stable sort by key, descending (most confident first)
    order = np.argsort(-keys[:n], kind="mergesort")
    sy = ys[:n][order].copy()
    sx = xs[:n][order].copy()
    # Passes over the mismatch list. A flipped pixel becomes a match, other pixels never change, so the
    # next pass's list is this list minus the flipped pixels, and it is still sorted (stable sort of a
    # stable sort), exactly what re-scanning and re-sorting would give.
    m = n
    while m > 0:
        k = 0
        for i in range(m):
            y = sy[i] + 1
            x = sx[i] + 1
            code = (
                s[y - 1, x - 1]
                | (s[y - 1, x] << 1)
                | (s[y - 1, x + 1] << 2)
                | (s[y, x - 1] << 3)
                | (s[y, x] << 4)
                | (s[y, x + 1] << 5)
                | (s[y + 1, x - 1] << 6)
                | (s[y + 1, x] << 7)
                | (s[y + 1, x + 1] << 8)
            )
            if lut[code] != 0:
                s[y, x] = 1 - s[y, x]
            else:
                sy[k] = sy[i]
                sx[k] = sx[i]
                k += 1
        if k == m:
            break
        m = k
    return s[1 : h + 1, 1 : w + 1].copy(), sy[:m].copy(), sx[:m].copy()


@njit(cache=True, nogil=True)
def _cell_components(cells: np.ndarray) -> np.ndarray:
    """4-connected components of ``cells != 0`` as a padded flat int32 image (0 = membrane or border).
    Only equality of numbers matters to :func:`_classify`."""
    h, w = cells.shape
    stride = w + 2
    comp = np.zeros((h + 2) * stride, np.int32)
    for y in range(h):
        for x in range(w):
            if cells[y, x] != 0:
                comp[(y + 1) * stride + x + 1] = -1
    offs = np.array([-1, -stride, 1, stride], np.int64)
    queue = np.empty(h * w, np.int64)
    _label_components(comp, h, w, -1, 0, offs, queue)
    return comp


@njit(cache=True, nogil=True)
def _classify(warped: np.ndarray, comp: np.ndarray, ys: np.ndarray, xs: np.ndarray, radius: int) -> np.ndarray:
    """Classify each remaining mismatch as merge, split, hole/object addition/deletion (Java flags).

    ``comp``: the warped label's 4-connected cell components (:func:`_cell_components`)."""
    h, w = warped.shape
    stride = w + 2
    m = ys.shape[0]
    out = np.zeros(m, np.int32)
    r = radius
    whole = r < 1 or r > w or r > h
    if whole:
        wy0 = 0
        wx0 = 0
        wh = h
        ww = w
    else:
        wh = 2 * r + 1
        ww = 2 * r + 1
    wstride = ww + 2
    win = np.zeros((wh + 2) * wstride, np.int32)  # the window, padded; 1 = cell, 0 = membrane
    woffs = np.array([-1, -wstride, 1, wstride], np.int64)
    queue = np.empty(wh * ww, np.int64)
    uniq = np.empty(9, np.int64)
    for i in range(m):
        y = ys[i]
        x = xs[i]
        nu = 0
        for dy in range(-1, 2):
            for dx in range(-1, 2):
                if dy == 0 and dx == 0:
                    continue
                yy = y + dy
                xx = x + dx
                if 0 <= yy < h and 0 <= xx < w:
                    v = comp[(yy + 1) * stride + xx + 1]
                    found = False
                    for t in range(nu):
                        if uniq[t] == v:
                            found = True
                            break
                    if not found:
                        uniq[nu] = v
                        nu += 1
        c = comp[(y + 1) * stride + x + 1]
        if nu == 1 and uniq[0] == 0:
            out[i] = OBJECT_DELETION if c != 0 else OBJECT_ADDITION
        elif nu == 1:
            out[i] = HOLE_ADDITION if c != 0 else HOLE_DELETION
        elif nu == 2:
            if c == 0:
                out[i] = HOLE_ADDITION
            else:
                # window of the warped label around p, centre set to membrane, cells relabelled
                # (4-connected); count distinct values among the centre's 8 neighbours (0 included)
                if not whole:
                    wy0 = y - r
                    wx0 = x - r
                for ly in range(wh):
                    iy = ly + wy0
                    for lx in range(ww):
                        ix = lx + wx0
                        cell = 0 <= iy < h and 0 <= ix < w and warped[iy, ix] != 0
                        win[(ly + 1) * wstride + lx + 1] = 1 if cell else 0
                win[(y - wy0 + 1) * wstride + x - wx0 + 1] = 0  # the centre, set to membrane
                has0 = False
                ncomp = 0
                for dy in range(-1, 2):
                    for dx in range(-1, 2):
                        if dy == 0 and dx == 0:
                            continue
                        gy = y + dy
                        gx = x + dx
                        if whole and not (0 <= gy < h and 0 <= gx < w):
                            continue  # outside the image: not a neighbour
                        j = (gy - wy0 + 1) * wstride + gx - wx0 + 1
                        if win[j] == 0:
                            has0 = True
                        elif win[j] == 1:
                            ncomp += 1
                            _flood(win, j, 1, ncomp + 1, woffs, queue)
                total = ncomp + (1 if has0 else 0)
                out[i] = SPLIT if total > 2 else HOLE_DELETION
        else:
            out[i] = MERGE if c == 0 else SPLIT
    return out


@njit(cache=True, nogil=True)
def _warp_counts(label: np.ndarray, prob: np.ndarray, ths: np.ndarray, lut: np.ndarray, radius: int) -> np.ndarray:
    """Counts per (threshold, class) of one slice; column 6 = all remaining mismatches."""
    nt = ths.shape[0]
    counts = np.zeros((nt, 7), np.int64)
    for ti in range(nt):
        warped, ys, xs = _warp_slice(label, prob, ths[ti], lut)
        cls = _classify(warped, _cell_components(warped), ys, xs, radius)
        for c in cls:
            if c == MERGE:
                counts[ti, 0] += 1
            elif c == SPLIT:
                counts[ti, 1] += 1
            elif c == HOLE_ADDITION:
                counts[ti, 2] += 1
            elif c == HOLE_DELETION:
                counts[ti, 3] += 1
            elif c == OBJECT_ADDITION:
                counts[ti, 4] += 1
            elif c == OBJECT_DELETION:
                counts[ti, 5] += 1
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


def _warping_curve(prob: np.ndarray, lab: np.ndarray, radius: int = WARPING_RADIUS) -> WarpingCurve:
    """The warping curve of checked inputs (float32 and 0/1 uint8 stacks)."""
    ths = np.array(WARPING_THRESHOLDS)
    counts = sum(_map_slices(lambda k: _warp_counts(lab[k], prob[k], ths, _SIMPLE_LUT, int(radius)), lab.shape[0]))
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


def warp_label(prob_cell: np.ndarray, label: np.ndarray, threshold: float = 0.5, *, radius: int = WARPING_RADIUS) -> WarpResult:
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
    for k in range(lab.shape[0]):
        wk, ys, xs = _warp_slice(lab[k], prob[k], float(threshold), _SIMPLE_LUT)
        cls = _classify(wk, _cell_components(wk), ys, xs, int(radius))
        warped[k] = wk
        classes[k][ys, xs] = cls
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
