"""The border thinning of V_rand and V_info: a binary watershed that gives the membranes to the cells.

The later ISBI 2012 leaderboard scored V_rand and V_info "after border thinning": Fiji "Trainable Weka
Segmentation" (``RandError.getMaximalVRandAfterThinning``, ``VariationOfInformation.
getMaximalVInfoAfterThinning``) floods the membranes of ``proposal > th`` from its cells with
``trainableSegmentation.utils.WatershedTransform2D`` (Vincent and Soille 1991, "Watersheds in digital
spaces", IEEE PAMI 13(6)), 4-connected. ``tests/data/isbi2012_metrics/README.md`` sums up the
conventions; ``tests/test_metrics.py`` restates the Java flooding in plain Python and checks it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._common import _flood, _label_components, _offsets

_MASK = -2
_BORDER = -3
_WSHED = 0
_CELL = -4  # a cell pixel not numbered yet
_INQUEUE = -5


@njit(cache=True, nogil=True)
def _flood_membranes(lab: np.ndarray, cur: int, offs: np.ndarray, fifo: np.ndarray, mem: np.ndarray) -> int:
    """Flood the membranes (``_MASK``) of a padded transposed image whose cells are numbered 1..cur.

    Level 1 of the Vincent-Soille flooding (see :func:`_watershed_thin_t`), then the membrane regions no
    basin reached become basins ``cur + 1, ...``. ``mem``: the membrane pixels in memory order; ``fifo``
    holds at least len(mem) entries. Returns the last basin number.

    Vincent and Soille keep each pixel's distance to the basins so that a pixel only looks at
    neighbours flooded at its own distance or before; with one FIFO queue that holds for every
    neighbour already labelled (pixels leave the queue in order of distance), so the distances are
    not needed: a queued pixel is marked ``_INQUEUE``, as in the Java.
    """
    head = 0
    tail = 0
    for i in mem:
        for d in range(4):
            if lab[i + offs[d]] >= 0:
                lab[i] = _INQUEUE
                fifo[tail] = i
                tail += 1
                break
    flag = False
    while head < tail:
        p = fifo[head]
        head += 1
        for d in range(4):
            q = p + offs[d]
            lq = lab[q]
            if lq > 0:
                if lab[p] == _INQUEUE or (lab[p] == _WSHED and flag):
                    lab[p] = lq
                elif lab[p] != lq:
                    lab[p] = _WSHED
                    flag = False
            elif lq == _WSHED:
                if lab[p] == _INQUEUE:
                    lab[p] = _WSHED
                    flag = True
            elif lq == _MASK:
                lab[q] = _INQUEUE
                fifo[tail] = q
                tail += 1
    # new minima among the membranes: regions no basin reached, numbered in memory order
    for i in mem:
        if lab[i] == _MASK:
            cur += 1
            _flood(lab, i, _MASK, cur, offs, fifo)
    return cur


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
    stride = h + 2  # transposed: rows are x, columns are y
    lab = np.full((w + 2) * stride, _BORDER, np.int32)
    mem = np.empty(h * w, np.int64)
    n_mem = 0
    for x in range(w):
        for y in range(h):
            i = (x + 1) * stride + y + 1
            if cell_t[x, y]:
                lab[i] = _CELL
            else:
                lab[i] = _MASK
                mem[n_mem] = i
                n_mem += 1
    offs = _offsets(h)
    fifo = np.empty(h * w, np.int64)
    # level 0: the cells; nothing is labelled yet, so they are all new minima
    cur = _label_components(lab, w, h, _CELL, 0, offs, fifo)
    _flood_membranes(lab, cur, offs, fifo, mem[:n_mem])
    out = np.empty((w, h), np.int32)
    for x in range(w):
        base = (x + 1) * stride + 1
        for y in range(h):
            # the Java returns a float label image and converts it with convertToShortProcessor(false),
            # which clamps values above 65535 (all labels here are > 0 or 0)
            out[x, y] = min(lab[base + y], 65535)
    return out


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
