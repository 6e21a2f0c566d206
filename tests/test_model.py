"""The U-Net of Fig. 1: shapes, sizes, parameter count, initialisation, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from unet_repro.model import sizing
from unet_repro.model.unet import UNet, count_flops, fan_in, trace_feature_maps


def test_paper_model_parameter_count_and_layers():
    model = UNet()
    assert sum(p.numel() for p in model.parameters()) == 31_030_658
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 23


def test_paper_output_shape_572_to_388():
    with torch.device("meta"):
        model = UNet()
        y = model(torch.zeros(1, 1, 572, 572))
    assert tuple(y.shape) == (1, 2, 388, 388)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
def test_output_size_matches_sizing(depth, padding, upsampling):
    sizes = sizing.valid_input_sizes(1, 400, depth, padding)
    h, w = sizes[len(sizes) // 2], sizes[len(sizes) // 2 + 1]  # non-square on purpose
    model = UNet(base_channels=2, depth=depth, padding=padding, upsampling=upsampling).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 1, h, w))
    assert tuple(y.shape) == (2, 2, sizing.output_size(h, depth, padding), sizing.output_size(w, depth, padding))
    if padding == "same":
        assert y.shape[-2:] == (h, w)


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(padding="same"),
        dict(upsampling="bilinear"),
        dict(batch_norm=True),
        dict(depth=2, base_channels=8, in_channels=3, num_classes=5),
    ],
)
def test_hand_derived_parameters_and_flops_match_torch(kw):
    model = UNet(**kw)
    n = sizing.valid_input_sizes(150, 700, model.config.depth, model.config.padding)[-1]
    rows = sizing.feature_maps(n, model.config)
    assert sum(r.params for r in rows) == sum(p.numel() for p in model.parameters())
    assert sum(r.flops for r in rows) == count_flops(model.config, n)
    traced = trace_feature_maps(model, n)
    hand = [(r.size, r.channels) for r in rows if r.layer not in ("input", "maxpool2x2", "crop+concat")]
    assert hand == [(s, c) for _, s, c in traced]


def test_batch_norm_and_bilinear_are_present():
    model = UNet(base_channels=4, upsampling="bilinear", batch_norm=True)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in model.modules())
    assert any(isinstance(m, nn.Upsample) for m in model.modules())


def test_init_std_is_sqrt_2_over_n():
    torch.manual_seed(0)
    model = UNet()
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and not isinstance(m, nn.ConvTranspose2d):
            n = m.in_channels * m.kernel_size[0] * m.kernel_size[1]  # section 3: 9 * 64 = 576 for a 3x3 conv on 64
        elif isinstance(m, nn.ConvTranspose2d):
            n = m.in_channels  # one input pixel per channel feeds each output pixel
        else:
            continue
        assert fan_in(m) == n
        target = math.sqrt(2.0 / n)
        std = m.weight.detach().std().item()
        assert abs(std - target) / target < 0.05, (m, std, target)
        assert abs(m.weight.detach().mean().item()) < 0.1 * target
        assert m.bias is None or torch.count_nonzero(m.bias) == 0


def test_paper_example_fan_in():
    assert fan_in(nn.Conv2d(64, 64, 3)) == 576


def _outputs_of_every_module(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """One forward pass, recording the output of every named sub-module (leaves and blocks)."""
    seen: dict[str, torch.Tensor] = {}
    handles = [
        m.register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach().clone()))
        for name, m in model.named_modules()
        if name
    ]
    try:
        seen[""] = model(x).detach()
    finally:
        for h in handles:
            h.remove()
    return seen


def test_dropout_at_end_of_contracting_path():
    """Section 3.1: "Drop-out layers at the end of the contracting path". In training mode the bottom block's
    output, and nothing computed before it, is dropped at rate p (survivors scaled by 1 / (1 - p)); the
    dropped map is what the first up-convolution receives; nothing else in the network is random."""
    torch.manual_seed(0)
    model = UNet(base_channels=4, depth=2, dropout=0.5)
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.5
    x = torch.randn(1, 1, 188, 188)
    received: list[torch.Tensor] = []
    hook = model.up[0].register_forward_pre_hook(lambda _m, inp: received.append(inp[0].detach().clone()))
    model.train()
    torch.manual_seed(1)
    a = _outputs_of_every_module(model, x)
    torch.manual_seed(2)
    b = _outputs_of_every_module(model, x)
    hook.remove()
    order = list(a)  # forward order of the hooks' calls
    first_random = next(name for name in order if not torch.equal(a[name], b[name]))
    assert first_random == "dropout", f"the first random output is {first_random!r}, not the drop-out's"
    assert all(torch.equal(a[n], b[n]) for n in order[: order.index("dropout")])  # contracting path: no drop-out
    assert order.index("dropout") == order.index("bottom") + 1 and order[order.index("dropout") + 1].startswith("up.0")
    bottom, dropped = a["bottom"], a["dropout"]
    assert torch.equal(received[0], dropped)  # the first up-convolution gets the dropped map
    alive = bottom > 0  # ReLU zeros are not drop-out's doing
    kept = dropped[alive] != 0
    rate = 1.0 - kept.float().mean().item()
    n = int(alive.sum())
    assert n > 2000 and abs(rate - 0.5) < 4 * (0.25 / n) ** 0.5, (rate, n)
    torch.testing.assert_close(dropped[alive][kept], 2.0 * bottom[alive][kept])
    # without drop-out, two training-mode passes are identical: no other layer draws random numbers
    torch.manual_seed(0)
    plain = UNet(base_channels=4, depth=2, dropout=0.0).train()
    assert isinstance(plain.dropout, nn.Identity)
    torch.manual_seed(1)
    y1 = plain(x)
    torch.manual_seed(2)
    assert torch.equal(y1, plain(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_invalid_size_names_nearest_valid_sizes():
    model = UNet(base_channels=2)
    with pytest.raises(ValueError, match=r"512.*508 or 524"):
        model(torch.zeros(1, 1, 512, 512))
    with pytest.raises(ValueError, match="width"):
        model(torch.zeros(1, 1, 572, 570))


def test_same_padding_needs_multiple_of_16():
    model = UNet(base_channels=2, padding="same")
    assert model(torch.zeros(1, 1, 64, 80)).shape[-2:] == (64, 80)
    with pytest.raises(ValueError, match="multiple of 16"):
        model(torch.zeros(1, 1, 60, 64))


def test_wrong_channels_and_rank_are_clear_errors():
    model = UNet(base_channels=2)
    with pytest.raises(ValueError, match="input channel"):
        model(torch.zeros(1, 3, 188, 188))
    with pytest.raises(ValueError, match="4D"):
        model(torch.zeros(1, 188, 188))


@pytest.mark.parametrize(
    "kw", [dict(padding="full"), dict(upsampling="nearest"), dict(depth=0), dict(base_channels=0), dict(dropout=1.0)]
)
def test_bad_constructor_arguments(kw):
    with pytest.raises(ValueError):
        UNet(**kw)


def test_config_rebuilds_model():
    model = UNet(base_channels=8, depth=3, padding="same", dropout=0.1)
    clone = UNet(model.config)
    assert clone.config == model.config
    assert [p.shape for p in clone.parameters()] == [p.shape for p in model.parameters()]


def _cut_skips(model: UNet, levels: list[int]) -> list:
    """Zero the contracting-path half of the concatenation entering the decoder blocks ``levels``."""

    def zero_left_half(_module, inputs):
        (z,) = inputs
        z = z.clone()
        z[:, : z.shape[1] // 2] = 0
        return (z,)

    return [model.dec[i].register_forward_pre_hook(zero_left_half) for i in levels]


@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
def test_skip_connections_carry_information(upsampling):
    """Fig. 1 (grey arrows): each decoder block receives [centre-cropped encoder map, up-sampled map], and the
    output depends on that left half. Compared with the same network whose skips are cut (zeroed by a hook),
    the output changes at every level, and the full-resolution skip is what makes a 1-pixel change of the
    input move the output right above it."""
    torch.manual_seed(0)
    depth = 3
    model = UNet(base_channels=4, depth=depth, dropout=0.0, upsampling=upsampling).eval()
    n = sizing.valid_input_sizes(100, 200, depth, "valid")[0]
    x = torch.randn(1, 1, n, n)
    enc: dict[int, torch.Tensor] = {}
    dec_in: dict[int, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, i=i: enc.__setitem__(i, out.detach().clone()))
        for i, m in enumerate(model.down)
    ]
    hooks += [
        m.register_forward_pre_hook(lambda _m, inp, i=i: dec_in.__setitem__(i, inp[0].detach().clone()))
        for i, m in enumerate(model.dec)
    ]
    with torch.no_grad():
        y = model(x)
    for h in hooks:
        h.remove()
    for i in range(depth):
        level = depth - 1 - i  # dec[0] is the deepest decoder block, fed by the deepest encoder block
        left = dec_in[i][:, : dec_in[i].shape[1] // 2]
        assert torch.equal(left, sizing.center_crop(enc[level], left.shape[-2:])), f"decoder {i}: not enc{level + 1}"
        assert left.abs().sum() > 0
    for i in range(depth):  # cutting any one skip changes the output (exactly nothing if it was already cut)
        handles = _cut_skips(model, [i])
        with torch.no_grad():
            cut = model(x)
        for h in handles:
            h.remove()
        change = float((cut - y).abs().mean() / y.abs().mean())
        assert change > 0.005, f"cutting the skip into decoder {i} changes the output by {change:.2g} only"

    def response(m: UNet) -> torch.Tensor:
        """|d output(centre) / d input| over the input, for the membrane-vs-cell logit difference."""
        xi = x.clone().requires_grad_(True)
        out = m(xi)
        c = out.shape[-1] // 2
        (out[0, 1, c, c] - out[0, 0, c, c]).backward()
        return xi.grad[0, 0].abs()

    g_full = response(model)
    handles = _cut_skips(model, list(range(depth)))
    g_cut = response(model)
    for h in handles:
        h.remove()
    c = n // 2
    near = (slice(c - 2, c + 3), slice(c - 2, c + 3))  # the input pixels right above the output pixel
    # through the skips the output pixel responds to its own input neighbourhood far more than via the bottom
    full, cut_only = float(g_full[near].sum()), float(g_cut[near].sum())
    assert full > 2 * cut_only, f"centre response with skips {full:.3g}, with skips cut {cut_only:.3g}"
    assert not torch.allclose(g_full, g_cut)


def test_unet_config_is_one_frozen_description_of_fig_1():
    """UNetConfig: the paper's defaults, validated once; UNet(config) and UNet(**fields) build the same network."""
    import dataclasses

    from unet_repro.model.sizing import UNetConfig

    paper = UNetConfig()
    assert dataclasses.asdict(paper) == dict(
        in_channels=1,
        num_classes=2,
        base_channels=64,
        depth=4,
        padding="valid",
        upsampling="transpose",
        batch_norm=False,
        dropout=0.5,
    )
    assert paper.channels() == [64, 128, 256, 512, 1024]
    with pytest.raises(dataclasses.FrozenInstanceError):
        paper.depth = 3  # type: ignore[misc]
    for bad in (
        dict(padding="full"),
        dict(upsampling="nearest"),
        dict(depth=0),
        dict(base_channels=2.5),
        dict(num_classes=True),
        dict(dropout=-0.1),
        dict(batch_norm="yes"),
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            UNetConfig(**bad)
    cfg = UNetConfig(base_channels=4, depth=2, padding="same", dropout=0.0)
    torch.manual_seed(0)
    a = UNet(cfg)
    torch.manual_seed(0)
    b = UNet(base_channels=4, depth=2, padding="same", dropout=0.0)
    assert a.config == b.config == cfg and all(
        torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=False)
    )
    with pytest.raises(TypeError, match="not both"):
        UNet(cfg, depth=3)
    # the hand count and the FLOP counter take the same object
    n = sizing.valid_input_sizes(100, 200, 2, "same")[0]
    assert sum(r.flops for r in sizing.feature_maps(n, cfg)) == count_flops(cfg, n)
