"""The U-Net of Fig. 1: shapes, sizes, parameter count, initialisation, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from unet_repro import sizing
from unet_repro.model import UNet, count_flops, fan_in, trace_feature_maps


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


@pytest.mark.parametrize("kw", [dict(), dict(padding="same"), dict(upsampling="bilinear"), dict(batch_norm=True),
                                dict(depth=2, base_channels=8, in_channels=3, num_classes=5)])
def test_hand_derived_parameters_and_flops_match_torch(kw):
    model = UNet(**kw)
    n = sizing.valid_input_sizes(150, 700, model.config["depth"], model.config["padding"])[-1]
    rows = sizing.feature_maps(n, model.config["depth"], model.config["padding"], model.config["base_channels"],
                               model.config["in_channels"], model.config["num_classes"], model.config["upsampling"],
                               model.config["batch_norm"])
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


def test_dropout_at_end_of_contracting_path():
    model = UNet(base_channels=4)
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.5
    x = torch.randn(1, 1, 188, 188)
    model.train()
    a, b = model(x), model(x)
    assert not torch.equal(a, b)  # drop-out is active in training
    model.eval()
    assert torch.equal(model(x), model(x))
    assert isinstance(UNet(base_channels=4, dropout=0.0).dropout, nn.Identity)


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


@pytest.mark.parametrize("kw", [dict(padding="full"), dict(upsampling="nearest"), dict(depth=0),
                                dict(base_channels=0), dict(dropout=1.0)])
def test_bad_constructor_arguments(kw):
    with pytest.raises(ValueError):
        UNet(**kw)


def test_config_rebuilds_model():
    model = UNet(base_channels=8, depth=3, padding="same", dropout=0.1)
    clone = UNet(**model.config)
    assert clone.config == model.config
    assert [p.shape for p in clone.parameters()] == [p.shape for p in model.parameters()]


def test_skip_connections_carry_information():
    """The left half of the concatenation reaches the output: zeroing the up-path input changes nothing else."""
    torch.manual_seed(0)
    model = UNet(base_channels=4, depth=2, dropout=0.0).eval()
    x = torch.randn(1, 1, 140, 140, requires_grad=True)
    y = model(x)
    y[0, 1, 50, 50].backward()
    grad = x.grad[0, 0].abs() > 0
    rows = torch.nonzero(grad.any(1)).flatten()
    width = int(rows.max() - rows.min() + 1)
    assert width <= sizing.receptive_field(2)
    assert width >= 2 * sizing.border(140, 2) - 8  # the path reaches far (bottom) and near (skip)
