"""The training energy of the U-Net: pixel-wise soft-max + weighted cross-entropy (section 3, eq. 1).

The paper: "The energy function is computed by a pixel-wise soft-max over the final feature map combined
with the cross entropy loss function", with ``p_k(x) = exp(a_k(x)) / sum_k' exp(a_k'(x))`` and

    E = sum_{x in Omega} w(x) log(p_{l(x)}(x))                                                     (eq. 1)

where ``l(x)`` is the true label and ``w`` the weight map of eq. 2 (:mod:`unet_repro.loss.weights`). As
printed, eq. 1 has no minus sign although it is called an energy that training minimises; the quantity
minimised is the weighted negative log-likelihood ``-sum w log p``, which is what this module returns.

Why hand-written rather than ``torch.nn.functional.cross_entropy``: that function takes per-*class*
weights, not a per-*pixel* weight map, and its ``reduction="mean"`` divides by the sum of the class weights
of the targets; eq. 2 needs an arbitrary map and a documented normalisation. The computation uses
``log_softmax`` (numerically stable for large logits), and equals ``cross_entropy`` when all weights are 1
(tested in ``tests/test_loss.py``).

Normalisation (``normalize``): ``"pixels"`` divides the weighted sum by the number of output pixels, so the
loss over a fixed-size tile is eq. 1 times a constant; ``"weights"`` divides by the sum of the weights
(a weighted mean, the same scale as unweighted cross-entropy whatever ``w0`` is); ``"none"`` returns the
sum, eq. 1 itself. Notebook 02 explains which one training uses and why.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from ..model.sizing import center_crop

__all__ = ["Normalize", "weighted_cross_entropy"]

Normalize = Literal["weights", "pixels", "none"]


def weighted_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    normalize: Normalize = "weights",
    validate: bool = True,
) -> torch.Tensor:
    """Weighted pixel-wise cross-entropy of eq. 1 (with the sign that makes it an energy to minimise).

    Args:
        logits: N x C x h x w raw network outputs ``a_k(x)`` (before the soft-max).
        target: N x H x W integer class indices ``l(x)`` (0 = membrane, 1 = cell for ISBI), H >= h.
        weight: N x H x W per-pixel weights ``w(x)`` (eq. 2), finite and >= 0.
            When ``target``/``weight`` are larger than the logits (the output window of a valid-padding
            network is smaller than its input tile, section 2) both are centre-cropped to h x w with
            :func:`unet_repro.model.sizing.center_crop`, the helper the model uses for its skip connections.
        normalize: ``"weights"``: ``sum w * nll / sum w``; ``"pixels"``: ``sum w * nll / (N h w)``;
            ``"none"``: ``sum w * nll``.
        validate: check the values of ``target`` and ``weight`` (class range, finite non-negative weights,
            a positive weight sum). Each check reads a value back from the device, so the training loop,
            which checks its label and weight arrays once before the first step, passes False on a GPU;
            the arithmetic is the same either way.

    Returns:
        A scalar tensor (differentiable with respect to ``logits``).

    Raises:
        ValueError: wrong ranks, batch sizes or spatial sizes that cannot be centre-cropped, a non-integer
            target or one outside ``0..C-1``, weights that are negative, not finite, or sum to 0 with
            ``normalize="weights"``, or an unknown ``normalize``.
    """
    if normalize not in ("weights", "pixels", "none"):
        raise ValueError(f"normalize must be 'weights', 'pixels' or 'none', got {normalize!r}")
    if not all(isinstance(t, torch.Tensor) for t in (logits, target, weight)):
        raise ValueError("logits, target and weight must be torch tensors (use torch.from_numpy(...) for arrays)")
    if logits.ndim != 4:
        raise ValueError(f"logits must be N x C x h x w, got shape {tuple(logits.shape)}")
    if target.ndim != 3 or weight.ndim != 3:
        raise ValueError(
            f"target and weight must be N x H x W, got {tuple(target.shape)} and {tuple(weight.shape)} "
            "(drop a channel axis with .squeeze(1))"
        )
    n, c, h, w = logits.shape
    if target.shape[0] != n or weight.shape[0] != n:
        raise ValueError(f"batch sizes differ: logits {n}, target {target.shape[0]}, weight {weight.shape[0]}")
    if target.shape != weight.shape:
        raise ValueError(f"target {tuple(target.shape)} and weight {tuple(weight.shape)} must have the same shape")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be a floating-point tensor, got {logits.dtype}")
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices (int64), got {target.dtype}; use .long()")
    if not weight.is_floating_point():
        weight = weight.to(logits.dtype)
    if target.shape[-2:] != (h, w):
        try:
            target = center_crop(target, (h, w))
            weight = center_crop(weight, (h, w))
        except ValueError as exc:
            raise ValueError(f"target/weight {tuple(target.shape[-2:])} do not fit the {h}x{w} output: {exc}") from None
    target = target.long()
    if validate and target.numel() and (int(target.min()) < 0 or int(target.max()) >= c):
        raise ValueError(
            f"target values must be class indices in 0..{c - 1}, got {int(target.min())}..{int(target.max())} "
            "(ISBI labels 0/255 must be mapped to 0 = membrane, 1 = cell)"
        )
    weight = weight.to(device=logits.device, dtype=logits.dtype)
    if validate and (not torch.isfinite(weight).all() or bool((weight < 0).any())):
        raise ValueError("weight must be finite and >= 0 everywhere")
    logp = F.log_softmax(logits, dim=1)
    nll = -logp.gather(1, target.unsqueeze(1)).squeeze(1)
    total = (weight * nll).sum()
    if normalize == "none":
        return total
    if normalize == "pixels":
        return total / nll.numel()
    wsum = weight.sum()
    if validate and float(wsum) <= 0:
        raise ValueError("the weights sum to 0, so normalize='weights' is undefined; use normalize='pixels'")
    return total / wsum
