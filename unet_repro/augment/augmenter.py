"""Data augmentation of section 3.1 of the paper: elastic deformation, shift, rotation, flips, gray values.

"As for our tasks there is very little training data available, we use excessive data augmentation by
applying elastic deformations to the available training images" (section 1), and in section 3.1: "We
generate smooth deformations using random displacement vectors on a coarse 3 by 3 grid. The
displacements are sampled from a Gaussian distribution with 10 pixels standard deviation. Per-pixel
displacements are then computed using bicubic interpolation." The paper also names shift and rotation
invariance, robustness to deformations and gray-value variations; it gives no ranges for those, so the
ranges here are stated and justified where they are defined (:class:`Augmenter`). Drop-out at the end
of the contracting path ("further implicit data augmentation") belongs to the model, not to this module.

How the pieces fit: :mod:`unet_repro.augment.elastic` draws the elastic field and composes it with flips,
rotation and shift into one coordinate map (:func:`elastic_displacement`, :func:`coordinate_map`,
:func:`elastic_deform`); :mod:`unet_repro.augment.resampling` resamples image, label and weight map at that map
once (:func:`resample`); this module adds gray values (:func:`gray_value`, :func:`gray_value_ranges`) and
composes everything into :class:`Augmenter`, one call per training sample. Every public name of those two
modules is importable from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .elastic import (
    _field_from_controls,
    _normalised_grid,
    coordinate_map,
)
from .resampling import (
    _check_grid_sigma,
    _check_image,
    _check_label,
    _check_rng,
    _check_shape,
    _check_weight,
    _sample,
)

__all__ = ["AugmentParams", "Augmenter", "GrayRanges", "gray_value", "gray_value_ranges"]


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
