"""Elastic deformation of section 3.1 of the paper: random displacements on a 3x3 grid, bicubic in between.

"We generate smooth deformations using random displacement vectors on a coarse 3 by 3 grid. The
displacements are sampled from a Gaussian distribution with 10 pixels standard deviation. Per-pixel
displacements are then computed using bicubic interpolation." (section 3.1)

:func:`elastic_displacement` draws the control displacements and interpolates them to every pixel. The
interpolation is separable and linear in the control values, so the field is two small matrix products
``M_rows @ D @ M_cols.T`` (well under a millisecond for 572x572). The 1-D basis is the interpolating cubic
B-spline with mirror-symmetric ends (the same interpolant as ``scipy.ndimage`` order 3 and the
``elasticdeform`` package): the field passes exactly through the control displacements, so the standard
deviation at a control point is the paper's sigma. :func:`coordinate_map` composes flips, rotation, shift
and the elastic field into one map ``source(p)`` per output pixel ``p``: the output is
``input[source(p)]``, resampled **once** (:mod:`unet_repro.augment.resampling`). :func:`elastic_deform` deforms an
image, its label and weight map with one random field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import overload

import numpy as np

from .resampling import _check_grid_sigma, _check_image, _check_label, _check_rng, _check_shape, _check_weight, _sample

__all__ = [
    "control_positions",
    "interpolate_controls",
    "jacobian_determinant",
    "label_topology",
    "elastic_displacement",
    "elastic_deform",
    "coordinate_map",
]


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
