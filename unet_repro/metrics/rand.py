"""Rand error, V_rand and V_info: how the proposal's cells overlap the label's cells.

Rand error (Table 1 of the paper: 0.0382 for U-Net) is the challenge's ``1 - RandError.
getForegroundRestrictedRandIndexMaximalFScore(0.0, 1.0, 0.1)``; V_rand and V_info (the later
leaderboard) are ``RandError.getMaximalVRandAfterThinning`` and ``VariationOfInformation.
getMaximalVInfoAfterThinning`` of Fiji "Trainable Weka Segmentation" (``trainableSegmentation.metrics``;
Arganda-Carreras et al. 2015, "Crowdsourcing the creation of image segmentation algorithms for
connectomics", Front. Neuroanat. 9:142). All three count only the label's cell pixels (foreground
restriction) and give each cell pixel that the proposal calls membrane a singleton object. Rand error
sums tp/fp/fn over slices (micro average); V_rand and V_info average the per-slice scores (macro) of
the proposal thinned by :mod:`unet_repro.metrics.watershed`. ``tests/data/isbi2012_metrics/README.md``
sums up these conventions; ``skimage.metrics.adapted_rand_error`` counts membranes differently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit

from ._common import THRESHOLDS, FScoreCurve, _fscore, _label_components, _map_slices, _offsets, validate_inputs
from .watershed import _BORDER, _CELL, _MASK, _flood_membranes


@njit(cache=True, nogil=True)
def _cells_by_label(lab_t: np.ndarray) -> tuple:
    """The label's 4-connected cells (numbered in memory order) as a counting sort of their pixels.

    Returns ``(starts, order)``: the padded flat indexes of the pixels of cell ``i`` are
    ``order[starts[i]:starts[i + 1]]``, in memory order; ``order.shape[0]`` is the number of cell pixels.
    """
    w, h = lab_t.shape
    stride = h + 2
    a = np.zeros((w + 2) * stride, np.int32)
    for x in range(w):
        for y in range(h):
            if lab_t[x, y] != 0:
                a[(x + 1) * stride + y + 1] = -1
    na = _label_components(a, w, h, -1, 0, _offsets(h), np.empty(h * w, np.int64))
    starts = np.zeros(na + 2, np.int64)
    for p in range(a.shape[0]):
        if a[p] > 0:
            starts[a[p] + 1] += 1
    for i in range(1, na + 2):
        starts[i] += starts[i - 1]
    order = np.empty(starts[na + 1], np.int64)
    pos = starts.copy()
    for p in range(a.shape[0]):
        if a[p] > 0:
            order[pos[a[p]]] = p
            pos[a[p]] += 1
    return starts, order


def _workspace(w: int, h: int, n: int) -> tuple:
    """Buffers for :func:`_overlaps_at` on a transposed ``w x h`` slice with ``n`` cell pixels, allocated
    once per slice (fresh large allocations cost a page fault per 4 KiB and serialise threads): padded
    labels (border set), cell flags, membrane list, flood queue, and per table (Rand, thinned) a
    counter (zero), its touched list and the entries (i, j, count)."""
    size = (w + 2) * (h + 2)
    lab = np.full(size, _BORDER, np.int32)
    ints = [np.empty(n, np.int64) for _ in range(6)]
    return (
        lab,
        np.zeros(size, np.uint8),
        np.empty(h * w, np.int64),
        np.empty(h * w, np.int64),
        np.zeros(h * w + 2, np.int64),
        np.zeros(65536, np.int64),
        ints[0],
        ints[1],
        ints[2],
        ints[3],
        ints[4],
        ints[5],
        np.empty(n, np.float64),
        np.empty(n, np.float64),
    )


@njit(cache=True, nogil=True)
def _emit(
    i: int, cnt: np.ndarray, touched: np.ndarray, nt: int, oi: np.ndarray, oj: np.ndarray, oc: np.ndarray, m: int
) -> int:
    """Append the entries (i, j, cnt[j]) of the touched ``j`` in order, clear their counts; returns m."""
    for t in range(nt):
        j = touched[t]
        oi[m] = i
        oj[m] = j
        oc[m] = cnt[j]
        m += 1
        cnt[j] = 0
    return m


@njit(cache=True, nogil=True)
def _overlaps_at(
    starts: np.ndarray, order: np.ndarray, prob_t: np.ndarray, th: float, thin: bool, work: tuple
) -> tuple:
    """Nonzero entries (i, j, count) of the overlap of the label's cells (i >= 1) with the cells of
    ``prob_t > th`` (Rand error; j = 0 for membrane) and with the regions of its watershed thinning
    (V_rand, V_info; empty when ``thin`` is False), at one threshold.

    Both share one labelling of the proposal's cells: the thinning floods the membranes from those
    basins. The tables come from one pass per cell ``i`` of the label with reusable counters (linear
    time, no table of size na x nb: noisy proposals have tens of thousands of labels); entries come by
    ``i``, then by first pixel in memory order. ``work``: the buffers of :func:`_workspace`, reused from
    one threshold to the next.
    """
    w, h = prob_t.shape
    stride = h + 2
    lab, iscell, mem, fifo, cnt_r, cnt_w = work[0], work[1], work[2], work[3], work[4], work[5]
    touched_r, touched_w, ri, rj, wi, wj, rc, wc = work[6:]
    n_mem = 0
    for x in range(w):
        base = (x + 1) * stride + 1
        for y in range(h):
            if np.float64(prob_t[x, y]) > th:
                lab[base + y] = _CELL
                iscell[base + y] = 1
            else:
                lab[base + y] = _MASK
                iscell[base + y] = 0
                mem[n_mem] = base + y
                n_mem += 1
    offs = _offsets(h)
    cur = _label_components(lab, w, h, _CELL, 0, offs, fifo)
    if thin:
        _flood_membranes(lab, cur, offs, fifo, mem[:n_mem])
    m_r = 0
    m_w = 0
    for i in range(1, starts.shape[0] - 1):
        nt_r = 0
        nt_w = 0
        for k in range(starts[i], starts[i + 1]):
            q = order[k]
            j = lab[q] if iscell[q] else 0
            if cnt_r[j] == 0:
                touched_r[nt_r] = j
                nt_r += 1
            cnt_r[j] += 1
            if thin:
                j = min(lab[q], 65535)  # the Java's 16-bit label image
                if cnt_w[j] == 0:
                    touched_w[nt_w] = j
                    nt_w += 1
                cnt_w[j] += 1
        m_r = _emit(i, cnt_r, touched_r, nt_r, ri, rj, rc, m_r)
        m_w = _emit(i, cnt_w, touched_w, nt_w, wi, wj, wc, m_w)
    return ri[:m_r].copy(), rj[:m_r].copy(), rc[:m_r].copy(), wi[:m_w].copy(), wj[:m_w].copy(), wc[:m_w].copy()


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


def _rand_family(
    prob: np.ndarray, lab: np.ndarray, which: Sequence[str], threads: int | None = None
) -> dict[str, FScoreCurve]:
    """Rand error (micro), V_rand and V_info (macro over slices) at the 11 thresholds, the slices on
    ``threads`` threads; the per-slice results are added in slice order whatever the thread count."""
    ths = np.array(THRESHOLDS)
    nt, z = len(ths), lab.shape[0]
    thin = "v_rand" in which or "v_info" in which

    def one_slice(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # transposed (x, y): the watershed scans column-major; the scores ignore the pixel order
        starts, order = _cells_by_label(np.ascontiguousarray(lab[k].T))
        n = int(order.shape[0])
        prob_t = np.ascontiguousarray(prob[k].T)
        work = _workspace(*prob_t.shape, n)
        rand_k = np.zeros((nt, 3))
        vr_k = np.zeros((nt, 3))
        vi_k = np.zeros((nt, 3))
        for ti, th in enumerate(ths):
            ri, rj, rc, wi, wj, wc = _overlaps_at(starts, order, prob_t, float(th), thin, work)
            if "rand" in which:
                rand_k[ti] = _rand_stats(ri, rj, rc, n)
            if "v_rand" in which:
                vr_k[ti] = _fscore(*_rand_stats(wi, wj, wc, n))
            if "v_info" in which:
                vi_k[ti] = _vinfo_stats(wi, wj, wc, n)
        return rand_k, vr_k, vi_k

    per_slice = _map_slices(one_slice, z, threads)
    out: dict[str, FScoreCurve] = {}
    if "rand" in which:
        rand_t = np.zeros((nt, 3))
        for rand_k, _, _ in per_slice:  # summed in slice order, as the original
            rand_t += rand_k
        out["rand"] = FScoreCurve.from_counts("rand", ths, rand_t[:, 0], rand_t[:, 1], rand_t[:, 2])
    for name, col in (("v_rand", 1), ("v_info", 2)):
        if name in which:
            total = np.zeros((nt, 3))
            for parts in per_slice:
                total += parts[col]
            mean = total / z  # macro average: mean of the per-slice scores
            out[name] = FScoreCurve(name, ths, mean[:, 2], mean[:, 0], mean[:, 1])
    return out


def rand_error_curve(prob_cell: np.ndarray, label: np.ndarray) -> FScoreCurve:
    """Foreground-restricted Rand statistics at the 11 thresholds (tp/fp/fn summed over slices).

    Returns:
        :class:`FScoreCurve`; ``1 - best_fscore`` is the Rand error of Table 1 of the paper.
    """
    return _rand_family(*validate_inputs(prob_cell, label), ("rand",))["rand"]


def v_rand_curve(prob_cell: np.ndarray, label: np.ndarray) -> FScoreCurve:
    """V_rand (after watershed thinning of the membranes) per threshold, mean over slices."""
    return _rand_family(*validate_inputs(prob_cell, label), ("v_rand",))["v_rand"]


def v_info_curve(prob_cell: np.ndarray, label: np.ndarray) -> FScoreCurve:
    """V_info (after watershed thinning of the membranes) per threshold, mean over slices."""
    return _rand_family(*validate_inputs(prob_cell, label), ("v_info",))["v_info"]


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
