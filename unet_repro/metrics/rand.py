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
from scipy import ndimage

from ._common import THRESHOLDS, FScoreCurve, _fscore, _map_slices, validate_inputs
from .watershed import _watershed_thin_t


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
