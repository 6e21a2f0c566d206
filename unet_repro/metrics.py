"""The ISBI 2012 challenge metrics, computed exactly as the challenge server did (Table 1 of the paper).

Table 1 of the U-Net paper reports three numbers from the ISBI 2012 EM segmentation challenge: warping
error 0.000353, Rand error 0.0382 and pixel error 0.0611 (section 3.3). The server computed them with
the Fiji "Trainable Weka Segmentation" metric classes (``trainableSegmentation.metrics``); the later
leaderboard replaced them with V_rand and V_info "after border thinning". This module computes all five
with the same conventions (written down in ``shared/spec/isbi2012-metrics/README.md``): the thresholds
built by repeated double addition, 4-connected cells and 8-connected membranes, the simple-point
warping of Jain et al. (2010) with its visiting order and its classification of the remaining
mismatches, the foreground-restricted Rand bookkeeping, and the watershed thinning of V_rand/V_info.

Why hand-written rather than taken from a library: no Python library gives these numbers.
``skimage.metrics.adapted_rand_error`` and ``variation_of_information`` count the proposal's membrane
pixels differently and know nothing of thresholds or thinning; no maintained library implements the
topology-preserving warping error at all. The sequential parts (the warping loop, the simple-point
test, the classification of mismatches, the Vincent-Soille watershed, component labelling) are loops
whose result depends on the visiting order, so they are compiled with numba (``@njit(cache=True)``);
the rest is NumPy/SciPy. This module imports no torch.

Inputs everywhere: ``prob_cell`` is a float map in [0, 1] with 1 = cell (the challenge's submission
format: 1 - membrane probability), ``label`` is 0 = membrane, >0 = cell; both (H, W) or (Z, H, W).
"""

from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numba import njit
from scipy import ndimage

__all__ = [
    "THRESHOLDS",
    "WARPING_THRESHOLDS",
    "WARPING_RADIUS",
    "MERGE",
    "SPLIT",
    "HOLE_ADDITION",
    "OBJECT_DELETION",
    "OBJECT_ADDITION",
    "HOLE_DELETION",
    "MISMATCH_NAMES",
    "challenge_thresholds",
    "simple_point_lut",
    "is_simple_point",
    "validate_inputs",
    "FScoreCurve",
    "WarpingCurve",
    "WarpResult",
    "Evaluation",
    "pixel_error",
    "warping_error",
    "rand_error",
    "v_rand",
    "v_info",
    "isbi2012_scores",
    "pixel_error_curve",
    "warping_error_curve",
    "rand_error_curve",
    "v_rand_curve",
    "v_info_curve",
    "evaluate",
    "warp_label",
    "jain_warping_error",
    "thin_membranes",
]


# --------------------------------------------------------------------------------------------------
# Thresholds and mismatch classes


def challenge_thresholds(max_threshold: float = 1.0, step: float = 0.1, min_threshold: float = 0.0) -> tuple[float, ...]:
    """The thresholds the challenge tried, built as the Java loop built them.

    ``for (th = min; th <= max; th += step)`` in double precision: ``0.30000000000000004``,
    ``0.7999999999999999``, ... (``np.arange``/``np.linspace`` give other doubles and other results).

    Args:
        max_threshold: 1.0 for pixel, Rand, V_rand, V_info (11 values); 0.9 for warping (10 values).
        step: the step added each time.
        min_threshold: the first threshold.

    Returns:
        The thresholds as Python floats (doubles), in order.
    """
    if not (0.0 <= min_threshold <= max_threshold <= 1.0) or not step > 0:
        raise ValueError(
            f"thresholds need 0 <= min ({min_threshold}) <= max ({max_threshold}) <= 1 and step ({step}) > 0"
        )
    out = []
    th = float(min_threshold)
    while th <= max_threshold:
        out.append(th)
        th += step
    return tuple(out)


#: 11 thresholds of pixel error, Rand error, V_rand and V_info (0.0 .. 0.9999999999999999).
THRESHOLDS: tuple[float, ...] = challenge_thresholds(1.0)
#: 10 thresholds of the warping error (0.0 .. 0.8999999999999999).
WARPING_THRESHOLDS: tuple[float, ...] = challenge_thresholds(0.9)
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
# Simple points (2D, 4-connected foreground / 8-connected background)


def _count_components(nodes: list[int], adjacency: dict[int, list[int]]) -> list[set[int]]:
    comps: list[set[int]] = []
    seen: set[int] = set()
    for s in nodes:
        if s in seen:
            continue
        comp, stack = {s}, [s]
        seen.add(s)
        while stack:
            u = stack.pop()
            for v in adjacency[u]:
                if v in nodes and v not in seen:
                    seen.add(v)
                    comp.add(v)
                    stack.append(v)
        comps.append(comp)
    return comps


def _build_simple_point_lut() -> np.ndarray:
    """Simple-point table from the definition (Bertrand & Malandain 1994 topological numbers in 2D)."""
    pos = [(k // 3, k % 3) for k in range(9)]
    ring = [k for k in range(9) if k != 4]

    def adj(conn: int) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for a in ring:
            ra, ca = pos[a]
            out[a] = [
                b for b in ring if b != a and (
                    abs(pos[b][0] - ra) + abs(pos[b][1] - ca) == 1 if conn == 4
                    else max(abs(pos[b][0] - ra), abs(pos[b][1] - ca)) == 1
                )
            ]
        return out

    adj4, adj8 = adj(4), adj(8)
    four_neighbours = {1, 3, 5, 7}
    lut = np.zeros(512, dtype=np.uint8)
    for code in range(512):
        fg = [k for k in ring if (code >> k) & 1]
        bg = [k for k in ring if not (code >> k) & 1]
        t_fg = sum(1 for comp in _count_components(fg, adj4) if comp & four_neighbours)
        t_bg = len(_count_components(bg, adj8))
        lut[code] = 1 if (t_fg == 1 and t_bg == 1) else 0
    return lut


_SIMPLE_LUT = _build_simple_point_lut()


def simple_point_lut() -> np.ndarray:
    """The 512-entry simple-point table (a copy).

    Index bit ``k`` is the value (1 = cell) of row-major position ``k`` of the 3x3 patch, ``k = 4`` the
    centre (ignored). Entry 1: flipping the centre changes no topology, i.e. the cells of the
    neighbourhood have exactly one 4-connected component 4-adjacent to the centre and the membranes
    exactly one 8-connected component (Jain et al. 2010, section 3; Bertrand & Malandain 1994).
    """
    return _SIMPLE_LUT.copy()


def is_simple_point(patch: np.ndarray) -> bool:
    """Whether the centre of a 3x3 binary patch (nonzero = cell) is a simple point."""
    p = np.asarray(patch)
    if p.shape != (3, 3):
        raise ValueError(f"a simple-point test needs a 3x3 patch, got shape {p.shape}")
    code = int(sum((1 << k) for k, v in enumerate(p.ravel()) if v))
    return bool(_SIMPLE_LUT[code])


# --------------------------------------------------------------------------------------------------
# Input checks


def _distinct_values(x: np.ndarray) -> np.ndarray:
    """Up to three distinct values of ``x`` (sorted), without sorting the whole array."""
    flat = x.ravel()
    if flat.dtype == bool:
        return np.unique(flat[[0]]) if flat.all() or not flat.any() else np.array([False, True])
    first = flat[0]
    other = flat[flat != first]
    if other.size == 0:
        return np.array([first])
    second = other[0]
    third = other[other != second]
    vals = [first, second] + ([third[0]] if third.size else [])
    return np.sort(np.array(vals))


def validate_inputs(prob_cell: np.ndarray, label: np.ndarray, *, warn_inverted: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Check and normalise a proposal and a label stack.

    Args:
        prob_cell: float map in [0, 1] (1 = cell), or an integer/bool map with exactly the values 0
            and one other value (a binary segmentation: nonzero = cell at every threshold).
        label: ground truth, 0 = membrane, one other value (> 0) = cell.
        warn_inverted: warn when the proposal is higher on membrane than on cell pixels.

    Returns:
        ``(prob, lab)``: float32 (Z, H, W) proposal (the challenge read 32-bit TIFFs) and uint8
        (Z, H, W) label with 0/1.

    Raises:
        ValueError: wrong dimensions, mismatched shapes, NaN or values outside [0, 1], ambiguous
            integer proposals, non-binary labels.
    """
    prob = np.asarray(prob_cell)
    lab = np.asarray(label)
    if prob.ndim not in (2, 3) or lab.ndim not in (2, 3):
        raise ValueError(
            f"proposal and label must be 2D (H, W) or stacks (Z, H, W); got shapes {prob.shape} and {lab.shape}"
        )
    if prob.shape != lab.shape:
        raise ValueError(
            f"proposal shape {prob.shape} differs from label shape {lab.shape}; pass one probability map per label slice"
        )
    if prob.size == 0:
        raise ValueError("proposal and label are empty")
    # label
    if not (lab.dtype == bool or np.issubdtype(lab.dtype, np.integer) or np.issubdtype(lab.dtype, np.floating)):
        raise ValueError(f"label must be numeric (0 = membrane, >0 = cell), got dtype {lab.dtype}")
    values = _distinct_values(lab)
    if np.issubdtype(values.dtype, np.floating) and np.isnan(values).any():
        raise ValueError("label contains NaN; it must hold 0 (membrane) and one value > 0 (cell)")
    if len(values) > 2 or (values < 0).any() or (len(values) == 2 and values[0] != 0):
        shown = ", ".join(str(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")
        raise ValueError(
            f"label is not binary: it holds {'more than 2' if len(values) > 2 else len(values)} values ({shown}). "
            "It must hold 0 (membrane) and one value > 0 (cell), like the ISBI 2012 train-labels.tif (0/255). "
            "For an instance labelling, pass (instances == 0) -> 0 and the rest -> 255 with membranes between cells."
        )
    lab01 = (lab != 0).astype(np.uint8)
    # proposal
    if prob.dtype == bool or np.issubdtype(prob.dtype, np.integer):
        pv = _distinct_values(prob)
        if len(pv) > 2 or (len(pv) == 2 and pv[0] != 0) or (len(pv) >= 1 and pv.min() < 0):
            shown = ", ".join(str(v) for v in pv[:6]) + (", ..." if len(pv) > 6 else "")
            raise ValueError(
                f"integer proposal with values {shown} is ambiguous: the challenge would count every nonzero grey "
                "value as cell at every threshold. Pass probabilities in [0, 1] as floats (e.g. uint8 / 255.0), "
                "or a binary segmentation holding only 0 and one other value."
            )
        prob32 = (prob != 0).astype(np.float32)
    elif np.issubdtype(prob.dtype, np.floating):
        if np.isnan(prob).any():
            raise ValueError(f"proposal contains {int(np.isnan(prob).sum())} NaN values; pass probabilities in [0, 1]")
        lo, hi = float(prob.min()), float(prob.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"proposal values lie in [{lo:g}, {hi:g}], outside [0, 1]: pass the probability of cell "
                "(e.g. a softmax output, not logits; divide 8-bit maps by 255)"
            )
        prob32 = prob.astype(np.float32)
    else:
        raise ValueError(f"proposal must be a float probability map in [0, 1], got dtype {prob.dtype}")
    if prob32.ndim == 2:
        prob32, lab01 = prob32[None], lab01[None]
    if warn_inverted:
        cell = lab01.astype(bool)
        if cell.any() and (~cell).any():
            m_cell = float(prob32[cell].mean(dtype=np.float64))
            m_mem = float(prob32[~cell].mean(dtype=np.float64))
            if m_mem > m_cell:
                warnings.warn(
                    f"the proposal looks inverted: its mean is {m_mem:.3f} on membrane pixels and {m_cell:.3f} on "
                    "cell pixels. The challenge expects the probability of CELL (1 = cell, i.e. 1 - membrane "
                    "probability); a membrane probability turns a perfect prediction into pixel error 1. "
                    "Pass 1 - prob if this is a membrane map.",
                    UserWarning,
                    stacklevel=3,
                )
    return np.ascontiguousarray(prob32), np.ascontiguousarray(lab01)


# --------------------------------------------------------------------------------------------------
# Compiled kernels


@njit(cache=True, nogil=True)
def _label4(mask: np.ndarray) -> tuple:
    """4-connected components of ``mask != 0`` numbered in column-major order of first pixel."""
    h, w = mask.shape
    lab = np.zeros((h, w), np.int32)
    qy = np.empty(h * w, np.int32)
    qx = np.empty(h * w, np.int32)
    cur = 0
    for x in range(w):
        for y in range(h):
            if mask[y, x] != 0 and lab[y, x] == 0:
                cur += 1
                lab[y, x] = cur
                head = 0
                tail = 1
                qy[0] = y
                qx[0] = x
                while head < tail:
                    cy = qy[head]
                    cx = qx[head]
                    head += 1
                    for d in range(4):
                        ny = cy
                        nx = cx
                        if d == 0:
                            nx = cx - 1
                        elif d == 1:
                            ny = cy - 1
                        elif d == 2:
                            nx = cx + 1
                        else:
                            ny = cy + 1
                        if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] != 0 and lab[ny, nx] == 0:
                            lab[ny, nx] = cur
                            qy[tail] = ny
                            qx[tail] = nx
                            tail += 1
    return lab, cur


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
def _classify(warped: np.ndarray, comp: np.ndarray, ys: np.ndarray, xs: np.ndarray, radius: int) -> np.ndarray:
    """Classify each remaining mismatch as merge, split, hole/object addition/deletion (Java flags)."""
    h, w = warped.shape
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
    visited = np.zeros((wh, ww), np.int32)
    qy = np.empty(wh * ww, np.int32)
    qx = np.empty(wh * ww, np.int32)
    stamp = 0
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
                    v = comp[yy, xx]
                    found = False
                    for t in range(nu):
                        if uniq[t] == v:
                            found = True
                            break
                    if not found:
                        uniq[nu] = v
                        nu += 1
        c = comp[y, x]
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
                stamp += 1
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
                        inside = 0 <= gy < h and 0 <= gx < w
                        if not inside or warped[gy, gx] == 0:
                            has0 = True
                            continue
                        ly = gy - wy0
                        lx = gx - wx0
                        if visited[ly, lx] == stamp:
                            continue
                        ncomp += 1
                        visited[ly, lx] = stamp
                        head = 0
                        tail = 1
                        qy[0] = ly
                        qx[0] = lx
                        while head < tail:
                            cy = qy[head]
                            cx = qx[head]
                            head += 1
                            for d in range(4):
                                ny = cy
                                nx = cx
                                if d == 0:
                                    nx = cx - 1
                                elif d == 1:
                                    ny = cy - 1
                                elif d == 2:
                                    nx = cx + 1
                                else:
                                    ny = cy + 1
                                if ny < 0 or ny >= wh or nx < 0 or nx >= ww:
                                    continue
                                if visited[ny, nx] == stamp:
                                    continue
                                iy = ny + wy0
                                ix = nx + wx0
                                if iy == y and ix == x:
                                    continue  # the centre, set to membrane
                                if iy < 0 or iy >= h or ix < 0 or ix >= w or warped[iy, ix] == 0:
                                    continue
                                visited[ny, nx] = stamp
                                qy[tail] = ny
                                qx[tail] = nx
                                tail += 1
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
        comp, _ = _label4(warped)
        cls = _classify(warped, comp, ys, xs, radius)
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


@njit(cache=True, nogil=True)
def _pixel_counts(prob: np.ndarray, lab: np.ndarray, ths: np.ndarray) -> np.ndarray:
    """Per threshold: cells called cell, cells total, membranes called cell, membranes total."""
    nt = ths.shape[0]
    out = np.zeros((nt, 4), np.int64)
    flat_p = prob.ravel()
    flat_l = lab.ravel()
    for i in range(flat_p.shape[0]):
        v = np.float64(flat_p[i])
        row = 0 if flat_l[i] != 0 else 2
        out[0, row + 1] += 1
        for t in range(nt):
            if v > ths[t]:
                out[t, row] += 1
            else:
                break  # thresholds increase
    for t in range(1, nt):
        out[t, 1] = out[0, 1]
        out[t, 3] = out[0, 3]
    return out


def _map_slices(fn, n: int) -> list:
    """Run ``fn(k)`` for every slice, on as many threads as there are cores (the kernels drop the GIL)."""
    workers = min(n, os.cpu_count() or 1)
    if workers <= 1:
        return [fn(k) for k in range(n)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, range(n)))


@njit(cache=True, nogil=True)
def _watershed_thin_t(cell_t: np.ndarray) -> np.ndarray:
    """Vincent-Soille watershed of a binary map: cells are the basins, membranes are flooded.

    A transcription of ``trainableSegmentation.utils.WatershedTransform2D.apply`` (Fiji Trainable
    Segmentation) as RandError / VariationOfInformation call it: 4-connected, on the proposal
    binarised to 0 (cell) / 255 (membrane), then ``convertToShortProcessor(false)``.

    Basins are the 4-connected cell components, numbered in column-major order (the Java sorts its
    pixel list stably, ties in x-major order). Membrane pixels next to a cell are queued in
    column-major order and flooded with a FIFO queue (neighbour order left, up, right, down); a pixel
    reached from two basins becomes a watershed line (0); a pixel whose line neighbour is met first
    becomes a line with ``flag`` set and is then taken by the next basin neighbour; membrane regions
    no basin reaches become new basins, numbered after the cells. The Java ``flag`` is one variable for
    the whole transform, but it is always written during the current pixel's visit before it is read
    (a pixel is still INQUEUE when popped), so keeping it global or resetting it per pixel gives the
    same result on every input. Labels above 65535 are clamped to 65535, as the Java's conversion of
    its float label image to 16 bits does.

    Takes and returns the TRANSPOSED image (``cell_t[x, y]``), so that the column-major order of the
    image is memory order; works on it padded by one sentinel pixel as a flat array (no bounds checks).
    """
    w, h = cell_t.shape
    INIT = -1
    MASK = -2
    BORDER = -3
    WSHED = 0
    stride = h + 2  # transposed: rows are x, columns are y
    size = (w + 2) * stride
    lab = np.full(size, BORDER, np.int32)
    iscell = np.zeros(size, np.uint8)
    for x in range(w):
        for y in range(h):
            i = (x + 1) * stride + y + 1
            lab[i] = INIT
            if cell_t[x, y]:
                iscell[i] = 1
    dist = np.zeros(size, np.int32)
    fifo = np.empty(2 * h * w + 4, np.int32)
    offs = np.array([-stride, -1, stride, 1], np.int32)  # left, up, right, down in image coordinates
    cur = 0
    # level 0: the cells; nothing is labelled yet, so they are all new minima
    for x in range(w):
        base = (x + 1) * stride + 1
        for y in range(h):
            i = base + y
            if iscell[i] and lab[i] == INIT:
                cur += 1
                lab[i] = cur
                head = 0
                tail = 1
                fifo[0] = i
                while head < tail:
                    c = fifo[head]
                    head += 1
                    for d in range(4):
                        q = c + offs[d]
                        if iscell[q] and lab[q] == INIT:
                            lab[q] = cur
                            fifo[tail] = q
                            tail += 1
    # level 1: the membranes
    for x in range(w):
        base = (x + 1) * stride + 1
        for y in range(h):
            i = base + y
            if not iscell[i]:
                lab[i] = MASK
    head = 0
    tail = 0
    for x in range(w):
        base = (x + 1) * stride + 1
        for y in range(h):
            i = base + y
            if not iscell[i]:
                for d in range(4):
                    if lab[i + offs[d]] >= 0:
                        dist[i] = 1
                        fifo[tail] = i
                        tail += 1
                        break
    curdist = 1
    flag = False
    fifo[tail] = -1  # fictitious pixel
    tail += 1
    while True:
        p = fifo[head]
        head += 1
        if p == -1:
            if head == tail:
                break
            fifo[tail] = -1
            tail += 1
            curdist += 1
            p = fifo[head]
            head += 1
        for d in range(4):
            q = p + offs[d]
            lq = lab[q]
            if dist[q] <= curdist and lq >= 0:
                if lq > 0:
                    if lab[p] == MASK or (lab[p] == WSHED and flag):
                        lab[p] = lq
                    elif lab[p] != lq:
                        lab[p] = WSHED
                        flag = False
                elif lab[p] == MASK:
                    lab[p] = WSHED
                    flag = True
            elif lq == MASK and dist[q] == 0:
                dist[q] = curdist + 1
                fifo[tail] = q
                tail += 1
    # new minima among the membranes
    for x in range(w):
        base = (x + 1) * stride + 1
        for y in range(h):
            i = base + y
            if not iscell[i]:
                dist[i] = 0
                if lab[i] == MASK:
                    cur += 1
                    lab[i] = cur
                    head = 0
                    tail = 1
                    fifo[0] = i
                    while head < tail:
                        c = fifo[head]
                        head += 1
                        for d in range(4):
                            q = c + offs[d]
                            if lab[q] == MASK:
                                lab[q] = cur
                                fifo[tail] = q
                                tail += 1
    out = np.empty((w, h), np.int32)
    for x in range(w):
        base = (x + 1) * stride + 1
        for y in range(h):
            # the Java returns a float label image and converts it with convertToShortProcessor(false),
            # which clamps values above 65535 (all labels here are > 0 or 0)
            out[x, y] = min(lab[base + y], 65535)
    return out


# --------------------------------------------------------------------------------------------------
# Results


@dataclass
class FScoreCurve:
    """Per-threshold statistics of an F-score metric (pixel, Rand, V_rand, V_info)."""

    metric: str
    thresholds: np.ndarray
    fscore: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    tp: np.ndarray | None = None
    fp: np.ndarray | None = None
    fn: np.ndarray | None = None

    @property
    def best_index(self) -> int | None:
        """Index of the first strict maximum of F (the Java loop starts at 0); None if F is never > 0."""
        best, idx = 0.0, None
        for i, f in enumerate(self.fscore):
            if f > best:
                best, idx = float(f), i
        return idx

    @property
    def best_fscore(self) -> float:
        """Max over thresholds of F (0 when none is > 0)."""
        i = self.best_index
        return 0.0 if i is None else float(self.fscore[i])

    @property
    def best_threshold(self) -> float:
        """The threshold of :attr:`best_fscore` (the first threshold when no F is > 0)."""
        i = self.best_index
        return float(self.thresholds[0 if i is None else i])


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


@dataclass
class Evaluation:
    """All five challenge metrics with their per-threshold curves."""

    pixel: FScoreCurve
    warping: WarpingCurve
    rand: FScoreCurve
    v_rand: FScoreCurve
    v_info: FScoreCurve

    def scores(self) -> dict[str, float]:
        """The five numbers: pixel_error, warping_error, rand_error, v_rand, v_info."""
        return {
            "pixel_error": 1.0 - self.pixel.best_fscore,
            "warping_error": self.warping.best_error,
            "rand_error": 1.0 - self.rand.best_fscore,
            "v_rand": self.v_rand.best_fscore,
            "v_info": self.v_info.best_fscore,
        }

    def best_thresholds(self) -> dict[str, float]:
        """The threshold at which each metric reached its best value."""
        return {
            "pixel_error": self.pixel.best_threshold,
            "warping_error": self.warping.best_threshold,
            "rand_error": self.rand.best_threshold,
            "v_rand": self.v_rand.best_threshold,
            "v_info": self.v_info.best_threshold,
        }


# --------------------------------------------------------------------------------------------------
# F-score bookkeeping and contingency tables


def _fscore(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    """precision = 1 if fp == 0, recall = 1 if fn == 0, F = 2PR/(P+R) (0 if P+R == 0)."""
    p = 1.0 if fp == 0 else tp / (tp + fp)
    r = 1.0 if fn == 0 else tp / (tp + fn)
    f = 2.0 * p * r / (p + r) if (p + r) > 0 else 0.0
    return p, r, f


@njit(cache=True, nogil=True)
def _overlap(a: np.ndarray, na: int, b: np.ndarray, nb: int) -> tuple:
    """Nonzero entries (i, j, count) of the overlap of labels ``a`` (i >= 1 only) and ``b`` (j >= 0).

    Counting sort of the pixels by ``a``, then one pass per ``a`` label with a reusable counter over
    ``b``: linear time, no table of size na x nb (noisy proposals have tens of thousands of labels).
    """
    fa = a.ravel()
    fb = b.ravel()
    starts = np.zeros(na + 2, np.int64)
    for p in range(fa.shape[0]):
        if fa[p] > 0:
            starts[fa[p] + 1] += 1
    for i in range(1, na + 2):
        starts[i] += starts[i - 1]
    n = starts[na + 1]
    order = np.empty(n, np.int64)
    pos = starts.copy()
    for p in range(fa.shape[0]):
        if fa[p] > 0:
            order[pos[fa[p]]] = p
            pos[fa[p]] += 1
    cnt = np.zeros(nb + 1, np.int64)
    touched = np.empty(nb + 1, np.int64)
    oi = np.empty(n, np.int64)
    oj = np.empty(n, np.int64)
    oc = np.empty(n, np.float64)
    m = 0
    for i in range(1, na + 1):
        nt = 0
        for k in range(starts[i], starts[i + 1]):
            j = fb[order[k]]
            if cnt[j] == 0:
                touched[nt] = j
                nt += 1
            cnt[j] += 1
        for t in range(nt):
            j = touched[t]
            oi[m] = i
            oj[m] = j
            oc[m] = cnt[j]
            m += 1
            cnt[j] = 0
    return oi[:m], oj[:m], oc[:m], n


def _contingency(a: np.ndarray, na: int, b: np.ndarray, nb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Nonzero entries (i, j, count) of the overlap of ``a`` (i >= 1) and ``b``, and n = #(a > 0)."""
    i, j, c, n = _overlap(np.ascontiguousarray(a, dtype=np.int32), int(na), np.ascontiguousarray(b, dtype=np.int32), int(nb))
    return i, j, c, int(n)


def _rand_stats(i: np.ndarray, j: np.ndarray, c: np.ndarray, n: int) -> tuple[float, float, float]:
    """Foreground-restricted Rand tp, fp, fn of one slice (N^2 normalisation, singleton bookkeeping)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        nn = float(n)
        p = c / nn
        a = np.bincount(i, weights=p)
        on = j > 0
        b = np.bincount(j[on], weights=p[on])
        aux = float(p[~on].sum())
        sum_a2 = float(np.sum(a * a))
        sum_b2 = float(np.sum(b * b)) + aux / nn
        sum_ab2 = float(np.sum(p[on] * p[on])) + aux / nn
        n2 = nn * nn
        tp = n2 * sum_ab2
        fp = n2 * sum_b2 - tp
        fn = n2 * sum_a2 - tp
    return tp, fp, fn


def _vinfo_stats(i: np.ndarray, j: np.ndarray, c: np.ndarray, n: int) -> tuple[float, float, float]:
    """Information-theoretic precision, recall and F of one slice (foreground-restricted)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        nn = float(n)
        p = c / nn
        a = np.bincount(i, weights=p)
        a = a[a > 0]
        on = j > 0
        b = np.bincount(j[on], weights=p[on])
        b = b[b > 0]
        aux = float(p[~on].sum())
        pab = p[on]
        sum_a = float(np.sum(a * np.log(a)))
        sum_b = float(np.sum(b * np.log(b))) - aux * math.log(nn) if nn > 0 else math.nan
        sum_ab = float(np.sum(pab * np.log(pab))) - aux * math.log(nn) if nn > 0 else math.nan
        h_a = -sum_a
        h_b = -sum_b
        h_a_given_b = sum_b - sum_ab
        h_b_given_a = sum_a - sum_ab
        prec = (h_a - h_a_given_b) / h_a if h_a != 0 else math.nan
        rec = (h_b - h_b_given_a) / h_b if h_b != 0 else math.nan
        if h_a == 0:
            prec, rec = 0.0, 1.0
        if h_b == 0:
            prec, rec = 1.0, 0.0
        f = 2.0 * prec * rec / (prec + rec) if (prec + rec) != 0 else math.nan
    return prec, rec, f


# --------------------------------------------------------------------------------------------------
# The five metrics


def pixel_error_curve(prob_cell: np.ndarray, label: np.ndarray, *, _checked: bool = False) -> FScoreCurve:
    """Pixel error statistics at the 11 challenge thresholds (positive class = cell, micro average).

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell.

    Returns:
        :class:`FScoreCurve`; ``1 - best_fscore`` is the pixel error of Table 1 of the paper.
    """
    prob, lab = (prob_cell, label) if _checked else validate_inputs(prob_cell, label)
    ths = np.array(THRESHOLDS)
    counts = sum(_map_slices(lambda k: _pixel_counts(prob[k], lab[k], ths), lab.shape[0]))
    tp = counts[:, 0].astype(np.float64)
    fn = (counts[:, 1] - counts[:, 0]).astype(np.float64)
    fp = counts[:, 2].astype(np.float64)
    prf = np.array([_fscore(a, b, c) for a, b, c in zip(tp, fp, fn)])
    return FScoreCurve("pixel", ths, prf[:, 2], prf[:, 0], prf[:, 1], tp, fp, fn)


def warping_error_curve(
    prob_cell: np.ndarray, label: np.ndarray, *, radius: int = WARPING_RADIUS, _checked: bool = False
) -> WarpingCurve:
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
    prob, lab = (prob_cell, label) if _checked else validate_inputs(prob_cell, label)
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


def _rand_family(prob: np.ndarray, lab: np.ndarray, which: Sequence[str]) -> dict[str, FScoreCurve]:
    """Rand error (micro), V_rand and V_info (macro over slices) at the 11 thresholds."""
    ths = np.array(THRESHOLDS)
    nt, z = len(ths), lab.shape[0]
    struct = ndimage.generate_binary_structure(2, 1)  # 4-connected
    thin = "v_rand" in which or "v_info" in which

    def one_slice(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # transposed (x, y): the watershed scans column-major; the scores ignore the pixel order
        a, na = ndimage.label(np.ascontiguousarray(lab[k].T), structure=struct)
        p64 = np.ascontiguousarray(prob[k].T, dtype=np.float64)
        rand_k = np.zeros((nt, 3))
        vr_k = np.zeros((nt, 3))
        vi_k = np.zeros((nt, 3))
        for ti, th in enumerate(ths):
            cell = p64 > th
            if "rand" in which:
                b, nb = ndimage.label(cell, structure=struct)
                rand_k[ti] = _rand_stats(*_contingency(a, int(na), b, int(nb)))
            if thin:
                b = _watershed_thin_t(cell)
                stats = _contingency(a, int(na), b, int(b.max()))
                if "v_rand" in which:
                    vr_k[ti] = _fscore(*_rand_stats(*stats))
                if "v_info" in which:
                    vi_k[ti] = _vinfo_stats(*stats)
        return rand_k, vr_k, vi_k

    per_slice = _map_slices(one_slice, z)
    out: dict[str, FScoreCurve] = {}
    if "rand" in which:
        rand_t = np.zeros((nt, 3))
        for rand_k, _, _ in per_slice:  # summed in slice order, as the original
            rand_t += rand_k
        prf = np.array([_fscore(*row) for row in rand_t])
        out["rand"] = FScoreCurve("rand", ths, prf[:, 2], prf[:, 0], prf[:, 1], rand_t[:, 0], rand_t[:, 1], rand_t[:, 2])
    for name, col in (("v_rand", 1), ("v_info", 2)):
        if name in which:
            total = np.zeros((nt, 3))
            for parts in per_slice:
                total += parts[col]
            mean = total / z  # macro average: mean of the per-slice scores
            out[name] = FScoreCurve(name, ths, mean[:, 2], mean[:, 0], mean[:, 1])
    return out


def rand_error_curve(prob_cell: np.ndarray, label: np.ndarray, *, _checked: bool = False) -> FScoreCurve:
    """Foreground-restricted Rand statistics at the 11 thresholds (tp/fp/fn summed over slices).

    Returns:
        :class:`FScoreCurve`; ``1 - best_fscore`` is the Rand error of Table 1 of the paper.
    """
    prob, lab = (prob_cell, label) if _checked else validate_inputs(prob_cell, label)
    return _rand_family(prob, lab, ("rand",))["rand"]


def v_rand_curve(prob_cell: np.ndarray, label: np.ndarray, *, _checked: bool = False) -> FScoreCurve:
    """V_rand (after watershed thinning of the membranes) per threshold, mean over slices."""
    prob, lab = (prob_cell, label) if _checked else validate_inputs(prob_cell, label)
    return _rand_family(prob, lab, ("v_rand",))["v_rand"]


def v_info_curve(prob_cell: np.ndarray, label: np.ndarray, *, _checked: bool = False) -> FScoreCurve:
    """V_info (after watershed thinning of the membranes) per threshold, mean over slices."""
    prob, lab = (prob_cell, label) if _checked else validate_inputs(prob_cell, label)
    return _rand_family(prob, lab, ("v_info",))["v_info"]


def pixel_error(prob_cell: np.ndarray, label: np.ndarray) -> float:
    """``1 - max_th F`` of the cell pixels (Table 1 of the paper: 0.0611 for U-Net).

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell.

    Returns:
        The pixel error.
    """
    return 1.0 - pixel_error_curve(prob_cell, label).best_fscore


def warping_error(prob_cell: np.ndarray, label: np.ndarray) -> float:
    """``min_th`` (split + merge pixels) / pixels after simple-point warping (Table 1: 0.000353).

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell.

    Returns:
        The warping error.
    """
    return warping_error_curve(prob_cell, label).best_error


def rand_error(prob_cell: np.ndarray, label: np.ndarray) -> float:
    """``1 - max_th F`` of the foreground-restricted Rand index (Table 1: 0.0382).

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell.

    Returns:
        The Rand error.
    """
    return 1.0 - rand_error_curve(prob_cell, label).best_fscore


def v_rand(prob_cell: np.ndarray, label: np.ndarray) -> float:
    """Max over thresholds of the foreground-restricted Rand F-score after membrane thinning.

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell.

    Returns:
        V_rand (higher is better; the later ISBI 2012 leaderboard's main score).
    """
    return v_rand_curve(prob_cell, label).best_fscore


def v_info(prob_cell: np.ndarray, label: np.ndarray) -> float:
    """Max over thresholds of the information-theoretic F-score after membrane thinning.

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell.

    Returns:
        V_info (higher is better).
    """
    return v_info_curve(prob_cell, label).best_fscore


def evaluate(prob_cell: np.ndarray, label: np.ndarray) -> Evaluation:
    """All five metrics with their per-threshold curves, sharing the thinning between V_rand and V_info.

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell.

    Returns:
        :class:`Evaluation` (``.scores()`` gives the five numbers).
    """
    prob, lab = validate_inputs(prob_cell, label)
    fam = _rand_family(prob, lab, ("rand", "v_rand", "v_info"))
    return Evaluation(
        pixel=pixel_error_curve(prob, lab, _checked=True),
        warping=warping_error_curve(prob, lab, _checked=True),
        rand=fam["rand"],
        v_rand=fam["v_rand"],
        v_info=fam["v_info"],
    )


def isbi2012_scores(prob_cell: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """The five ISBI 2012 numbers: ``pixel_error``, ``warping_error``, ``rand_error``, ``v_rand``, ``v_info``.

    Args:
        prob_cell: probability of cell in [0, 1] (1 = cell), (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell, same shape.

    Returns:
        A dict with exactly those five keys.
    """
    return evaluate(prob_cell, label).scores()


# --------------------------------------------------------------------------------------------------
# Pieces for figures


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
        comp, _ = _label4(wk)
        cls = _classify(wk, comp, ys, xs, int(radius))
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


def thin_membranes(prob_cell: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The segmentation V_rand and V_info score: watershed thinning of ``prob_cell > threshold``.

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        threshold: binarisation threshold.

    Returns:
        int32 labels of the same shape: 0 = one-pixel watershed lines, >0 = regions (per slice),
        clamped at 65535 like the Java's 16-bit label image.
    """
    prob = np.asarray(prob_cell, dtype=np.float32)
    two_d = prob.ndim == 2
    stack = prob[None] if two_d else prob
    out = np.stack([_watershed_thin_t(np.ascontiguousarray(s.T, dtype=np.float64) > threshold).T for s in stack])
    return out[0] if two_d else out
