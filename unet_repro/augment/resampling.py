"""Resampling for the augmentation of section 3.1 of the paper: one map, one interpolation per array.

:func:`resample` applies a map of source coordinates: image by bicubic convolution
(``torch.nn.functional.grid_sample``, Keys' kernel with a = -0.75), weight map by bilinear interpolation,
label by nearest neighbour (``grid_sample`` in ``"nearest"`` mode, exact for integer labels up to 2**24 in
magnitude; wider ones are gathered with numpy at the same rounded positions, so any integer dtype keeps
exactly its values). Borders are mirrored about the edge pixels (``scipy.ndimage`` ``"mirror"``, numpy
``"reflect"``), as the overlap-tile strategy extrapolates by mirroring (Fig. 2). The input checks shared
by :mod:`unet_repro.augment.elastic` and :mod:`unet_repro.augment.augmenter` live here too.

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

import numpy as np

__all__ = ["resample"]


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


# ---------------------------------------------------------------------------------------- resampling


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
