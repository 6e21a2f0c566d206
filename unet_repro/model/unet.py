"""The U-Net architecture (section 2 and Fig. 1 of the paper).

The defaults are the paper's network: a contracting path of two unpadded 3x3 convolutions + ReLU
and a 2x2 max pooling with stride 2 per level, the number of channels doubling from 64 to 1024; an
expansive path of 2x2 up-convolutions that halve the channels, concatenation with the centre-cropped
feature map of the contracting path, and two 3x3 convolutions + ReLU; a final 1x1 convolution to
the classes. 23 convolutional layers, 31,030,658 parameters. Drop-out at the end of the contracting
path (section 3.1) and Gaussian initialisation with standard deviation sqrt(2/N) (section 3).

The hyper-parameters are one frozen :class:`UNetConfig` (defined in ``unet_repro.model.sizing``, which needs
no torch); ``UNet(config)`` and ``UNet(base_channels=16, ...)`` build the same
network. Variants that depart from the paper (each a field of the configuration, never a silent
default): ``padding="same"`` (output size = input size), ``upsampling="bilinear"`` (bilinear x2 followed by a
1x1 convolution that halves the channels, instead of the learned 2x2 up-convolution) and
``batch_norm=True`` (conv -> batch norm -> ReLU; batch normalisation postdates the paper).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from .sizing import Padding, UNetConfig, Upsampling, center_crop, check_input_size

__all__ = ["UNet", "DoubleConv", "init_paper_", "fan_in", "trace_feature_maps", "count_flops"]


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by (optional batch norm and) a ReLU (Fig. 1, blue arrows)."""

    def __init__(self, cin: int, cout: int, padding: Padding, batch_norm: bool) -> None:
        pad = 1 if padding == "same" else 0
        layers: list[nn.Module] = []
        for c in (cin, cout):
            layers.append(nn.Conv2d(c, cout, kernel_size=3, padding=pad, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Up(nn.Module):
    """2x2 up-convolution halving the channels (Fig. 1, green arrows), or bilinear x2 + 1x1 conv."""

    def __init__(self, cin: int, mode: Upsampling) -> None:
        super().__init__()
        if mode == "transpose":
            self.up: nn.Module = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(cin, cin // 2, kernel_size=1),
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.up(x)


def fan_in(module: nn.Module) -> int:
    """N of section 3: the number of incoming nodes of one neuron of ``module``.

    For a k x k convolution over C channels, N = k*k*C (the paper's example: 9 * 64 = 576). For the 2x2
    up-convolution with stride 2, each output pixel receives exactly one input pixel per channel, so
    N = C_in.
    """
    if isinstance(module, nn.ConvTranspose2d):
        return module.in_channels
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return module.in_channels // module.groups * kh * kw
    raise TypeError(f"no fan-in rule for {type(module).__name__}")


@torch.no_grad()
def init_paper_(model: nn.Module, generator: torch.Generator | None = None) -> None:
    """Draw every convolution's weights from N(0, 2/N) and zero its bias (section 3, He et al.)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.weight.normal_(0.0, math.sqrt(2.0 / fan_in(m)), generator=generator)
            if m.bias is not None:
                m.bias.zero_()


class UNet(nn.Module):
    """U-Net of Fig. 1.

    Args:
        config: the network (see :class:`UNetConfig`; default: the paper's).
        **fields: instead of ``config``, its fields by name (``UNet(base_channels=16, depth=3)``).

    The forward pass takes ``N x in_channels x H x W`` and returns logits ``N x num_classes x h x w``;
    a valid-padding model on a 572x572 tile returns 388x388. ``model.config`` is the :class:`UNetConfig`.
    """

    def __init__(self, config: UNetConfig | None = None, **fields: Any) -> None:
        super().__init__()
        if config is not None and fields:
            raise TypeError("give UNet a UNetConfig or its fields by name, not both")
        if config is not None and not isinstance(config, UNetConfig):
            raise TypeError(f"UNet(config) takes a UNetConfig, got {type(config).__name__}")
        self.config: UNetConfig = config if config is not None else UNetConfig(**fields)
        in_channels, num_classes, depth = self.config.in_channels, self.config.num_classes, self.config.depth
        padding, upsampling, batch_norm = self.config.padding, self.config.upsampling, self.config.batch_norm
        dropout = self.config.dropout
        ch = self.config.channels()
        self.down = nn.ModuleList(
            DoubleConv(in_channels if level == 0 else ch[level - 1], ch[level], padding, batch_norm)
            for level in range(depth)
        )
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.bottom = DoubleConv(ch[depth - 1], ch[depth], padding, batch_norm)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.up = nn.ModuleList(Up(ch[level + 1], upsampling) for level in reversed(range(depth)))
        self.dec = nn.ModuleList(
            DoubleConv(2 * ch[level], ch[level], padding, batch_norm) for level in reversed(range(depth))
        )
        self.head = nn.Conv2d(ch[0], num_classes, kernel_size=1)
        init_paper_(self)

    def check_input(self, x: Tensor) -> None:
        """Raise a ``ValueError`` that says what to change when ``x`` does not fit the network."""
        if x.dim() != 4:
            raise ValueError(f"expected a 4D batch N x C x H x W, got shape {tuple(x.shape)}")
        if x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"the model takes {self.config.in_channels} input channel(s), got {x.shape[1]} "
                f"(shape {tuple(x.shape)}); add/remove a channel axis or build UNet(in_channels={x.shape[1]})"
            )
        for axis, n in (("height", x.shape[2]), ("width", x.shape[3])):
            try:
                check_input_size(int(n), self.config.depth, self.config.padding)
            except ValueError as exc:
                raise ValueError(f"{axis}: {exc}") from None

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.dropout(self.bottom(x))
        for up, block, skip in zip(self.up, self.dec, reversed(skips), strict=False):
            x = up(x)
            x = block(torch.cat([center_crop(skip, x.shape[-2:]), x], dim=1))
        return self.head(x)

    def stage_parameters(self) -> dict[str, int]:
        """Parameters per stage of Fig. 1 (``enc1..encD``, ``bottom``, ``decD..dec1``, ``out``)."""
        depth = self.config.depth
        count = lambda *mods: sum(p.numel() for m in mods for p in m.parameters())  # noqa: E731
        stages = {f"enc{level + 1}": count(block) for level, block in enumerate(self.down)}
        stages["bottom"] = count(self.bottom)
        for i, (up, block) in enumerate(zip(self.up, self.dec, strict=False)):
            stages[f"dec{depth - i}"] = count(up, block)
        stages["out"] = count(self.head)
        return stages


def trace_feature_maps(model: UNet, input_size: int) -> list[tuple[str, int, int]]:
    """Run ``model`` on a meta-device tile and record each convolution's output (kind, size, channels).

    Nothing is computed (meta tensors carry shapes only), so this is instant even for the paper's model.
    """
    records: list[tuple[str, int, int]] = []

    def hook(module: nn.Module, _inp: tuple, out: Tensor) -> None:
        kind = (
            "upconv2x2"
            if isinstance(module, nn.ConvTranspose2d)
            else f"conv{module.kernel_size[0]}x{module.kernel_size[1]}"
        )
        records.append((kind, int(out.shape[-1]), int(out.shape[1])))

    meta = UNet(model.config).to("meta")
    handles = [m.register_forward_hook(hook) for m in meta.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        meta.eval()(torch.zeros(1, model.config.in_channels, input_size, input_size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return records


def count_flops(config: UNetConfig, input_size: int) -> int:
    """FLOPs of one forward pass on one square tile, as ``torch.utils.flop_counter`` counts them.

    Runs on the meta device, so no arithmetic is done and the paper's model costs nothing to count.

    Args:
        config: the network (``model.config``).
        input_size: side of the square input tile.

    Returns:
        2 x the multiply-adds of every convolution (compare ``sizing.feature_maps``).
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = UNet(config).eval()
        x = torch.zeros(1, config.in_channels, input_size, input_size)
    with FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())
