"""What every ISBI 2012 metric shares: thresholds, input checks, the F-score curve, threads, one flood fill.

The thresholds are built as the challenge's Java loop built them (``for (th = 0; th <= max; th += 0.1)``
in double precision), the F-score bookkeeping is the one of the Fiji "Trainable Weka Segmentation"
metric classes (``trainableSegmentation.metrics``) that computed Table 1 of the paper (section 3.3);
``tests/data/isbi2012_metrics/README.md`` sums up these conventions.

The compiled pieces work on images padded by one sentinel pixel and stored as flat arrays, so a
4-neighbour step is ``index + offset`` with no bounds checks: :func:`_flood` is the one breadth-first
flood fill that labelling (:func:`_label_components`), the warping's mismatch classification and the
watershed thinning all use. :func:`_stable_sort_descending` orders the warping's mismatches.
:func:`_map_slices` scores the slices on :func:`metric_threads` threads and returns their results in
slice order, so that sums over slices do not depend on the thread count.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numba import njit

# --------------------------------------------------------------------------------------------------
# Thresholds


def challenge_thresholds(
    max_threshold: float = 1.0, step: float = 0.1, min_threshold: float = 0.0
) -> tuple[float, ...]:
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


def _shown(values: np.ndarray) -> str:
    """The values for an error message (at most three come from :func:`_distinct_values`)."""
    return ", ".join(str(v) for v in values)


def _check_label(lab: np.ndarray) -> np.ndarray:
    """0/1 uint8 copy of a binary label (0 = membrane, one value > 0 = cell); ValueError otherwise."""
    if not (lab.dtype == bool or np.issubdtype(lab.dtype, np.integer) or np.issubdtype(lab.dtype, np.floating)):
        raise ValueError(f"label must be numeric (0 = membrane, >0 = cell), got dtype {lab.dtype}")
    values = _distinct_values(lab)
    if np.issubdtype(values.dtype, np.floating) and np.isnan(values).any():
        raise ValueError("label contains NaN; it must hold 0 (membrane) and one value > 0 (cell)")
    if len(values) > 2 or (values < 0).any() or (len(values) == 2 and values[0] != 0):
        raise ValueError(
            f"label is not binary: it holds {'more than 2' if len(values) > 2 else len(values)} values "
            f"({_shown(values)}). "
            "It must hold 0 (membrane) and one value > 0 (cell), like the ISBI 2012 train-labels.tif (0/255). "
            "For an instance labelling, pass (instances == 0) -> 0 and the rest -> 255 with membranes between cells."
        )
    return (lab != 0).astype(np.uint8)


def _check_proposal(prob: np.ndarray) -> np.ndarray:
    """float32 copy of a proposal in [0, 1] (or of a binary integer segmentation); ValueError otherwise."""
    if prob.dtype == bool or np.issubdtype(prob.dtype, np.integer):
        pv = _distinct_values(prob)
        if len(pv) > 2 or (len(pv) == 2 and pv[0] != 0) or (len(pv) >= 1 and pv.min() < 0):
            raise ValueError(
                f"integer proposal with values {_shown(pv)} is ambiguous: the challenge would count every nonzero grey "
                "value as cell at every threshold. Pass probabilities in [0, 1] as floats (e.g. uint8 / 255.0), "
                "or a binary segmentation holding only 0 and one other value."
            )
        return (prob != 0).astype(np.float32)
    if np.issubdtype(prob.dtype, np.floating):
        if np.isnan(prob).any():
            raise ValueError(f"proposal contains {int(np.isnan(prob).sum())} NaN values; pass probabilities in [0, 1]")
        lo, hi = float(prob.min()), float(prob.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"proposal values lie in [{lo:g}, {hi:g}], outside [0, 1]: pass the probability of cell "
                "(e.g. a softmax output, not logits; divide 8-bit maps by 255)"
            )
        return prob.astype(np.float32)
    raise ValueError(f"proposal must be a float probability map in [0, 1], got dtype {prob.dtype}")


def validate_inputs(
    prob_cell: np.ndarray, label: np.ndarray, *, warn_inverted: bool = True
) -> tuple[np.ndarray, np.ndarray]:
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
            f"proposal shape {prob.shape} differs from label shape {lab.shape}; "
            "pass one probability map per label slice"
        )
    if prob.size == 0:
        raise ValueError("proposal and label are empty")
    lab01 = _check_label(lab)
    prob32 = _check_proposal(prob)
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
# F-score curves


def _fscore(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    """precision = 1 if fp == 0, recall = 1 if fn == 0, F = 2PR/(P+R) (0 if P+R == 0)."""
    p = 1.0 if fp == 0 else tp / (tp + fp)
    r = 1.0 if fn == 0 else tp / (tp + fn)
    f = 2.0 * p * r / (p + r) if (p + r) > 0 else 0.0
    return p, r, f


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

    @classmethod
    def from_counts(
        cls, metric: str, thresholds: np.ndarray, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray
    ) -> FScoreCurve:
        """The curve of a micro-averaged metric: tp/fp/fn summed over slices, then F per threshold."""
        prf = np.array([_fscore(a, b, c) for a, b, c in zip(tp, fp, fn, strict=True)])
        return cls(metric, thresholds, prf[:, 2], prf[:, 0], prf[:, 1], tp, fp, fn)

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


# --------------------------------------------------------------------------------------------------
# Slices in parallel

#: Environment variable that sets how many threads the metrics use (unset: one per available core).
THREADS_ENV = "UNET_REPRO_METRIC_THREADS"


def metric_threads(threads: int | None = None) -> int:
    """How many threads the metrics run slices on.

    Args:
        threads: a count >= 1, or None for the environment variable ``UNET_REPRO_METRIC_THREADS`` and,
            when that is unset or empty, one thread per core this process may use.

    Returns:
        The thread count (1 = the slices one after the other in the calling thread).

    Raises:
        ValueError: a count below 1 or not a whole number.
    """
    source = "threads"
    if threads is None:
        raw = os.environ.get(THREADS_ENV, "").strip()
        if not raw:
            return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        source = THREADS_ENV
        try:
            threads = int(raw)
        except ValueError:
            threads = 0
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 1:
        shown = os.environ.get(THREADS_ENV) if source == THREADS_ENV else threads
        raise ValueError(
            f"{source}={shown!r}: the number of metric threads must be a whole number >= 1 "
            f"(1 = one slice after the other); unset {THREADS_ENV} for one per core"
        )
    return int(threads)


def _map_slices(fn, n: int, threads: int | None = None) -> list:
    """``[fn(0), ..., fn(n - 1)]``, the slices spread over :func:`metric_threads` threads (the compiled
    kernels release the GIL). The list is in slice order whatever the thread count, and callers add
    its entries in that order, so every result is the same to the last bit with 1 or many threads."""
    workers = min(n, metric_threads(threads))
    if workers <= 1:
        return [fn(k) for k in range(n)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, range(n)))


# --------------------------------------------------------------------------------------------------
# Compiled helpers: neighbours and the flood fill on padded flat images, a stable sort


@njit(cache=True, nogil=True)
def _offsets(cols: int) -> np.ndarray:
    """Flat offsets of the 4 neighbours (previous row, previous column, next row, next column) in an image
    of ``cols`` columns padded by one pixel. On the transposed slices the kernels work on (rows are x),
    that is left, up, right, down in the image: the neighbour order of the challenge's watershed."""
    return np.array([-(cols + 2), -1, cols + 2, 1], np.int64)


@njit(cache=True, nogil=True)
def _stable_sort_descending(items: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``items`` sorted by ``keys`` (float32 >= 0) descending, ties in their given order: what the
    Java's stable sort gives. A least-significant-digit radix sort (three passes of 11 bits) on the
    keys' bit patterns, which order non-negative floats as their values; a third of the time of a
    merge sort for the tens of thousands of mismatches of a 512 x 512 slice."""
    n = items.shape[0]
    rank = np.empty(n, np.uint32)
    bits = keys.view(np.uint32)
    for t in range(n):
        rank[t] = np.uint32(0xFFFFFFFF) - bits[t]  # ascending rank = descending key
    src = items.copy()
    dst = np.empty_like(src)
    rsrc = rank
    rdst = np.empty_like(rank)
    count = np.empty(2049, np.int64)
    for shift in (0, 11, 22):
        count[:] = 0
        for t in range(n):
            count[((rsrc[t] >> shift) & 2047) + 1] += 1
        for b in range(2048):
            count[b + 1] += count[b]
        for t in range(n):
            b = (rsrc[t] >> shift) & 2047
            dst[count[b]] = src[t]
            rdst[count[b]] = rsrc[t]
            count[b] += 1
        src, dst = dst, src
        rsrc, rdst = rdst, rsrc
    return src


@njit(cache=True, nogil=True)
def _flood(lab: np.ndarray, seed: int, target: int, value: int, offs: np.ndarray, queue: np.ndarray) -> int:
    """Breadth-first 4-neighbour flood fill: ``seed`` and every pixel joined to it through pixels equal
    to ``target`` become ``value``. ``lab`` is a padded flat image whose border never equals ``target``;
    ``queue`` holds at least as many entries as the region. Returns the region's size."""
    lab[seed] = value
    queue[0] = seed
    head = 0
    tail = 1
    while head < tail:
        c = queue[head]
        head += 1
        for d in range(4):
            q = c + offs[d]
            if lab[q] == target:
                lab[q] = value
                queue[tail] = q
                tail += 1
    return tail


@njit(cache=True, nogil=True)
def _label_components(
    lab: np.ndarray, rows: int, cols: int, target: int, first: int, offs: np.ndarray, queue: np.ndarray
) -> int:
    """Number the 4-connected regions of pixels equal to ``target`` ``first + 1, first + 2, ...`` in memory
    order of their first pixel (``lab``: padded flat ``rows x cols`` image). Returns the last number."""
    stride = cols + 2
    cur = first
    for r in range(rows):
        base = (r + 1) * stride + 1
        for c in range(cols):
            if lab[base + c] == target:
                cur += 1
                _flood(lab, base + c, target, cur, offs, queue)
    return cur
