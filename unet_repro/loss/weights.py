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
  one cell) every non-zero value is one cell, connected or not (:func:`label_cells`, :mod:`unet_repro.loss.cells`).
- **Distances.** ``d1(x)``, ``d2(x)`` are Euclidean distances, exactly as
  ``scipy.ndimage.distance_transform_edt`` measures them, from pixel ``x`` to the nearest pixel of the
  nearest cell and to the nearest pixel of the second-nearest (different) cell.
- **Where the border term applies.** Background (membrane) pixels only; cell pixels get ``w_c`` alone. With
  fewer than two cells the term is zero everywhere.
- **Class weights.** ``w_c`` is the balanced weight ``N / (2 N_k)`` of the pixel's class (N pixels, N_k of
  class k), so that both classes carry the same total weight. :func:`class_balance` computes it for one
  slice or for a whole stack; notebook 02 explains why training uses the whole stack.

Truncation. The border term falls below any tolerance ``tol`` once
``d1 + d2 > R = sigma * sqrt(2 ln(w0 / tol))`` (R = 26.3 px for the paper's w0 = 10, sigma = 5 and
tol = 1e-5; :func:`cutoff_distance`), so a cell farther than R from a pixel never matters there.
:func:`border_distances` (:mod:`unet_repro.loss.distance`, which says why that kernel is hand-written) computes
``d1`` and ``d2`` exactly wherever they matter. Where a pixel's true ``d1 + d2`` exceeds R the computed
``d1 + d2`` is at least as large (or infinite), so the term is off by less than ``tol``. The map is
therefore within ``tol`` (plus float32 rounding, ~1e-6) of the exact eq. 2 everywhere;
``tests/test_weights.py`` checks this against a per-cell reference on real ISBI slices, notebook 02 against
:func:`per_cell_weight_map` (the exact map, one distance transform per cell), and
``benchmarks/weight_maps.py`` measures the speed against one full-image transform per cell and writes it to
``results/benchmarks/weight_maps.csv`` (the one place that speed figure is kept).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .cells import _as_label, label_cells
from .distance import border_distances

__all__ = [
    "TRUNCATION_TOL",
    "class_balance",
    "cutoff_distance",
    "border_weight_map",
    "per_cell_weight_map",
    "weight_maps",
    "separation_borders",
]

#: The border term is dropped where it is below this value (see the module docstring). 10x below the
#: 1e-4 accuracy promised, so that float32 rounding (~1e-6 for weights ~10) stays well inside it.
TRUNCATION_TOL = 1e-5

#: Bump when the computed maps change, so that cached maps (see :func:`weight_maps`) are recomputed.
_ALGORITHM_VERSION = "eq2-window-fh-edt-v1"


# -------------------------------------------------------------------------------------- class weights
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


# ----------------------------------------------------------------------------------------- border term
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


def _class_weights(label: np.ndarray, class_weights: tuple[float, float] | None) -> tuple[float, float]:
    """``class_weights`` checked, or the slice's own :func:`class_balance` when it is None."""
    if class_weights is None:
        class_weights = class_balance(label)
    try:
        w_mem, w_cell = (float(v) for v in class_weights)
    except (TypeError, ValueError):
        raise ValueError(f"class_weights must be a pair (w_membrane, w_cell), got {class_weights!r}") from None
    if not (math.isfinite(w_mem) and math.isfinite(w_cell) and w_mem >= 0 and w_cell >= 0):
        raise ValueError(f"class_weights must be finite and >= 0, got {class_weights!r}")
    return w_mem, w_cell


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
    w_mem, w_cell = _class_weights(label, class_weights)
    background = cells == 0
    out = np.where(background, w_mem, w_cell)  # float64
    if k >= 2 and w0 > 0:
        r = cutoff_distance(w0, sigma)
        d1, d2 = border_distances(cells, k, max_distance=r)
        s = d1 + d2
        near = background & (s <= r)
        out[near] += w0 * np.exp(-(s[near] ** 2) / (2.0 * sigma * sigma))
    return out.astype(np.float32)


def per_cell_weight_map(
    label: np.ndarray,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: tuple[float, float] | None = None,
    *,
    instances: bool | None = None,
) -> np.ndarray:
    """Eq. 2 (section 3) the straightforward way: one full-image distance transform per cell, no cut-off.

    Hand-written on purpose: it is the reference that :func:`border_weight_map` is checked against (notebook
    02, ``benchmarks/weight_maps.py``), so it shares nothing with the fast path but the cells
    (:func:`label_cells`): no cut-off radius, no windows, no numba kernel; only
    ``scipy.ndimage.distance_transform_edt`` of the whole slice for every cell, and a running first and
    second minimum per pixel (the method at its best, so that the speed comparison does not flatter the fast
    path). Slow, one transform per cell: for checks and benchmarks, not for training.

    Args:
        label, w0, sigma, class_weights, instances: as in :func:`border_weight_map`.

    Returns:
        float64 (H, W): the exact eq. 2, with the conventions of :func:`border_weight_map`.
    """
    label = _as_label(label, (2,))
    _check_params(w0, sigma)
    cells, k = label_cells(label, instances)
    w_mem, w_cell = _class_weights(label, class_weights)
    d1 = np.full(label.shape, np.inf)
    d2 = np.full(label.shape, np.inf)
    for i in range(1, k + 1):
        d = ndi.distance_transform_edt(cells != i)
        np.minimum(d2, np.maximum(d1, d), out=d2)  # the old first becomes second, or d competes for it
        np.minimum(d1, d, out=d1)
    background = cells == 0
    out = np.where(background, w_mem, w_cell)
    if k >= 2 and w0 > 0:
        out[background] += w0 * np.exp(-((d1 + d2)[background] ** 2) / (2.0 * sigma * sigma))
    return out


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
