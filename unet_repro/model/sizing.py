"""Tile arithmetic of the U-Net (section 2 and Fig. 1 of the paper).

With unpadded ("valid") 3x3 convolutions every convolution removes one pixel on each side and every
2x2 max pooling halves the size, so only some input sizes give an integer, symmetric crop at every
skip connection: "it is important to select the input tile size such that all 2x2 max-pooling
operations are applied to a layer with an even x- and y-size" (section 2). For depth 4 these are
188, 204, 220, ... (every size = 12 mod 16 from 188); the paper's 572 gives a 388 output.

:class:`UNetConfig` names the hyper-parameters of Fig. 1 once; the network (``unet_repro.model.unet.UNet``),
the hand count of its feature maps (:func:`feature_maps`) and the training configuration all take it.

Pure arithmetic: this module imports no torch (``center_crop`` slices whatever array it is given), so the
configuration lives here. :func:`mirror_canvas` extends an image by mirroring (Fig. 2: the missing context of
a border tile), for prediction and for training tiles alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

import numpy as np

if TYPE_CHECKING:  # annotations only: this module imports no torch at run time
    import torch

__all__ = [
    "Padding",
    "Upsampling",
    "UNetConfig",
    "FeatureMap",
    "feature_maps",
    "output_size",
    "is_valid_input_size",
    "valid_input_sizes",
    "nearest_valid_sizes",
    "check_input_size",
    "receptive_field",
    "border",
    "center_crop",
    "tile_layout",
    "mirror_canvas",
]

Padding = Literal["valid", "same"]
Upsampling = Literal["transpose", "bilinear"]
T = TypeVar("T", "torch.Tensor", "np.ndarray")


@dataclass(frozen=True)
class UNetConfig:
    """The network of Fig. 1 (section 2); the defaults are the paper's.

    Args:
        in_channels: image channels (1 for the EM data).
        num_classes: output channels of the final 1x1 convolution (2: membrane, cell).
        base_channels: channels of the first level (64 in the paper); level l has ``base * 2**l``.
        depth: number of 2x2 max poolings (4 in the paper).
        padding: ``"valid"`` (paper: unpadded convolutions, the output is smaller than the input) or
            ``"same"`` (zero padding, output size = input size).
        upsampling: ``"transpose"`` (paper: learned 2x2 up-convolution) or ``"bilinear"`` (bilinear x2
            and a 1x1 convolution).
        batch_norm: batch normalisation after each 3x3 convolution (not in the paper).
        dropout: drop-out probability at the end of the contracting path (section 3.1; the paper gives
            no value, 0.5 here); 0 disables it.

    Raises:
        ValueError: on a value the network cannot be built with, naming the field.
    """

    in_channels: int = 1
    num_classes: int = 2
    base_channels: int = 64
    depth: int = 4
    padding: Padding = "valid"
    upsampling: Upsampling = "transpose"
    batch_norm: bool = False
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' (paper) or 'same', got {self.padding!r}")
        if self.upsampling not in ("transpose", "bilinear"):
            raise ValueError(f"upsampling must be 'transpose' (paper) or 'bilinear', got {self.upsampling!r}")
        for name in ("in_channels", "num_classes", "base_channels", "depth"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.batch_norm, bool):
            raise ValueError(f"batch_norm must be True or False, got {self.batch_norm!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    def channels(self) -> list[int]:
        """Channels of the levels 0..depth (Fig. 1: 64, 128, 256, 512, 1024)."""
        return [self.base_channels * 2**level for level in range(self.depth + 1)]


@dataclass(frozen=True)
class FeatureMap:
    """One row of Fig. 1: a layer, the feature map it produces, and its cost derived by hand.

    ``params`` counts weights + biases (+ batch-norm scale and shift); ``flops`` counts 2 x the
    multiply-adds of the layer's convolution (what ``torch.utils.flop_counter`` counts; poolings, ReLUs,
    concatenations and bilinear interpolation count 0).
    """

    stage: str  # e.g. "enc1", "bottom", "dec4", "out"
    layer: str  # e.g. "conv3x3+ReLU", "maxpool2x2", "upconv2x2", "crop+concat", "conv1x1"
    size: int
    channels: int
    params: int = 0
    flops: int = 0


def _check_args(depth: int, padding: str) -> None:
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")


def feature_maps(input_size: int, config: UNetConfig = UNetConfig()) -> list[FeatureMap]:
    """Every feature map of the network for a square tile, in order (the numbers printed in Fig. 1).

    The parameters and FLOPs are derived from the layer shapes alone (a k x k convolution from C to C'
    channels has k*k*C*C' weights and C' biases and costs 2*k*k*C*C' FLOPs per output pixel), so that
    the notebook can check them against the torch model.

    Args:
        input_size: side of the square input tile.
        config: the network (default: the paper's).

    Returns:
        One :class:`FeatureMap` per layer, from the input to the final 1x1 convolution.

    Raises:
        ValueError: when ``input_size`` is not a valid size (see :func:`check_input_size`).
    """
    depth, padding, base_channels = config.depth, config.padding, config.base_channels
    in_channels, num_classes, batch_norm = config.in_channels, config.num_classes, config.batch_norm
    check_input_size(input_size, depth, padding)
    shrink = 2 if padding == "valid" else 0

    def conv(stage: str, cin: int, cout: int, size: int) -> FeatureMap:
        params = 9 * cin * cout + (2 * cout if batch_norm else cout)
        return FeatureMap(stage, "conv3x3+ReLU", size, cout, params, 2 * 9 * cin * cout * size * size)

    maps = [FeatureMap("input", "input", input_size, in_channels)]
    size, ch = input_size, in_channels
    for level in range(depth + 1):
        cout = base_channels * 2**level
        stage = "bottom" if level == depth else f"enc{level + 1}"
        for _ in range(2):
            size -= shrink
            maps.append(conv(stage, ch, cout, size))
            ch = cout
        if level < depth:
            size //= 2
            maps.append(FeatureMap(f"enc{level + 2}" if level + 1 < depth else "bottom", "maxpool2x2", size, ch))
    for level in reversed(range(depth)):
        cout = base_channels * 2**level
        stage = f"dec{level + 1}"
        size *= 2
        if config.upsampling == "transpose":
            maps.append(FeatureMap(stage, "upconv2x2", size, cout, 4 * ch * cout + cout, 2 * ch * cout * size * size))
        else:
            maps.append(
                FeatureMap(stage, "bilinear+conv1x1", size, cout, ch * cout + cout, 2 * ch * cout * size * size)
            )
        maps.append(FeatureMap(stage, "crop+concat", size, 2 * cout))
        ch = 2 * cout
        for _ in range(2):
            size -= shrink
            maps.append(conv(stage, ch, cout, size))
            ch = cout
    maps.append(
        FeatureMap(
            "out", "conv1x1", size, num_classes, ch * num_classes + num_classes, 2 * ch * num_classes * size * size
        )
    )
    return maps


def _sizes_ok(n: int, depth: int, padding: str) -> bool:
    """Walk the network; every pooled map even, every crop symmetric, every map non-empty."""
    if n < 1:
        return False
    if padding == "same":
        return n % 2**depth == 0
    size, skips = n, []
    for _ in range(depth):
        size -= 4
        if size < 2 or size % 2:
            return False
        skips.append(size)
        size //= 2
    size -= 4
    if size < 1:
        return False
    for skip in reversed(skips):
        size = 2 * size
        if skip < size or (skip - size) % 2:
            return False
        size -= 4
        if size < 1:
            return False
    return True


def is_valid_input_size(input_size: int, depth: int = 4, padding: Padding = "valid") -> bool:
    """True when ``input_size`` passes through the network with even poolings and symmetric crops."""
    _check_args(depth, padding)
    return _sizes_ok(int(input_size), depth, padding)


def output_size(input_size: int, depth: int = 4, padding: Padding = "valid") -> int:
    """The side of the segmentation map for a square input tile (572 -> 388 for the paper).

    Raises:
        ValueError: when ``input_size`` is not valid; the message names the nearest valid sizes.
    """
    return feature_maps(input_size, UNetConfig(base_channels=1, depth=depth, padding=padding))[-1].size


def valid_input_sizes(lo: int, hi: int, depth: int = 4, padding: Padding = "valid") -> list[int]:
    """All valid input sizes in ``[lo, hi]`` (for the paper: 188, 204, ..., i.e. 12 mod 16 from 188)."""
    _check_args(depth, padding)
    return [n for n in range(max(1, lo), hi + 1) if _sizes_ok(n, depth, padding)]


def nearest_valid_sizes(input_size: int, depth: int = 4, padding: Padding = "valid") -> tuple[int | None, int]:
    """The largest valid size below ``input_size`` (None if there is none) and the smallest above."""
    _check_args(depth, padding)
    below = next((n for n in range(input_size - 1, 0, -1) if _sizes_ok(n, depth, padding)), None)
    above = next(n for n in itertools.count(max(1, input_size + 1)) if _sizes_ok(n, depth, padding))
    return below, above


def check_input_size(input_size: int, depth: int = 4, padding: Padding = "valid") -> None:
    """Raise a ``ValueError`` naming the nearest valid sizes when ``input_size`` is not valid."""
    _check_args(depth, padding)
    if not _sizes_ok(int(input_size), depth, padding):
        below, above = nearest_valid_sizes(int(input_size), depth, padding)
        rule = (
            f"a multiple of {2**depth} (2**depth)"
            if padding == "same"
            else "one whose every 2x2 max pooling sees an even size (section 2 of the paper)"
        )
        near = f"{below} or {above}" if below else f"{above}"
        raise ValueError(
            f"input size {input_size} is not valid for a depth-{depth} U-Net with {padding!r} padding: "
            f"it needs {rule}; use a valid size. Nearest valid sizes: {near}."
        )


def _input_intervals(input_size: int, depth: int) -> list[tuple[int, int]]:
    """For each output pixel of a valid-padding U-Net (1D), the first and last input pixel it depends on."""

    def join(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
        return (min(a[0], b[0]), max(a[1], b[1]))

    def conv(x: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return [join(join(x[i], x[i + 1]), x[i + 2]) for i in range(len(x) - 2)]

    x = [(i, i) for i in range(input_size)]
    skips = []
    for _ in range(depth):
        x = conv(conv(x))
        skips.append(x)
        x = [join(x[2 * i], x[2 * i + 1]) for i in range(len(x) // 2)]  # 2x2 max pooling
    x = conv(conv(x))
    for skip in reversed(skips):
        x = [x[i // 2] for i in range(2 * len(x))]  # 2x2 up-convolution, stride 2
        off = (len(skip) - len(x)) // 2
        x = [join(a, b) for a, b in zip(x, skip[off : off + len(x)], strict=False)]  # crop + concatenation
        x = conv(conv(x))
    return x


def receptive_field(depth: int = 4) -> int:
    """Side of the largest input window that one output pixel of the valid-padding U-Net depends on.

    Found by walking the layers with the interval each pixel depends on (exact, not the usual
    stride-based bound). Because the 2x2 poolings are aligned with the tile, the window depends on the
    pixel's phase: for depth 4 it is 188 to 204 pixels wide, while the context border of a tile,
    ``(input - output) / 2``, is 92.
    """
    _check_args(depth, "valid")
    n = valid_input_sizes(1, 10**6 if depth > 12 else 2 ** (depth + 3) * 8, depth)[0] + 2 ** (depth + 1)
    widths = [b - a + 1 for a, b in _input_intervals(n, depth)]
    return max(widths)


def border(input_size: int, depth: int = 4) -> int:
    """Context pixels on each side of the output window: ``(input - output) / 2`` (92 for 572)."""
    return (input_size - output_size(input_size, depth, "valid")) // 2


def center_crop(x: T, size: int | Sequence[int]) -> T:
    """Crop the last two axes of an array or tensor to ``size`` around the centre (Fig. 1, grey arrows).

    Used for the skip connections of the model and for cropping targets and weight maps to the output
    window of a valid-padding network. Works on NumPy arrays and torch tensors alike.
    """
    th, tw = (size, size) if isinstance(size, int) else tuple(size)
    h, w = x.shape[-2], x.shape[-1]
    if th > h or tw > w or (h - th) % 2 or (w - tw) % 2:
        raise ValueError(f"cannot centre-crop {h}x{w} to {th}x{tw}: the crop must be smaller with an even margin")
    top, left = (h - th) // 2, (w - tw) // 2
    return x[..., top : top + th, left : left + tw]


def tile_layout(length: int, tile: int, depth: int = 4) -> tuple[list[int], int, int]:
    """Where the tiles of overlap-tile prediction go along one axis (Fig. 2, valid padding).

    Output windows start at multiples of ``2**depth`` so that every tile sees the image on the same
    pooling grid: a tiled prediction then equals the prediction of one big tile exactly. The fewest
    windows that cover the axis are spread evenly between 0 and ``length - out`` rounded up to that
    multiple, so the last one reaches at most ``2**depth - 1`` pixels beyond the image (predicted on the
    mirrored image and dropped). For a 512-pixel ISBI slice and 572-pixel tiles: windows at 0 and 128.

    Args:
        length: image side to cover.
        tile: input tile side (a valid size, e.g. 572).
        depth: number of poolings.

    Returns:
        ``(starts, out, border)``: output-window starts (also the input-tile starts on the image extended
        by ``border`` on each side), the output side of one tile, and the mirrored context border.
    """
    if length < 1:
        raise ValueError(f"length must be positive, got {length}")
    check_input_size(tile, depth, "valid")
    out = output_size(tile, depth, "valid")
    step = (out // 2**depth) * 2**depth
    if step == 0:
        raise ValueError(f"tile {tile} gives an output of {out} < {2**depth}; use a larger tile")
    grid = 2**depth
    last = -(-max(0, length - out) // grid) * grid  # start of the last window, on the grid
    n = 1 + -(-last // step)
    starts = [0] if n == 1 else [(i * last // (n - 1)) // grid * grid for i in range(n)]
    return starts, out, (tile - out) // 2


def mirror_canvas(image: np.ndarray, extent: tuple[int, int], border: int) -> np.ndarray:
    """Extend ``image`` (H x W) by mirroring: ``border`` on top/left, up to ``extent + border`` bottom/right.

    Fig. 2: the missing context is extrapolated by mirroring. Mirrors repeatedly when the border exceeds
    the image (numpy's reflect padding handles that).
    """
    h, w = image.shape[-2:]
    pad = [(0, 0)] * (image.ndim - 2) + [(border, extent[0] - h + border), (border, extent[1] - w + border)]
    return np.pad(image, pad, mode="reflect")
