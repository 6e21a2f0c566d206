"""Pixel-wise loss weights: class balance and the separation-border term (section 3, eq. 2 of the paper).

The paper pre-computes a weight map for every ground-truth segmentation "to compensate the different
frequency of pixels from a certain class in the training data set, and to force the network to learn the
small separation borders that we introduce between touching cells":

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2)),   w0 = 10, sigma ~ 5 pixels     (eq. 2)

with d1 the distance to the border of the nearest cell and d2 the distance to the border of the second
nearest cell.

What exactly this module computes (the paper leaves these choices open):

- **Cells.** For a binary label (two distinct values, 0 = membrane/background, >0 = cell), the cells are
  the 4-connected components of ``label > 0``. For an instance image (0 = background, each other value
  one cell) every non-zero value is one cell, connected or not.
- **Distances.** ``d1(x)``, ``d2(x)`` are Euclidean distances, exactly as
  ``scipy.ndimage.distance_transform_edt`` measures them, from pixel ``x`` to the nearest pixel of the
  nearest cell and to the nearest pixel of the second-nearest (different) cell.
- **Where the border term applies.** Background (membrane) pixels only; cell pixels get ``w_c`` alone. With
  fewer than two cells the term is zero everywhere.
- **Class weights.** ``w_c`` is the balanced weight ``N / (2 N_k)`` of the pixel's class (N pixels, N_k of
  class k), so that both classes carry the same total weight. :func:`class_balance` computes it for one
  slice or for a whole stack; notebook 02 explains why training uses the whole stack.

Why this is hand-written. Library code (and most public U-Net ports) computes one full-image distance
transform per cell (and often sorts the stack of K maps): O(K * H * W) work, one to two seconds per ISBI
slice. The border term, however, falls below any tolerance ``tol`` once
``d1 + d2 > R = sigma * sqrt(2 ln(w0 / tol))`` (R = 26.3 px for the paper's w0 = 10, sigma = 5 and
tol = 1e-5), so a cell farther than R from a pixel never matters there. :func:`border_distances` computes
each cell's exact distance transform only inside the cell's bounding box grown by ``ceil(R)`` pixels
(exact there, because the whole cell lies inside the window) and keeps a running first and second
minimum. The transform is the separable algorithm of Felzenszwalb & Huttenlocher (Theory of Computing 8,
2012) on integer squared distances, compiled with numba so that the small transforms of a slice (one per
cell, about a hundred on an ISBI slice) cost no Python overhead; no library offers "the two nearest labels
within a radius". Where a pixel's true
``d1 + d2`` exceeds R the computed ``d1 + d2`` is at least as large (or infinite), so the term is off by
less than ``tol``. The map is therefore within ``tol`` (plus float32 rounding, ~1e-6) of the exact eq. 2
everywhere; ``tests/test_weights.py`` checks this against a per-cell reference on real ISBI slices, and
``benchmarks/weight_maps.py`` measures the speed-up against one full-image transform per cell and writes
it to ``results/benchmarks/weight_maps.csv`` (the one place that speed figure is kept).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numba
import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "TRUNCATION_TOL",
    "class_balance",
    "label_cells",
    "cutoff_distance",
    "border_distances",
    "border_weight_map",
    "weight_maps",
    "separation_borders",
]

#: The border term is dropped where it is below this value (see the module docstring). 10x below the
#: 1e-4 accuracy promised, so that float32 rounding (~1e-6 for weights ~10) stays well inside it.
TRUNCATION_TOL = 1e-5

#: Bump when the computed maps change, so that cached maps (see :func:`weight_maps`) are recomputed.
_ALGORITHM_VERSION = "eq2-window-fh-edt-v1"

_FOUR = ndi.generate_binary_structure(2, 1)


# --------------------------------------------------------------------------------------------- checks
def _as_label(label: np.ndarray, ndims: Sequence[int], what: str = "label") -> np.ndarray:
    """Validate a label array: integer or bool dtype, wanted rank, non-empty, non-negative."""
    if not isinstance(label, np.ndarray):
        label = np.asarray(label)
    if label.ndim not in ndims:
        want = " or ".join(f"{n}D" for n in ndims)
        raise ValueError(
            f"{what} must be a {want} array, got shape {label.shape}; pass one slice (H, W)"
            + (" or a stack (Z, H, W)" if 3 in ndims else "")
        )
    if label.size == 0 or 0 in label.shape:
        raise ValueError(f"{what} is empty (shape {label.shape}); pass a label image with pixels")
    if label.dtype.kind == "f":
        if np.isnan(label).any():
            raise ValueError(f"{what} contains NaN; labels must be integers (0 = membrane/background, >0 = cell)")
        raise ValueError(
            f"{what} has float dtype {label.dtype}; labels must be integer or bool (0 = membrane/background, "
            ">0 = cell). Threshold a probability map first (e.g. (p > 0.5).astype(np.uint8)) or cast an "
            "integer-valued float array with .astype(np.int64)."
        )
    if label.dtype.kind not in "biu":
        raise ValueError(f"{what} has dtype {label.dtype}; labels must be integer or bool arrays")
    if label.dtype.kind == "i" and label.min() < 0:
        raise ValueError(f"{what} has negative values (min {label.min()}); use 0 for background and >0 for cells")
    return label


def class_balance(label: np.ndarray) -> tuple[float, float]:
    """Balanced class weights ``w_c`` of eq. 2: ``N / (2 N_k)`` for membrane (0) and cell (>0) pixels.

    With these weights both classes carry the same total weight (``N_k * w_k = N / 2``), which is what the
    paper's "compensate the different frequency of pixels from a certain class in the training data set"
    (section 3) asks for; the mean of ``w_c`` over the counted pixels is 1.

    Args:
        label: one slice (H, W) or a whole stack (Z, H, W); 0 = membrane/background, >0 = cell.
            For a stack the counts run over all its pixels (the paper balances the training *data set*).

    Returns:
        ``(w_membrane, w_cell)``.

    Raises:
        ValueError: bad input, or a class with no pixel (its weight would be infinite): compute the
            balance over the whole stack, or pass ``class_weights`` explicitly to :func:`border_weight_map`.
    """
    label = _as_label(label, (2, 3))
    n = label.size
    n_cell = int(np.count_nonzero(label))
    n_mem = n - n_cell
    if n_cell == 0 or n_mem == 0:
        which = "cell (>0)" if n_cell == 0 else "membrane/background (0)"
        raise ValueError(
            f"label has no {which} pixel, so the balanced weight N / (2 N_k) of that class is undefined. "
            "Compute class_balance over the whole training stack and pass it as class_weights=(w_membrane, "
            "w_cell), or check that the label uses 0 for membrane and >0 for cells."
        )
    return n / (2.0 * n_mem), n / (2.0 * n_cell)


# ---------------------------------------------------------------------------------------------- cells
def _looks_like_instances(label: np.ndarray) -> tuple[bool, str]:
    """Plausibility test for an instance image (called when a label has more than two values).

    An instance image consists of regions; a grey-value image, a probability map or an interpolated
    binary label does not: there, most labelled pixels touch a pixel of another non-zero value, or some
    value occurs only as a thin seam between other values.
    """
    a = label
    fg = a > 0
    diff = np.zeros(a.shape, bool)
    for sl_a, sl_b in (
        ((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
        ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
    ):
        d = (a[sl_a] != a[sl_b]) & fg[sl_a] & fg[sl_b]
        diff[sl_a] |= d
        diff[sl_b] |= d
    n_fg = int(fg.sum())
    frac = diff.sum() / max(n_fg, 1)
    if frac > 0.5:
        return False, f"{frac:.0%} of its non-zero pixels touch a pixel of another non-zero value"
    values, counts = np.unique(a[fg], return_counts=True)
    seam_values, seam_n = np.unique(a[diff], return_counts=True)
    seam_counts = np.zeros(values.size, np.int64)
    seam_counts[np.searchsorted(values, seam_values)] = seam_n
    seams = values[(seam_counts == counts) & (counts > 1)]
    if seams.size > 0 and seams.size >= 0.25 * values.size:
        return False, (
            f"{seams.size} of its {values.size} non-zero values occur only as seams between other "
            "values (as in an interpolated or blurred binary label)"
        )
    return True, ""


def label_cells(label: np.ndarray, instances: bool | None = None) -> tuple[np.ndarray, int]:
    """The cells of a label image as consecutive integers 1..K (0 = background).

    Args:
        label: (H, W) integer/bool label: binary (0 = membrane, >0 = cell) or an instance image
            (0 = background, 1..K or any positive values = cells).
        instances: ``None`` decides from the values: two distinct values (or fewer) = binary, more =
            instance image (checked for plausibility); ``False`` forces binary, ``True`` instances.

    Returns:
        ``(cells, K)``: int32 (H, W) with cell ids 1..K, and K. Binary labels give the 4-connected
        components of ``label > 0``.

    Raises:
        ValueError: when a label with more than two values does not look like an instance image.
    """
    label = _as_label(label, (2,))
    if label.dtype.itemsize == 1:  # bool/uint8/int8 (non-negative): counting is faster than sorting
        values = np.flatnonzero(np.bincount(label.view(np.uint8).ravel(), minlength=256))
    else:
        values = np.unique(label)
    nonzero = values[values != 0]
    if instances is None:
        if nonzero.size > 1:
            ok, why = _looks_like_instances(label)
            if not ok:
                raise ValueError(
                    f"label has {nonzero.size + (values[0] == 0)} distinct values but is not an instance image: "
                    f"{why}. For a binary label threshold it (e.g. label > 127); if it really is an instance "
                    "image, pass instances=True."
                )
            instances = True
        else:
            instances = False
    if not instances:
        cells, k = ndi.label(label > 0, structure=_FOUR)
        return cells.astype(np.int32, copy=False), int(k)
    if nonzero.size == 0:
        return np.zeros(label.shape, np.int32), 0
    # consecutive ids 1..K in the order of the values
    lut_values = np.concatenate([[0], nonzero]) if values[0] == 0 else nonzero
    ids = np.searchsorted(lut_values, label)
    if values[0] != 0:
        ids = ids + 1
    return ids.astype(np.int32), int(nonzero.size)


def cutoff_distance(w0: float, sigma: float, tol: float = TRUNCATION_TOL) -> float:
    """The ``d1 + d2`` beyond which the border term ``w0 exp(-(d1+d2)^2 / (2 sigma^2))`` is below ``tol``.

    Args:
        w0, sigma: the parameters of eq. 2.
        tol: the truncation tolerance.

    Returns:
        ``sigma * sqrt(2 ln(w0 / tol))`` (0 when ``w0 <= tol``: the term never matters).
    """
    if w0 <= tol:
        return 0.0
    return float(sigma * math.sqrt(2.0 * math.log(w0 / tol)))


def _check_params(w0: float, sigma: float) -> None:
    if not (isinstance(w0, (int, float, np.floating, np.integer)) and math.isfinite(w0) and w0 >= 0):
        raise ValueError(f"w0 must be a finite number >= 0 (the paper uses 10), got {w0!r}")
    if not (isinstance(sigma, (int, float, np.floating, np.integer)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0 in pixels (the paper uses 5), got {sigma!r}")


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


# ---------------------------------------------------------------------------------------- weight maps
def border_weight_map(
    label: np.ndarray,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: tuple[float, float] | None = None,
    *,
    instances: bool | None = None,
) -> np.ndarray:
    """The weight map ``w(x)`` of eq. 2 for one label slice (section 3, Fig. 3d of the paper).

    Args:
        label: (H, W) integer/bool label: binary (0 = membrane/background, >0 = cell; cells are the
            4-connected components) or an instance image (0 = background, each non-zero value one cell).
        w0: amplitude of the border term (paper: 10).
        sigma: width of the border term in pixels (paper: "approximately 5 pixels").
        class_weights: ``(w_membrane, w_cell)``, the ``w_c`` of eq. 2. ``None`` means
            ``class_balance(label)`` of this slice (which fails for a slice without membrane or without
            cell pixels: pass the stack's balance then, as :func:`weight_maps` does).
        instances: how to read ``label`` (see :func:`label_cells`); ``None`` decides from its values.

    Returns:
        float32 (H, W): ``w_c(x)`` plus, on background pixels, ``w0 exp(-(d1 + d2)^2 / (2 sigma^2))``;
        within 1e-4 of the exact value everywhere (truncation below :data:`TRUNCATION_TOL`). With fewer
        than two cells (e.g. an all-cell or all-background slice) there is no border term: ``w = w_c``.

    Raises:
        ValueError: bad label (dtype, shape, NaN, negative, not an instance image), bad parameters, or
            ``class_weights=None`` on a slice that lacks a class.
    """
    label = _as_label(label, (2,))
    _check_params(w0, sigma)
    cells, k = label_cells(label, instances)  # first: a label that is no label fails with that message
    if class_weights is None:
        class_weights = class_balance(label)
    try:
        w_mem, w_cell = (float(v) for v in class_weights)
    except (TypeError, ValueError):
        raise ValueError(f"class_weights must be a pair (w_membrane, w_cell), got {class_weights!r}") from None
    if not (math.isfinite(w_mem) and math.isfinite(w_cell) and w_mem >= 0 and w_cell >= 0):
        raise ValueError(f"class_weights must be finite and >= 0, got {class_weights!r}")
    background = cells == 0
    out = np.where(background, w_mem, w_cell)  # float64
    if k >= 2 and w0 > 0:
        r = cutoff_distance(w0, sigma)
        d1, d2 = border_distances(cells, k, max_distance=r)
        s = d1 + d2
        near = background & (s <= r)
        out[near] += w0 * np.exp(-(s[near] ** 2) / (2.0 * sigma * sigma))
    return out.astype(np.float32)


def _cache_key(
    labels: np.ndarray, w0: float, sigma: float, class_weights: tuple[float, float], instances: bool | None
) -> str:
    h = hashlib.sha256()
    h.update(_ALGORITHM_VERSION.encode())
    h.update(
        repr(
            (
                labels.shape,
                str(labels.dtype),
                float(w0),
                float(sigma),
                tuple(float(c) for c in class_weights),
                instances,
                TRUNCATION_TOL,
            )
        ).encode()
    )
    h.update(np.ascontiguousarray(labels).tobytes())
    return h.hexdigest()[:24]


def weight_maps(
    labels: np.ndarray,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: tuple[float, float] | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    instances: bool | None = None,
) -> np.ndarray:
    """Weight maps (eq. 2) for a whole training stack, computed once and optionally cached on disk.

    Args:
        labels: (Z, H, W) labels (or one (H, W) slice, returned as (1, H, W)).
        w0, sigma: as in :func:`border_weight_map`.
        class_weights: ``(w_membrane, w_cell)``; ``None`` means ``class_balance(labels)`` over the **whole
            stack** (the paper balances the training data set; notebook 02 explains the choice).
        cache_dir: folder for a cache file ``weight_maps_<key>.npy``. The key is a SHA-256 over the label
            bytes, shape and dtype, ``w0``, ``sigma``, the class weights, ``instances``, the truncation
            tolerance and an algorithm version string, so a changed label or parameter never reuses a
            stale map. A hit is loaded with ``np.load`` (about 30 MB for 30 x 512 x 512: tens of
            milliseconds); a miss computes the maps (about 30-50 ms per 512 x 512 ISBI slice, 1-1.5 s
            for the 30-slice stack on one CPU core) and writes the file atomically (temporary file +
            rename), so concurrent trainers never
            read half a file. ``None`` disables caching.
        instances: how to read each slice (see :func:`label_cells`).

    Returns:
        float32 (Z, H, W) weight maps.
    """
    labels = _as_label(labels, (2, 3), "labels")
    if labels.ndim == 2:
        labels = labels[None]
    _check_params(w0, sigma)
    if class_weights is None:
        class_weights = class_balance(labels)
    class_weights = (float(class_weights[0]), float(class_weights[1]))
    path = None
    if cache_dir is not None:
        folder = Path(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"weight_maps_{_cache_key(labels, w0, sigma, class_weights, instances)}.npy"
        if path.is_file():
            try:
                cached = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                cached = None  # unreadable: recompute and overwrite
            if cached is not None and cached.shape == labels.shape and cached.dtype == np.float32:
                return cached
    maps = np.empty(labels.shape, np.float32)
    for z in range(labels.shape[0]):
        maps[z] = border_weight_map(labels[z], w0, sigma, class_weights, instances=instances)
    if path is not None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, maps, allow_pickle=False)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return maps


# --------------------------------------------------------------------------------- separation borders
def separation_borders(instances: np.ndarray, width: int = 2) -> np.ndarray:
    """Insert background between touching instances (the paper's "morphological operations", section 3).

    A pixel of instance k becomes background when a pixel of another instance lies within Euclidean
    distance ``width / 2`` of it, so two instances that touched along a straight edge end up separated by
    a background gap ``width`` pixels wide (each side gives up ``width / 2`` pixels). Pixels next to the
    background only are kept. Instances that touch only diagonally are 4-separated already and are left
    alone when ``width == 2``.

    Args:
        instances: (H, W) instance image (0 = background, each positive value one instance).
        width: the gap in pixels; an even integer >= 2.

    Returns:
        The instance image with the separation borders set to 0 (same dtype). An instance thinner than the
        gap may lose pixels or vanish; count the instances again if that matters.
    """
    instances = _as_label(instances, (2,), "instances")
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 2 or width % 2:
        raise ValueError(
            f"width must be an even integer >= 2 (each side of a contact gives up width/2 pixels), got {width!r}"
        )
    r = width // 2
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = (yy**2 + xx**2) <= r * r
    lab = instances.astype(np.int64)
    big = int(lab.max()) + 1  # "no instance" for the minimum (a small number: cval passes through a double)
    hi = ndi.maximum_filter(lab, footprint=disk, mode="constant", cval=0)
    lo = ndi.minimum_filter(np.where(lab == 0, big, lab), footprint=disk, mode="constant", cval=big)
    border = (lab > 0) & ((hi > lab) | (lo < lab))
    out = instances.copy()
    out[border] = 0
    return out
