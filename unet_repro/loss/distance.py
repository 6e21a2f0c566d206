"""The distances ``d1`` and ``d2`` of eq. 2 of the paper (section 3), exactly and fast.

Eq. 2 adds ``w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2))`` to the weight of pixel ``x``, with ``d1`` the
distance to the border of the nearest cell and ``d2`` the distance to the border of the second nearest
cell. :func:`border_distances` computes both, as Euclidean distances exactly as
``scipy.ndimage.distance_transform_edt`` measures them (:mod:`unet_repro.loss.weights` builds the map from them).

Why this is hand-written. Library code (and most public U-Net ports) computes one full-image distance
transform per cell (and often sorts the stack of K maps): O(K * H * W) work, one to two seconds per ISBI
slice. The border term, however, falls below any tolerance ``tol`` once
``d1 + d2 > R = sigma * sqrt(2 ln(w0 / tol))`` (:func:`unet_repro.loss.weights.cutoff_distance`), so a cell
farther than R from a pixel never matters there. :func:`border_distances` computes each cell's exact
distance transform only inside the cell's bounding box grown by ``ceil(R)`` pixels (exact there, because
the whole cell lies inside the window) and keeps a running first and second minimum. The transform is the
separable algorithm of Felzenszwalb & Huttenlocher (Theory of Computing 8, 2012) on integer squared
distances, compiled with numba so that the small transforms of a slice (one per cell, about a hundred on an
ISBI slice) cost no Python overhead; no library offers "the two nearest labels within a radius".
``benchmarks/weight_maps.py`` measures the speed-up against one full-image transform per cell and writes it
to ``results/benchmarks/weight_maps.csv`` (the one place that speed figure is kept).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import ndimage as ndi

__all__ = ["border_distances"]

_NONE = np.int64(1) << np.int64(62)  # "no cell pixel in this window" (squared distance sentinel)


@numba.njit(cache=True, nogil=True)
def _two_nearest_sq(cells: np.ndarray, boxes: np.ndarray, pad: int, d1: np.ndarray, d2: np.ndarray) -> None:
    """Running first/second minimum over cells of the squared distance to each cell (in place).

    For cell ``i`` (id ``i + 1``), the exact squared Euclidean distance transform is computed in its
    bounding box ``boxes[i]`` grown by ``pad`` (clipped to the image) with the separable algorithm of
    Felzenszwalb & Huttenlocher (2012): a 1D distance along each column, then the lower envelope of
    parabolas along each row. Squared distances are integers, so the result is exact.
    """
    h, w = cells.shape
    none = np.int64(1) << np.int64(62)
    maxh = 0
    maxw = 0
    for i in range(boxes.shape[0]):
        maxh = max(maxh, min(boxes[i, 1] + pad, h) - max(boxes[i, 0] - pad, 0))
        maxw = max(maxw, min(boxes[i, 3] + pad, w) - max(boxes[i, 2] - pad, 0))
    g = np.empty((maxh, maxw), np.int64)
    v = np.empty(maxw, np.int64)
    fv = np.empty(maxw, np.int64)
    z = np.empty(maxw + 1, np.float64)
    run = np.empty(maxw, np.int64)
    for i in range(boxes.shape[0]):
        if boxes[i, 1] <= boxes[i, 0]:
            continue  # id without pixels
        cid = i + 1
        y0 = max(boxes[i, 0] - pad, 0)
        y1 = min(boxes[i, 1] + pad, h)
        x0 = max(boxes[i, 2] - pad, 0)
        x1 = min(boxes[i, 3] + pad, w)
        hh = y1 - y0
        ww = x1 - x0
        # pass 1: distance along each column to the nearest pixel of the cell (row-major sweeps down, up)
        for x in range(ww):
            run[x] = -1
        for y in range(hh):
            for x in range(ww):
                if cells[y0 + y, x0 + x] == cid:
                    run[x] = 0
                elif run[x] >= 0:
                    run[x] += 1
                g[y, x] = run[x] if run[x] >= 0 else none
        for x in range(ww):
            run[x] = -1
        for y in range(hh - 1, -1, -1):
            for x in range(ww):
                if cells[y0 + y, x0 + x] == cid:
                    run[x] = 0
                elif run[x] >= 0:
                    run[x] += 1
                if run[x] >= 0 and run[x] < g[y, x]:
                    g[y, x] = run[x]
        # pass 2: lower envelope of the parabolas (q - p)^2 + g(p)^2 along each row
        for y in range(hh):
            k = -1
            for q in range(ww):
                gq = g[y, q]
                if gq == none:
                    continue
                fq = gq * gq
                if k < 0:
                    k = 0
                    v[0] = q
                    fv[0] = fq
                    z[0] = -np.inf
                    z[1] = np.inf
                    continue
                s = ((fq + q * q) - (fv[k] + v[k] * v[k])) / (2.0 * (q - v[k]))
                while s <= z[k]:
                    k -= 1
                    s = ((fq + q * q) - (fv[k] + v[k] * v[k])) / (2.0 * (q - v[k]))
                k += 1
                v[k] = q
                fv[k] = fq
                z[k] = s
                z[k + 1] = np.inf
            if k < 0:
                continue  # no pixel of the cell in this row's columns: distance > window
            j = 0
            yy = y0 + y
            for q in range(ww):
                while z[j + 1] < q:
                    j += 1
                dq = q - v[j]
                val = dq * dq + fv[j]
                xx = x0 + q
                a = d1[yy, xx]
                if val < a:
                    d2[yy, xx] = a
                    d1[yy, xx] = val
                elif val < d2[yy, xx]:
                    d2[yy, xx] = val


def border_distances(cells: np.ndarray, k: int, max_distance: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``d1`` and ``d2`` of eq. 2 for every pixel: distances to the nearest and second-nearest cell.

    Each cell's exact Euclidean distance transform (integer squared distances, so bit-for-bit the values
    ``scipy.ndimage.distance_transform_edt`` gives) is computed inside the cell's bounding box grown by
    ``ceil(max_distance)`` pixels, where it is exact because the whole cell lies inside; a running first
    and second minimum over cells is kept. ``max_distance=None`` uses the whole image for every cell.

    Args:
        cells: (H, W) cell ids 1..K, 0 = background (see :func:`label_cells`).
        k: the number of cells K.
        max_distance: distances beyond this need not be exact (see Returns).

    Returns:
        ``(d1, d2)`` float64 (H, W). Exact wherever ``d2 <= max_distance``. Elsewhere each is the true
        distance to some cell (two different cells) or ``inf``, so ``d1 + d2`` is never below the exact
        value: the border term is never over-estimated, and under-estimated only where it is below
        ``w0 exp(-max_distance^2 / (2 sigma^2))``.
    """
    cells = np.ascontiguousarray(cells, dtype=np.int32)
    h, w = cells.shape
    boxes = np.zeros((k, 4), np.int64)
    for i, sl in enumerate(ndi.find_objects(cells, max_label=k)):
        if sl is not None:
            boxes[i] = (sl[0].start, sl[0].stop, sl[1].start, sl[1].stop)
    pad = h + w if max_distance is None else int(math.ceil(max_distance))
    d1 = np.full((h, w), _NONE, np.int64)
    d2 = np.full((h, w), _NONE, np.int64)
    _two_nearest_sq(cells, boxes, pad, d1, d2)
    out1 = np.sqrt(d1.astype(np.float64))
    out2 = np.sqrt(d2.astype(np.float64))
    out1[d1 == _NONE] = np.inf
    out2[d2 == _NONE] = np.inf
    return out1, out2
