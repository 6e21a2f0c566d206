"""Overlap-tile prediction of images of any size (Fig. 2 of the paper) and test-time augmentation.

"This strategy allows the seamless segmentation of arbitrarily large images by an overlap-tile strategy.
To predict the pixels in the border region of the image, the missing context is extrapolated by
mirroring the input image" (section 2, Fig. 2).

The image is extended by mirroring (``numpy.pad(mode="reflect")``, the edge pixel not repeated) by the
network's context border on every side, plus enough on the bottom/right that the output tiles cover it,
and cut into input tiles of a valid size. Output windows start on multiples of ``2**depth``, because the
2x2 max poolings make the network equivariant only to shifts that are multiples of ``2**depth``: every
tile then sees the same pooling grid as one pass over the whole mirrored canvas would, so the stitched map
equals the whole-image prediction (up to float rounding) and the seams are invisible by construction.
``sizing.tile_layout`` takes the fewest windows that cover the image and spreads them evenly on that grid;
pixels where windows overlap are predicted twice with the same values (the later tile's are kept). For an
ISBI slice (512 pixels) and the paper's tile (572 -> 388), two windows per axis, at 0 and 128, overlapping
by 388 - 128 = 260 pixels:

>>> starts, out, border = tile_layout(512, 572)
>>> starts, out, border, out - (starts[1] - starts[0])
([0, 128], 388, 92, 260)

Test-time augmentation (section 3.3: the ISBI result was "averaged over 7 rotated versions of the input
data"; the paper does not say which 7): ``tta="d4"`` averages the probabilities over the 8 symmetries of
the square (4 rotations by 90 degrees, each with and without a horizontal flip), ``tta="rot4"`` over the
4 rotations, ``tta="none"`` uses the image as it is. 90-degree rotations and flips need no interpolation,
so they are exact; arbitrary angles would need resampling and extra mirroring.

Hand-written because tiling libraries (e.g. MONAI's sliding window) pad with constants and blend tiles
with weights; the paper's scheme (mirroring, valid convolutions, no blending) is a few lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..data.isbi2012 import normalize_image
from ..model.sizing import UNetConfig, mirror_canvas, tile_layout
from ..options import TTA

__all__ = [
    "SEAM_BAND",
    "seam_report",
    "TTA_TRANSFORMS",
    "predict_proba",
    "predict_stack",
]


#: name -> list of (k rotations by 90 degrees, flip) applied to the input; the inverse is applied to the output.
TTA_TRANSFORMS: dict[str, list[tuple[int, bool]]] = {
    "none": [(0, False)],
    "rot4": [(k, False) for k in range(4)],
    "d4": [(k, f) for f in (False, True) for k in range(4)],
}


#: tiles per forward pass on a GPU (on a CPU one at a time, which is as fast there and keeps results as they were).
GPU_BATCH = 16


def _model_geometry(model: nn.Module) -> tuple[int, str]:
    cfg = getattr(model, "config", None) or UNetConfig()
    return int(cfg.depth), str(cfg.padding)


def _forward_probs(model: nn.Module, batch: torch.Tensor, amp: bool | str) -> torch.Tensor:
    from ..device import resolve_amp

    dtype, _ = resolve_amp(amp, batch.device)
    with torch.autocast(batch.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        logits = model(batch)
    return torch.softmax(logits.float(), dim=1)


@torch.no_grad()
def predict_tiled(
    model: nn.Module, image: np.ndarray, tile: int = 572, batch_size: int | None = None, amp: bool | str = False
) -> np.ndarray:
    """Class probabilities for one 2D image by overlap-tile prediction (no test-time augmentation).

    Args:
        model: a valid-padding U-Net (``model.config`` gives depth and padding); put in eval mode by the
            caller (see :func:`predict_proba`).
        image: H x W float32, already normalised.
        tile: input tile side, a valid size.
        batch_size: tiles per forward pass (None: 1 on a CPU, :data:`GPU_BATCH` on a GPU).
        amp: autocast, as ``TrainConfig.amp``: ``"off"``/False, ``"bf16"``/True, ``"fp16"`` or ``"auto"``
            (``unet_repro.device.resolve_amp``; an option, not the paper).

    Returns:
        ``num_classes x H x W`` float32 probabilities (softmax over classes).
    """
    depth, padding = _model_geometry(model)
    device = next(model.parameters()).device
    batch_size = batch_size or (1 if device.type == "cpu" else GPU_BATCH)
    h, w = image.shape
    if padding == "same":  # output size = input size: pad to a multiple of 2**depth by mirroring, one pass
        m = 2**depth
        canvas = mirror_canvas(image, (math.ceil(h / m) * m, math.ceil(w / m) * m), 0)
        x = torch.from_numpy(np.ascontiguousarray(canvas))[None, None].to(device)
        return _forward_probs(model, x, amp)[0, :, :h, :w].cpu().numpy()
    ys, out, border = tile_layout(h, tile, depth)
    xs, _, _ = tile_layout(w, tile, depth)
    extent = (ys[-1] + out, xs[-1] + out)
    canvas = np.ascontiguousarray(mirror_canvas(image, extent, border))
    canvas_t = torch.from_numpy(canvas).to(device)
    result: np.ndarray | None = None
    coords = [(y, x) for y in ys for x in xs]
    for i in range(0, len(coords), batch_size):
        chunk = coords[i : i + batch_size]
        batch = torch.stack([canvas_t[y : y + tile, x : x + tile] for y, x in chunk])[:, None]
        probs = _forward_probs(model, batch, amp).cpu().numpy()
        if result is None:
            result = np.empty((probs.shape[1], *extent), dtype=np.float32)
        for (y, x), p in zip(chunk, probs, strict=False):
            result[:, y : y + out, x : x + out] = p
    assert result is not None
    return result[:, :h, :w]


def _tta(image: np.ndarray, k: int, flip: bool) -> np.ndarray:
    out = np.rot90(image, k, axes=(-2, -1))
    return np.flip(out, axis=-1) if flip else out


def _tta_inverse(probs: np.ndarray, k: int, flip: bool) -> np.ndarray:
    out = np.flip(probs, axis=-1) if flip else probs
    return np.rot90(out, -k, axes=(-2, -1))


def predict_proba(
    model: nn.Module,
    image: np.ndarray,
    tile: int = 572,
    tta: TTA = "none",
    batch_size: int | None = None,
    amp: bool | str = False,
    normalize: Callable[[np.ndarray], np.ndarray] | None = normalize_image,
) -> np.ndarray:
    """Probability of the *cell* class (class 1) for one 2D image, by overlap-tile prediction.

    Args:
        model: the U-Net; it is switched to eval mode (drop-out off) and restored afterwards.
        image: H x W grey values (uint8 0..255 unless ``normalize`` is None).
        tile: input tile side for valid-padding models (572 in the paper).
        tta: ``"none"``, ``"rot4"`` (4 rotations) or ``"d4"`` (4 rotations x flip), averaged.
        batch_size: tiles per forward pass (None: 1 on a CPU, :data:`GPU_BATCH` on a GPU).
        amp: autocast mode (see :func:`predict_tiled`).
        normalize: input scaling (default :func:`normalize_image`); None if ``image`` is already scaled.

    Returns:
        H x W float32 in [0, 1]: P(cell), the ISBI submission convention (1 = cell, 0 = membrane).
    """
    if tta not in TTA_TRANSFORMS:
        raise ValueError(f"tta must be one of {list(TTA_TRANSFORMS)}, got {tta!r}")
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(
            f"predict_proba takes one 2D image (H x W), got shape {image.shape}; use predict_stack for a stack"
        )
    x = normalize(image) if normalize is not None else np.asarray(image, dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        acc = np.zeros(image.shape, dtype=np.float64)
        for k, flip in TTA_TRANSFORMS[tta]:
            probs = predict_tiled(model, np.ascontiguousarray(_tta(x, k, flip)), tile, batch_size, amp)
            acc += _tta_inverse(probs[1], k, flip)
        prob = (acc / len(TTA_TRANSFORMS[tta])).astype(np.float32)
    finally:
        model.train(was_training)
    return np.clip(prob, 0.0, 1.0)


def predict_stack(
    model: nn.Module,
    stack: np.ndarray,
    tile: int = 572,
    tta: TTA = "none",
    batch_size: int | None = None,
    amp: bool | str = False,
    progress: bool = False,
) -> np.ndarray:
    """:func:`predict_proba` for every slice of an N x H x W (or H x W) stack.

    Returns:
        N x H x W float32 probabilities of *cell* (the ISBI 2012 submission format).
    """
    stack = np.asarray(stack)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3:
        raise ValueError(f"expected an image (H x W) or a stack (N x H x W), got shape {stack.shape}")
    it = range(len(stack))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"predict (tta={tta})", leave=False)
    return np.stack([predict_proba(model, stack[i], tile, tta, batch_size, amp) for i in it]).astype(np.float32)


#: Pixels on each side of a tile edge counted as "near a seam" by :func:`seam_report`.
SEAM_BAND = 8


@torch.no_grad()
def seam_report(model: nn.Module, stack: np.ndarray, tile: int = 256) -> dict[str, float]:
    """What tiling without context costs a ``"same"``-padded model: seams.

    A same-padded network predicts a 512x512 slice in one pass, with no seams. A larger image must be
    cut into tiles; without the overlap-tile strategy (Fig. 2) each tile's zero padding meets the next
    tile at its edge. This predicts every slice both ways, whole and as non-overlapping ``tile`` x
    ``tile`` pieces each predicted on its own, and compares P(cell) near the tile edges and elsewhere.

    Args:
        model: a U-Net with ``padding="same"`` (a valid-padding model needs context, see :func:`predict_tiled`).
        stack: N x H x W grey values (uint8), H and W multiples of ``tile``.
        tile: side of the pieces, a multiple of ``2**depth``.

    Returns:
        ``mean_abs_diff_near_seams`` and ``mean_abs_diff_elsewhere`` (P(cell), within :data:`SEAM_BAND`
        pixels of an inner tile edge or not), ``max_abs_diff`` and ``band`` (the band's half-width).
    """
    depth, padding = _model_geometry(model)
    if padding != "same":
        raise ValueError("seam_report needs a same-padded model; valid-padding models are tiled with context")
    stack = np.asarray(stack)
    n, h, w = stack.shape
    if h % tile or w % tile or tile % 2**depth:
        raise ValueError(f"slices {h}x{w} must be multiples of tile {tile}, itself a multiple of {2**depth}")
    near = np.zeros((h, w), dtype=bool)
    for edge in range(tile, h, tile):
        near[edge - SEAM_BAND : edge + SEAM_BAND] = True
    for edge in range(tile, w, tile):
        near[:, edge - SEAM_BAND : edge + SEAM_BAND] = True
    diffs = []
    for image in stack:
        whole = predict_proba(model, image)
        pieces = np.empty_like(whole)
        for y in range(0, h, tile):
            for x in range(0, w, tile):
                pieces[y : y + tile, x : x + tile] = predict_proba(model, image[y : y + tile, x : x + tile])
        diffs.append(np.abs(whole - pieces))
    d = np.stack(diffs)
    return {
        "mean_abs_diff_near_seams": float(d[:, near].mean()) if near.any() else math.nan,  # one piece: no seams
        "mean_abs_diff_elsewhere": float(d[:, ~near].mean()),
        "max_abs_diff": float(d.max()),
        "band": float(SEAM_BAND),
    }
