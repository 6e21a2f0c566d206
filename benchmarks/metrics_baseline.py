"""The previous implementation of the ISBI 2012 metrics, kept as the same-process baseline of
``benchmarks/metrics.py`` (the package's kernels before they shared work across thresholds).

One labelling of the warped label per threshold (column-major breadth-first search), a merge sort of the
mismatches, scipy's component labelling and a full watershed per threshold, and a counting sort of the
label's cells for every contingency table. ``benchmarks/metrics.py`` checks that it gives the package's
curves bit for bit, then times both on the same stack in the same process.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit
from scipy import ndimage

from unet_repro.metrics._common import THRESHOLDS, WARPING_THRESHOLDS, metric_threads
from unet_repro.metrics.simple_points import simple_point_lut
from unet_repro.metrics.warping import (
    HOLE_ADDITION,
    HOLE_DELETION,
    MERGE,
    OBJECT_ADDITION,
    OBJECT_DELETION,
    SPLIT,
    WARPING_RADIUS,
)

# The baseline keeps its own copies of the small helpers it shares with the package (public names only are
# imported), so that the package's internals can change freely and this stays the previous implementation.
_SIMPLE_LUT = simple_point_lut()


def _fscore(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    """precision = 1 if fp == 0, recall = 1 if fn == 0, F = 2PR/(P+R) (0 if P+R == 0)."""
    p = 1.0 if fp == 0 else tp / (tp + fp)
    r = 1.0 if fn == 0 else tp / (tp + fn)
    return p, r, 2.0 * p * r / (p + r) if (p + r) > 0 else 0.0


def _map_slices(fn, n: int, threads: int | None = None) -> list:  # noqa: ANN001
    """``[fn(0), ..., fn(n - 1)]`` on :func:`unet_repro.metrics.metric_threads` threads, in slice order."""
    workers = min(n, metric_threads(threads))
    if workers <= 1:
        return [fn(k) for k in range(n)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, range(n)))


def _rand_stats(i: np.ndarray, j: np.ndarray, c: np.ndarray, n: int) -> tuple[float, float, float]:
    """Foreground-restricted Rand tp, fp, fn of one slice (N^2 normalisation, singleton bookkeeping)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        nn = float(n)
        p = c / nn
        a = np.bincount(i, weights=p)
        on = j > 0
        b = np.bincount(j[on], weights=p[on])
        aux = float(p[~on].sum())
        tp = nn * nn * (float(np.sum(p[on] * p[on])) + aux / nn)
        fp = nn * nn * (float(np.sum(b * b)) + aux / nn) - tp
        fn = nn * nn * float(np.sum(a * a)) - tp
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
        sum_a = float(np.sum(a * np.log(a)))
        sum_b = float(np.sum(b * np.log(b))) - aux * math.log(nn) if nn > 0 else math.nan
        sum_ab = float(np.sum(p[on] * np.log(p[on]))) - aux * math.log(nn) if nn > 0 else math.nan
        h_a, h_b = -sum_a, -sum_b
        prec = (h_a - (sum_b - sum_ab)) / h_a if h_a != 0 else math.nan
        rec = (h_b - (sum_a - sum_ab)) / h_b if h_b != 0 else math.nan
        if h_a == 0:
            prec, rec = 0.0, 1.0
        if h_b == 0:
            prec, rec = 1.0, 0.0
        f = 2.0 * prec * rec / (prec + rec) if (prec + rec) != 0 else math.nan
    return prec, rec, f


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
    a32, b32 = np.ascontiguousarray(a, dtype=np.int32), np.ascontiguousarray(b, dtype=np.int32)
    i, j, c, n = _overlap(a32, int(na), b32, int(nb))
    return i, j, c, int(n)


def warping_counts(prob: np.ndarray, lab: np.ndarray, threads: int | None = None) -> np.ndarray:
    """(threshold, class) counts summed over slices (columns as ``_warp_counts``) of checked inputs."""
    ths = np.array(WARPING_THRESHOLDS)
    per_slice = _map_slices(
        lambda k: _warp_counts(lab[k], prob[k], ths, _SIMPLE_LUT, WARPING_RADIUS), lab.shape[0], threads
    )
    return sum(per_slice)


def rand_family(
    prob: np.ndarray, lab: np.ndarray, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rand tp/fp/fn summed over slices, V_rand and V_info (precision, recall, F) averaged over slices."""
    ths = np.array(THRESHOLDS)
    nt, z = len(ths), lab.shape[0]
    struct = ndimage.generate_binary_structure(2, 1)  # 4-connected

    def one_slice(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, na = ndimage.label(np.ascontiguousarray(lab[k].T), structure=struct)
        p64 = np.ascontiguousarray(prob[k].T, dtype=np.float64)
        out = np.zeros((3, nt, 3))
        for ti, th in enumerate(ths):
            cell = p64 > th
            b, nb = ndimage.label(cell, structure=struct)
            out[0, ti] = _rand_stats(*_contingency(a, int(na), b, int(nb)))
            b = _watershed_thin_t(cell)
            stats = _contingency(a, int(na), b, int(b.max()))
            out[1, ti] = _fscore(*_rand_stats(*stats))
            out[2, ti] = _vinfo_stats(*stats)
        return out

    per_slice = _map_slices(one_slice, z, threads)
    total = np.zeros((3, nt, 3))
    for part in per_slice:  # in slice order, as the package
        total += part
    return total[0], total[1] / z, total[2] / z
