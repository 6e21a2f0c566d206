"""Data augmentation of section 3.1 of the paper: elastic deformation, shift, rotation, flips, gray values.

"As for our tasks there is very little training data available, we use excessive data augmentation by
applying elastic deformations to the available training images" (section 1), and in section 3.1: "We
generate smooth deformations using random displacement vectors on a coarse 3 by 3 grid. The
displacements are sampled from a Gaussian distribution with 10 pixels standard deviation. Per-pixel
displacements are then computed using bicubic interpolation." The paper also names shift and rotation
invariance, robustness to deformations and gray-value variations; it gives no ranges for those, so the
ranges here are stated and justified where they are defined (:class:`Augmenter`). Drop-out at the end
of the contracting path ("further implicit data augmentation") belongs to the model, not to this module.

How the pieces fit:

- :func:`elastic_displacement` draws the 3x3 control displacements and interpolates them to every
  pixel. The interpolation is separable and linear in the control values, so the field is two small
  matrix products ``M_rows @ D @ M_cols.T`` (well under a millisecond for 572x572). The 1-D basis is the
  interpolating cubic B-spline with mirror-symmetric ends (the same interpolant as ``scipy.ndimage``
  order 3 and the ``elasticdeform`` package): the field passes exactly through the control
  displacements, so the standard deviation at a control point is the paper's sigma.
- :func:`coordinate_map` composes flips, rotation, shift and the elastic field into one map
  ``source(p)`` per output pixel ``p``: the output is ``input[source(p)]``, resampled **once**.
- :func:`resample` applies a map: image by bicubic convolution (``torch.nn.functional.grid_sample``,
  Keys' kernel with a = -0.75), weight map by bilinear interpolation, label by nearest neighbour
  (``grid_sample`` in ``"nearest"`` mode, exact for integer labels up to 2**24 in magnitude; wider ones
  are gathered with numpy at the same rounded positions, so any integer dtype keeps exactly its values).
  Borders are mirrored about the
  edge pixels (``scipy.ndimage`` ``"mirror"``, numpy ``"reflect"``), as the overlap-tile strategy
  extrapolates by mirroring (Fig. 2).

Why hand-written rather than taken from a library: ``elasticdeform`` (the usual package) draws from
the global ``numpy.random`` state (no ``Generator``, so no per-call seeding), cannot take a weight map
with a third interpolation order in the same call without rebuilding it, does not compose with
gray-value changes, and its NumPy-1 wheel does not import under NumPy 2. Its cost is the B-spline
prefilter plus a 16-tap spline evaluation per pixel in C; ``grid_sample``'s bicubic kernel needs no
prefilter and is several times faster (``benchmarks/augment.py`` prints the ratio). ``scipy.ndimage``
``map_coordinates`` is the other candidate: correct but about as slow as ``elasticdeform``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import overload

import numpy as np

__all__ = [
    "control_positions",
    "interpolate_controls",
    "jacobian_determinant",
    "label_topology",
    "elastic_displacement",
    "elastic_deform",
    "coordinate_map",
    "resample",
    "gray_value",
    "GrayRanges",
    "gray_value_ranges",
    "AugmentParams",
    "Augmenter",
]


# ----------------------------------------------------------------------------------------- checks


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator, got {type(rng).__name__}; "
            "create one with numpy.random.default_rng(seed)"
        )
    return rng


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be two integers (rows, cols), got {shape!r}") from None
    if h < 2 or w < 2:
        raise ValueError(f"shape must be at least 2x2 to deform, got {h}x{w}")
    return h, w


def _check_grid_sigma(grid: int, sigma: float) -> None:
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
        raise ValueError(
            f"grid must be an integer >= 2 (control points per axis, corners included; the paper uses 3), got {grid!r}"
        )
    if not (isinstance(sigma, (int, float, np.floating, np.integer)) and math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite number >= 0 (pixels; the paper uses 10), got {sigma!r}")


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be a 2-D (H, W) array, got shape {image.shape}; pass one channel at a time")
    if not (np.issubdtype(image.dtype, np.floating) or np.issubdtype(image.dtype, np.integer)) or image.dtype == bool:
        raise TypeError(f"image must hold real numbers, got dtype {image.dtype}")
    image = image.astype(np.float32, copy=False)
    if not np.isfinite(image).all():
        raise ValueError(
            f"image holds {int(np.count_nonzero(~np.isfinite(image)))} NaN/inf values; "
            "clean or fill them before augmenting (they would spread through the cubic kernel)"
        )
    _check_shape(image.shape)
    return image


def _check_label(label: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    if label is None:
        return None
    label = np.asarray(label)
    if not (np.issubdtype(label.dtype, np.integer) or label.dtype == bool):
        raise TypeError(
            f"label must have an integer (or bool) dtype, got {label.dtype}; a label is resampled by "
            "nearest neighbour and keeps exactly its values: convert it, e.g. label.astype(np.uint8)"
        )
    if label.shape != shape:
        raise ValueError(
            f"label shape {label.shape} differs from image shape {shape}; pass the label at the image's "
            "size (crop it to the output window after augmenting)"
        )
    return label


def _check_weight(weight: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    if weight is None:
        return None
    weight = np.asarray(weight)
    if not np.issubdtype(weight.dtype, np.floating):
        raise TypeError(f"weight must be a floating-point map (eq. 2), got dtype {weight.dtype}")
    if weight.shape != shape:
        raise ValueError(f"weight shape {weight.shape} differs from image shape {shape}; pass it at the image's size")
    weight = weight.astype(np.float32, copy=False)
    if not np.isfinite(weight).all():
        raise ValueError("weight holds NaN/inf values; recompute the weight map")
    return weight


# ------------------------------------------------------------------------------------ elastic field


@lru_cache(maxsize=64)
def _spline_basis(n: int, grid: int) -> np.ndarray:
    """(n, grid) matrix: column k is the interpolating cubic spline through the unit vector e_k,
    sampled at n pixels; control point 0 sits on pixel 0, control point grid-1 on pixel n-1."""
    from scipy import ndimage

    t = np.linspace(0.0, grid - 1.0, n)
    basis = np.empty((n, grid), dtype=np.float64)
    for k in range(grid):
        e = np.zeros(grid, dtype=np.float64)
        e[k] = 1.0
        basis[:, k] = ndimage.map_coordinates(e, t[None], order=3, mode="mirror")
    basis.setflags(write=False)
    return basis


def _small_matmul(left: np.ndarray, right: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``left @ right`` for a tiny inner dimension, with numpy's own loops (``einsum``), not BLAS.

    With an inner dimension of 3 to 5, a threaded GEMM spends its time waking threads (tens of
    milliseconds on a busy machine); ``einsum`` does the (572, 5) x (5, 572) product in about 0.2 ms.
    """
    return np.einsum("ik,kj->ij", left, right, out=out, optimize=False)


def control_positions(shape: Sequence[int], grid: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Row and column positions (pixels, float) of the control lattice: corners included, evenly spaced.

    For ``grid=3`` on a 572x572 tile: 0, 285.5, 571 (the centre point is the image centre).
    """
    h, w = _check_shape(shape)
    _check_grid_sigma(grid, 0.0)
    return np.linspace(0.0, h - 1.0, grid), np.linspace(0.0, w - 1.0, grid)


def interpolate_controls(controls: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The per-pixel field of (2, g, g) control displacements (e.g. ``AugmentParams.controls``).

    Args:
        controls: (2, g, g) displacements (rows component first) at :func:`control_positions`.
        shape: (H, W).

    Returns:
        float64 (2, H, W): the bicubic (interpolating cubic spline) interpolation, separable.
    """
    controls = np.asarray(controls, dtype=np.float64)
    if controls.ndim != 3 or controls.shape[0] != 2 or controls.shape[1] != controls.shape[2] or controls.shape[1] < 2:
        raise ValueError(f"controls must have shape (2, g, g) with g >= 2, got {controls.shape}")
    return _field_from_controls(controls, _check_shape(shape))


def jacobian_determinant(field: np.ndarray) -> np.ndarray:
    """det of the Jacobian of ``p -> p + d(p)`` per pixel (central differences); <= 0 means a fold.

    Args:
        field: (2, H, W) displacement (rows, cols).

    Returns:
        float64 (H, W).
    """
    field = np.asarray(field, dtype=np.float64)
    dy_r, dy_c = np.gradient(field[0])
    dx_r, dx_c = np.gradient(field[1])
    return (1.0 + dy_r) * (1.0 + dx_c) - dy_c * dx_r


def label_topology(ids: np.ndarray, deformed_ids: np.ndarray, margin: int = 0) -> dict[str, int]:
    """How the regions of a label change under a deformation (do cells merge, split or vanish?).

    ``ids`` numbers the regions of the original (0 = background, e.g. membrane; 1, 2, ... = cells) and
    ``deformed_ids`` is that id image deformed by nearest-neighbour resampling, so every output pixel
    names the original region it came from. Connected regions (4-connectivity) of ``deformed_ids > 0``
    are then compared with those names.

    Args:
        ids: (H, W) integer region ids of the original window.
        deformed_ids: (H, W) the same window after deformation.
        margin: only original regions lying entirely at least this far inside the window count for
            ``split`` and ``vanished`` (regions near the edge can leave the window by displacement).

    Returns:
        dict with ``before`` (regions in ``ids``), ``after`` (connected regions after), ``merged``
        (regions after that hold two or more original ids), ``split`` (interior original ids found in
        two or more regions after), ``vanished`` (interior original ids absent after).
    """
    from skimage.measure import label as connected
    from skimage.measure import regionprops

    ids = np.asarray(ids)
    deformed_ids = np.asarray(deformed_ids)
    if ids.shape != deformed_ids.shape or ids.ndim != 2:
        raise ValueError(f"ids and deformed_ids must be 2-D of one shape, got {ids.shape} and {deformed_ids.shape}")
    after = connected(deformed_ids > 0, connectivity=1)
    mask = after > 0
    pairs = np.unique(np.stack([after[mask], deformed_ids[mask]]), axis=1)
    ids_per_after = np.bincount(pairs[0])
    comps_per_id = np.bincount(pairs[1].astype(np.int64))
    h, w = ids.shape
    interior = [
        r.label
        for r in regionprops(ids.astype(np.int64))
        if r.bbox[0] >= margin and r.bbox[1] >= margin and r.bbox[2] <= h - margin and r.bbox[3] <= w - margin
    ]
    interior = np.asarray(interior, dtype=np.int64)
    found = np.zeros(interior.size, dtype=np.int64)
    ok = interior < comps_per_id.size
    found[ok] = comps_per_id[interior[ok]]
    return {
        "before": int(np.unique(ids[ids > 0]).size),
        "after": int(after.max()),
        "merged": int(np.count_nonzero(ids_per_after >= 2)),
        "split": int(np.count_nonzero(found >= 2)),
        "vanished": int(np.count_nonzero(found == 0)),
    }


def _field_from_controls(controls: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Interpolate (2, g, g) control displacements to a (2, H, W) field (separable, exact at controls)."""
    g = controls.shape[1]
    mr, mc = _spline_basis(shape[0], g), _spline_basis(shape[1], g)
    out = np.empty((2, *shape), dtype=np.float64)
    for a in range(2):
        _small_matmul(_small_matmul(mr, controls[a]), mc.T, out[a])
    return out


def elastic_displacement(
    shape: Sequence[int], rng: np.random.Generator, grid: int = 3, sigma: float = 10.0
) -> np.ndarray:
    """A random smooth displacement field (section 3.1).

    Control points lie on a ``grid`` x ``grid`` lattice spanning the image, corners included (for
    ``grid=3`` the centre point is the image centre). Each control point gets a displacement drawn from
    N(0, sigma^2) per axis; per-pixel displacements are the bicubic (interpolating cubic spline)
    interpolation of those, so the field equals the drawn values at the control points.

    Args:
        shape: (H, W) of the image, each >= 2.
        rng: the generator; draws ``2 * grid * grid`` normals (rows component first, row-major).
        grid: control points per axis (>= 2); the paper's 3.
        sigma: standard deviation of a control displacement in pixels (>= 0); the paper's 10.

    Returns:
        float64 array (2, H, W): displacement along rows, then along columns, in pixels.
    """
    _check_grid_sigma(grid, sigma)
    h, w = _check_shape(shape)
    rng = _check_rng(rng)
    controls = rng.normal(0.0, 1.0, size=(2, int(grid), int(grid))) * float(sigma)
    return _field_from_controls(controls, (h, w))


# --------------------------------------------------------------------------------------- coordinates


def _linear_part(rotation_deg: float, flip_rows: bool, flip_cols: bool) -> np.ndarray:
    """The 2x2 matrix ``F R`` of :func:`coordinate_map` acting on (row, col) offsets from the centre."""
    theta = math.radians(float(rotation_deg))
    cos, sin = math.cos(theta), math.sin(theta)
    # Counter-clockwise rotation of the content on screen (rows point down): the output at offset
    # (y, x) samples the input at the clockwise-rotated offset (cos y + sin x, -sin y + cos x).
    m = np.array([[cos, sin], [-sin, cos]])
    if flip_rows:
        m[0] = -m[0]
    if flip_cols:
        m[1] = -m[1]
    return m


def _source(
    shape: tuple[int, int],
    controls: np.ndarray | None,
    rotation_deg: float,
    shift: tuple[float, float],
    flip_rows: bool,
    flip_cols: bool,
    scale: tuple[float, float] = (1.0, 1.0),
    origin: tuple[float, float] = (0.0, 0.0),
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``scale * (source - origin)`` for every output pixel, written into ``out`` ((2, H, W) or a view).

    ``source(p) = c + M (p - c + d(p)) - s`` is affine in ``p`` plus ``M d(p)``, and ``d`` is linear in
    the control displacements, so ``M d = M_rows (M D) M_cols^T``: per output axis one (H, g) x (g, W)
    product, instead of building the field and then transforming it.
    """
    h, w = shape
    cr, cc = (h - 1) / 2.0, (w - 1) / 2.0
    if out is None:
        out = np.empty((2, h, w), dtype=np.float64)
    m = _linear_part(rotation_deg, flip_rows, flip_cols)
    rr = np.arange(h, dtype=np.float64) - cr
    cl = np.arange(w, dtype=np.float64) - cc
    for a in range(2):
        k = scale[a]
        const = k * ((cr if a == 0 else cc) - float(shift[a]) - origin[a])
        col_term = (k * m[a, 0] * rr + const)[:, None]
        row_term = (k * m[a, 1] * cl)[None, :]
        if controls is not None:
            g = controls.shape[1]
            mixed = k * (m[a, 0] * controls[0] + m[a, 1] * controls[1])
            # rank-(g+2) product: spline part, plus col_term (x) 1, plus 1 (x) row_term
            left = np.hstack([_small_matmul(_spline_basis(h, g), mixed), col_term, np.ones((h, 1))])
            right = np.vstack([_spline_basis(w, g).T, np.ones((1, w)), row_term])
            _small_matmul(left.astype(out.dtype), right.astype(out.dtype), out[a])
        else:
            np.add(col_term.astype(out.dtype), row_term.astype(out.dtype), out=out[a])
    return out


def coordinate_map(
    shape: Sequence[int],
    displacement: np.ndarray | None = None,
    rotation_deg: float = 0.0,
    shift: tuple[float, float] = (0.0, 0.0),
    flip_rows: bool = False,
    flip_cols: bool = False,
) -> np.ndarray:
    """One map from output pixels to source coordinates that combines all geometric transforms.

    With ``c`` the image centre, the output pixel ``p`` shows the input at
    ``source(p) = c + F R (p + d(p) - c) - s``: the elastic displacement ``d`` (output frame), then a
    rotation ``R`` by ``rotation_deg`` (counter-clockwise as displayed, rows pointing down), the flips
    ``F``, and a shift ``s`` (the content moves by ``+s``). So the image is resampled once, whatever the
    combination.

    Args:
        shape: (H, W).
        displacement: (2, H, W) field from :func:`elastic_displacement`, or None.
        rotation_deg: rotation angle in degrees (any value).
        shift: (rows, cols) translation of the content in pixels.
        flip_rows: mirror top-bottom.
        flip_cols: mirror left-right.

    Returns:
        float64 array (2, H, W) of source (row, col) coordinates.
    """
    h, w = _check_shape(shape)
    out = _source((h, w), None, rotation_deg, shift, flip_rows, flip_cols)
    if displacement is not None:
        displacement = np.asarray(displacement, dtype=np.float64)
        if displacement.shape != (2, h, w):
            raise ValueError(f"displacement must have shape (2, {h}, {w}), got {displacement.shape}")
        m = _linear_part(rotation_deg, flip_rows, flip_cols)
        out += np.einsum("ab,bhw->ahw", m, displacement)
    return out


def _mirror_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Integer indices reflected into 0..n-1 about the edge pixels (… 2 1 | 0 1 2 … n-1 | n-2 …)."""
    period = 2 * (n - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - idx, idx)


def _fits_float32(label: np.ndarray) -> bool:
    """Whether every label value is an integer that float32 holds exactly (|v| <= 2^24)."""
    if label.dtype == bool or label.dtype.itemsize <= 2:
        return True
    return bool(label.size) and -(2**24) <= int(label.min()) and int(label.max()) <= 2**24


def _sample(
    image: np.ndarray,
    grid: np.ndarray,
    label: np.ndarray | None,
    weight: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Resample at a (H', W', 2) float32 grid of (col, row) coordinates normalised to [-1, 1]
    (``grid_sample``'s layout, align_corners=True: -1 is pixel 0, +1 pixel n-1)."""
    import torch
    import torch.nn.functional as F

    tgrid = torch.from_numpy(grid)[None]

    def run(a: np.ndarray, mode: str) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]
        with torch.no_grad():
            return F.grid_sample(t, tgrid, mode=mode, padding_mode="reflection", align_corners=True)[0, 0].numpy()

    out = run(image, "bicubic")
    out_w = None
    if weight is not None:
        # float rounding of the convex combination can step a hair outside the input's range
        out_w = np.clip(run(weight, "bilinear"), weight.min(), weight.max())
    out_l = None
    if label is not None:
        h, w = image.shape
        if _fits_float32(label):
            out_l = run(label, "nearest").astype(label.dtype)
        else:  # exact for any integer: gather with mirrored indices
            ri = _mirror_index(np.floor((grid[..., 1] + 1.0) * ((h - 1) / 2.0) + 0.5).astype(np.int64), h)
            ci = _mirror_index(np.floor((grid[..., 0] + 1.0) * ((w - 1) / 2.0) + 0.5).astype(np.int64), w)
            out_l = label[ri, ci]
    return out, out_l, out_w


def resample(
    image: np.ndarray,
    coords: np.ndarray,
    label: np.ndarray | None = None,
    weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Resample an image (bicubic), its label (nearest) and weight map (bilinear) at ``coords``.

    Borders are mirrored about the edge pixels. Bicubic is Keys' cubic convolution with a = -0.75
    (``torch.nn.functional.grid_sample``), interpolating: at integer coordinates it returns the pixels.

    Args:
        image: (H, W) real array, finite.
        coords: (2, H', W') source (row, col) coordinates, e.g. from :func:`coordinate_map`.
        label: (H, W) integer array or None; its output has exactly values of the input.
        weight: (H, W) float array or None; its output lies within the input's [min, max].

    Returns:
        (image float32 (H', W'), label (H', W') of the label's dtype or None, weight float32 or None).
    """
    image = _check_image(image)
    label = _check_label(label, image.shape)
    weight = _check_weight(weight, image.shape)
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 3 or coords.shape[0] != 2:
        raise ValueError(f"coords must have shape (2, H, W), got {coords.shape}")
    h, w = image.shape
    # grid_sample wants coordinates normalised with align_corners=True: -1 is pixel 0, +1 pixel n-1.
    grid = np.stack([coords[1] * (2.0 / (w - 1)) - 1.0, coords[0] * (2.0 / (h - 1)) - 1.0], axis=-1)
    grid = grid.astype(np.float32)
    return _sample(image, grid, label, weight)


def _normalised_grid(
    shape: tuple[int, int],
    controls: np.ndarray | None,
    rotation_deg: float = 0.0,
    shift: tuple[float, float] = (0.0, 0.0),
    flip_rows: bool = False,
    flip_cols: bool = False,
) -> np.ndarray:
    """The combined map of :func:`coordinate_map`, normalised for ``grid_sample``: float32 (H, W, 2)."""
    h, w = shape
    rows_cols = _source(
        shape,
        controls,
        rotation_deg,
        shift,
        flip_rows,
        flip_cols,
        scale=(2.0 / (h - 1), 2.0 / (w - 1)),
        origin=((h - 1) / 2.0, (w - 1) / 2.0),
        out=np.empty((2, h, w), dtype=np.float32),
    )
    return np.stack([rows_cols[1], rows_cols[0]], axis=-1)


@overload
def elastic_deform(
    image: np.ndarray,
    label: np.ndarray | None,
    rng: np.random.Generator,
    grid: int = 3,
    sigma: float = 10.0,
    weight: None = None,
) -> tuple[np.ndarray, np.ndarray | None]: ...


@overload
def elastic_deform(
    image: np.ndarray,
    label: np.ndarray | None,
    rng: np.random.Generator,
    grid: int = 3,
    sigma: float = 10.0,
    *,
    weight: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]: ...


@overload
def elastic_deform(
    image: np.ndarray,
    label: np.ndarray | None,
    rng: np.random.Generator,
    grid: int,
    sigma: float,
    weight: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]: ...


def elastic_deform(
    image: np.ndarray,
    label: np.ndarray | None,
    rng: np.random.Generator,
    grid: int = 3,
    sigma: float = 10.0,
    weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None] | tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Deform an image and its label with one random elastic field (section 3.1).

    Equivalent to ``resample(image, coordinate_map(shape, elastic_displacement(shape, rng, grid, sigma)),
    label)`` (same draws, same field), computed without materialising the float64 field.

    Args:
        image: (H, W) real array (e.g. a 572x572 mirror-extended input tile), no NaN.
        label: (H, W) integer label of the same size, or None; deformed with the same field.
        rng: numpy Generator (same state -> same output).
        grid: control points per axis (paper: 3).
        sigma: control-displacement standard deviation in pixels (paper: 10).
        weight: optional float weight map (eq. 2), deformed bilinearly with the same field; when given,
            the function returns ``(image, label, weight)``.

    Returns:
        ``(image float32, label or None)`` (plus the weight map when ``weight`` is given).
    """
    _check_grid_sigma(grid, sigma)
    image = _check_image(image)
    label = _check_label(label, image.shape)
    weight = _check_weight(weight, image.shape)
    controls = _check_rng(rng).normal(0.0, 1.0, size=(2, int(grid), int(grid))) * float(sigma)
    out, lab, wt = _sample(image, _normalised_grid(image.shape, controls), label, weight)
    if wt is not None:  # _sample returns a weight map exactly when it is given one
        return out, lab, wt
    return out, lab


# -------------------------------------------------------------------------------------- gray values


def gray_value(image: np.ndarray, brightness: float = 0.0, contrast: float = 1.0, gamma: float = 1.0) -> np.ndarray:
    """Gray-value variation (section 3.1 names robustness to it): gamma, then contrast, then brightness.

    ``gamma`` acts on the tile's own [min, max] (so it works for any intensity scale and keeps that
    range); ``contrast`` scales deviations from the tile mean; ``brightness`` is added (intensity units:
    fractions of full scale for images in [0, 1]). No clipping.

    Args:
        image: (H, W) float image.
        brightness: additive offset.
        contrast: factor > 0 on deviations from the mean.
        gamma: exponent > 0 on the normalised intensities.

    Returns:
        float32 array of the same shape.
    """
    image = np.asarray(image, dtype=np.float32)
    if not (contrast > 0 and gamma > 0):
        raise ValueError(f"contrast and gamma must be > 0, got contrast={contrast}, gamma={gamma}")
    out = image.astype(np.float32, copy=True)
    if gamma != 1.0:
        lo, hi = float(out.min()), float(out.max())
        if hi > lo:
            out = (lo + (hi - lo) * ((out - lo) / (hi - lo)) ** gamma).astype(np.float32)
    if contrast != 1.0:
        m = float(out.mean())
        out = (m + contrast * (out - m)).astype(np.float32)
    if brightness != 0.0:
        out = out + np.float32(brightness)
    return out


@dataclass(frozen=True)
class GrayRanges:
    """Gray-value spread of a stack and the augmentation ranges derived from it (see :func:`gray_value_ranges`)."""

    mean_offset: tuple[float, float]  # min and max of (slice mean - average of the slice means)
    std_factor: tuple[float, float]  # min and max of (slice std / average of the slice stds)
    brightness: tuple[float, float]
    contrast: tuple[float, float]
    gamma: tuple[float, float]


def gray_value_ranges(images: np.ndarray, step: float = 0.05) -> GrayRanges:
    """The gray-value ranges of :class:`Augmenter`, measured on the training slices.

    Intensities are scaled to [0, 1] (uint8 / 255). The brightness range is ``+-b`` with ``b`` the largest
    offset of a slice mean from the average mean; contrast is log-symmetric ``[1/c, c]`` with ``c`` the
    largest factor between a slice's standard deviation and the average (either way); each is rounded to
    the nearest ``step``. Gamma gets the contrast range (a matching mild non-linear change).

    Args:
        images: (N, H, W) training slices (uint8, or floats already in [0, 1]); only training slices,
            never held-out ones.
        step: rounding step of ``b`` and ``c``.

    Returns:
        :class:`GrayRanges`.
    """
    x = np.asarray(images)
    x = x.reshape(x.shape[0], -1).astype(np.float64) / (255.0 if x.dtype == np.uint8 else 1.0)
    means, stds = x.mean(axis=1), x.std(axis=1)
    offset = (float(means.min() - means.mean()), float(means.max() - means.mean()))
    factor = (float(stds.min() / stds.mean()), float(stds.max() / stds.mean()))
    b = round(round(max(-offset[0], offset[1]) / step) * step, 10)
    c = round(round(max(1.0 / factor[0], factor[1]) / step) * step, 10)
    return GrayRanges(offset, factor, (-b, b), (1.0 / c, c), (1.0 / c, c))


# --------------------------------------------------------------------------------------- pipeline


@dataclass(frozen=True)
class AugmentParams:
    """The random draws of one :class:`Augmenter` call (after the probabilities were applied)."""

    controls: np.ndarray | None  # (2, grid, grid) control displacements in pixels, or None
    rotation_deg: float
    shift: tuple[float, float]
    flip_rows: bool
    flip_cols: bool
    brightness: float
    contrast: float
    gamma: float


@dataclass
class Augmenter:
    """The training-time augmentation of section 3.1, one call per sample.

    Defaults and why (the paper gives numbers only for the elastic part):

    - elastic: ``grid=3``, ``sigma=10`` px, applied to every sample (``p_elastic=1``): section 3.1.
    - rotation: uniform in ``[-max_rotation_deg, max_rotation_deg]`` = any angle (``180``): EM sections
      have no preferred in-plane orientation; the paper asks for rotation invariance.
    - flips: each axis with probability 0.5: together with rotation, every orientation and handedness.
    - shift: uniform in ``[-max_shift, max_shift]`` = +-16 px per axis: four 2x2 poolings make the network
      equivariant only to shifts by multiples of 16 px, so shifts over one 16-px period cover every phase.
    - gray values (image only): brightness uniform in +-0.1, contrast and gamma log-uniform in
      [0.8, 1.25], the spread between the ISBI 2012 training slices (0-24, never the held-out ones) as
      :func:`gray_value_ranges` measures it (notebook 03 prints the measurement; a test checks that
      these defaults equal it). These ranges include the identity.

    Every call draws the same number of random variates in the same order (probabilities decide only
    whether a draw is used), so the same generator state gives the same output.
    """

    grid: int = 3
    sigma: float = 10.0
    p_elastic: float = 1.0
    max_rotation_deg: float = 180.0
    p_rotate: float = 1.0
    max_shift: float = 16.0
    p_shift: float = 1.0
    p_flip_rows: float = 0.5
    p_flip_cols: float = 0.5
    brightness: tuple[float, float] = (-0.1, 0.1)
    contrast: tuple[float, float] = (0.8, 1.25)
    gamma: tuple[float, float] = (0.8, 1.25)
    p_gray: float = 1.0

    def __post_init__(self) -> None:
        _check_grid_sigma(self.grid, self.sigma)
        for name in ("p_elastic", "p_rotate", "p_shift", "p_flip_rows", "p_flip_cols", "p_gray"):
            p = getattr(self, name)
            if not (0.0 <= p <= 1.0):
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
        if not (self.max_rotation_deg >= 0 and self.max_shift >= 0):
            raise ValueError("max_rotation_deg and max_shift must be >= 0")
        for name in ("brightness", "contrast", "gamma"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"{name} range must be (low, high) with low <= high, got {(lo, hi)}")
            if name != "brightness" and lo <= 0:
                raise ValueError(f"{name} range must be positive, got {(lo, hi)}")

    @classmethod
    def none(cls) -> Augmenter:
        """No augmentation: every call returns its inputs unchanged (copies)."""
        return cls(
            sigma=0.0,
            p_elastic=0.0,
            max_rotation_deg=0.0,
            p_rotate=0.0,
            max_shift=0.0,
            p_shift=0.0,
            p_flip_rows=0.0,
            p_flip_cols=0.0,
            brightness=(0.0, 0.0),
            contrast=(1.0, 1.0),
            gamma=(1.0, 1.0),
            p_gray=0.0,
        )

    @classmethod
    def elastic_only(cls, grid: int = 3, sigma: float = 10.0) -> Augmenter:
        """Only the paper's elastic deformation (no rotation, shift, flips or gray values)."""
        return replace(cls.none(), grid=grid, sigma=sigma, p_elastic=1.0)

    def sample(self, rng: np.random.Generator) -> AugmentParams:
        """Draw one set of parameters.

        Always draws ``2*grid^2`` normals (the control displacements) and then 12 uniforms in a fixed
        order (whether to deform, rotate, shift, flip rows, flip cols, change gray values; the angle, the
        two shifts, brightness, contrast, gamma), so the stream does not depend on the probabilities.
        """
        rng = _check_rng(rng)
        g = int(self.grid)
        controls = rng.normal(0.0, 1.0, size=(2, g, g)) * float(self.sigma)
        (u_el, u_rot, u_sh, u_fr, u_fc, u_gray, v_rot, v_sr, v_sc, v_bri, v_con, v_gam) = (
            float(v) for v in rng.random(12)
        )

        def log_uniform(lo_hi: tuple[float, float], v: float) -> float:
            lo, hi = math.log(lo_hi[0]), math.log(lo_hi[1])
            return math.exp(lo + v * (hi - lo))

        gray = u_gray < self.p_gray
        return AugmentParams(
            controls=controls if (u_el < self.p_elastic and self.sigma > 0) else None,
            rotation_deg=(2 * v_rot - 1) * self.max_rotation_deg if u_rot < self.p_rotate else 0.0,
            shift=((2 * v_sr - 1) * self.max_shift, (2 * v_sc - 1) * self.max_shift)
            if u_sh < self.p_shift
            else (0.0, 0.0),
            flip_rows=u_fr < self.p_flip_rows,
            flip_cols=u_fc < self.p_flip_cols,
            brightness=self.brightness[0] + v_bri * (self.brightness[1] - self.brightness[0]) if gray else 0.0,
            contrast=log_uniform(self.contrast, v_con) if gray else 1.0,
            gamma=log_uniform(self.gamma, v_gam) if gray else 1.0,
        )

    def coordinates(self, params: AugmentParams, shape: Sequence[int]) -> np.ndarray | None:
        """The combined source-coordinate map (float64, pixels) of ``params``; None for the identity."""
        shape = _check_shape(shape)
        if self._is_identity(params):
            return None
        disp = None if params.controls is None else _field_from_controls(params.controls, shape)
        return coordinate_map(shape, disp, params.rotation_deg, params.shift, params.flip_rows, params.flip_cols)

    @staticmethod
    def _is_identity(params: AugmentParams) -> bool:
        return (
            params.controls is None
            and params.rotation_deg == 0.0
            and params.shift == (0.0, 0.0)
            and not params.flip_rows
            and not params.flip_cols
        )

    def apply(
        self,
        params: AugmentParams,
        image: np.ndarray,
        label: np.ndarray | None = None,
        weight: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Apply drawn parameters: one resampling for all geometry, then gray values on the image only."""
        image = _check_image(image)
        label = _check_label(label, image.shape)
        weight = _check_weight(weight, image.shape)
        if self._is_identity(params):
            out = image.copy()
            lab = None if label is None else label.copy()
            wt = None if weight is None else weight.copy()
        else:
            grid = _normalised_grid(
                image.shape, params.controls, params.rotation_deg, params.shift, params.flip_rows, params.flip_cols
            )
            out, lab, wt = _sample(image, grid, label, weight)
        if (params.brightness, params.contrast, params.gamma) != (0.0, 1.0, 1.0):
            out = gray_value(out, params.brightness, params.contrast, params.gamma)
        return out, lab, wt

    def __call__(
        self,
        image: np.ndarray,
        label: np.ndarray | None,
        rng: np.random.Generator,
        weight: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Augment one training sample.

        Args:
            image: float (H, W) tile (e.g. the 572x572 mirror-extended input), no NaN.
            label: integer (H, W) label at the same size, or None (nearest: values preserved).
            rng: numpy Generator (same state -> same output).
            weight: float (H, W) weight map of eq. 2 at the same size, or None (bilinear: stays within
                its input's [min, max]).

        Returns:
            (image float32, label or None, weight float32 or None), each (H, W).
        """
        image = _check_image(image)
        label = _check_label(label, image.shape)
        weight = _check_weight(weight, image.shape)
        return self.apply(self.sample(rng), image, label, weight)
