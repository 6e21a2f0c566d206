"""Tile arithmetic of section 2: valid sizes, output sizes, borders, crops, tile layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unet_repro.model import sizing
from unet_repro.model.unet import UNet


def test_paper_numbers():
    assert sizing.output_size(572) == 388
    assert sizing.border(572) == 92
    fm = sizing.feature_maps(572)
    bottom = [r for r in fm if r.stage == "bottom" and r.layer.startswith("conv")]
    assert (bottom[-1].size, bottom[-1].channels) == (28, 1024)
    assert [r.size for r in fm if r.layer == "upconv2x2"] == [56, 104, 200, 392]


def test_valid_sizes_are_12_mod_16_from_188():
    assert sizing.valid_input_sizes(1, 1000) == list(range(188, 1001, 16))


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_valid_sizes_run_through_the_model_and_invalid_ones_do_not(depth):
    """The arithmetic agrees with torch: valid sizes run, the sizes between them are refused."""
    model = UNet(base_channels=1, depth=depth, dropout=0.0).eval()
    sizes = sizing.valid_input_sizes(1, 2 ** (depth + 4) * 3, depth)
    assert sizes, depth
    for n in sizes[:3]:
        assert model(torch.zeros(1, 1, n, n)).shape[-1] == sizing.output_size(n, depth)
    for n in range(sizes[0] + 1, sizes[1]):
        assert not sizing.is_valid_input_size(n, depth)
        with pytest.raises(ValueError, match="Nearest valid sizes"):
            model(torch.zeros(1, 1, n, n))
    # Without the check, torch would fail deep inside (or silently mis-crop): the check is what the user sees.
    assert sizes[1] - sizes[0] == 2**depth


def test_nearest_valid_sizes_for_512():
    assert sizing.nearest_valid_sizes(512) == (508, 524)
    with pytest.raises(ValueError, match="508 or 524"):
        sizing.output_size(512)


def test_small_sizes_have_no_valid_size_below():
    below, above = sizing.nearest_valid_sizes(100)
    assert below is None and above == 188
    with pytest.raises(ValueError, match="188"):
        sizing.check_input_size(100)


@pytest.mark.parametrize("depth", [1, 4, 6, 8])
def test_nearest_valid_size_above_exists_at_any_depth(depth):
    """Below the smallest valid size (which grows like 2**depth) the next valid size is still named."""
    below, above = sizing.nearest_valid_sizes(10, depth)
    assert below is None or below < 10
    assert above == sizing.valid_input_sizes(11, 10 * 2 ** (depth + 2), depth)[0]


def test_same_padding_sizes():
    assert sizing.output_size(64, padding="same") == 64
    assert sizing.valid_input_sizes(1, 64, padding="same") == [16, 32, 48, 64]


@pytest.mark.parametrize("bad", [dict(depth=0), dict(padding="full")])
def test_bad_arguments(bad):
    with pytest.raises(ValueError):
        sizing.valid_input_sizes(1, 100, **bad)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_receptive_field_matches_autograd(depth):
    """The widest input window one output pixel depends on, measured by back-propagation."""
    torch.manual_seed(0)
    model = UNet(base_channels=2, depth=depth, dropout=0.0).double().eval()
    for m in model.modules():  # positive weights: no accidental zero gradient
        if hasattr(m, "weight") and m.weight is not None:
            m.weight.data.abs_()
    # Max pooling back-propagates to one pixel of each window only; average pooling has the same support.
    model.pool = torch.nn.AvgPool2d(2, 2)
    n = sizing.valid_input_sizes(1, 400, depth)[2]
    x = torch.rand(1, 1, 1, n, dtype=torch.double).expand(1, 1, n, n).clone().requires_grad_(True)
    y = model(x)
    widths = []
    for j in range(y.shape[-1]):
        x.grad = None
        y[0, 1, y.shape[-2] // 2, j].backward(retain_graph=True)
        cols = torch.nonzero(x.grad[0, 0].abs().sum(0) > 0).flatten()
        widths.append(int(cols.max() - cols.min() + 1))
    assert max(widths) == sizing.receptive_field(depth)


def test_center_crop_numpy_and_torch():
    a = np.arange(36).reshape(6, 6)
    assert sizing.center_crop(a, 2).tolist() == [[14, 15], [20, 21]]
    t = torch.arange(2 * 36).reshape(2, 6, 6)
    assert torch.equal(sizing.center_crop(t, (4, 2)), t[:, 1:5, 2:4])
    with pytest.raises(ValueError):
        sizing.center_crop(a, 3)  # odd margin
    with pytest.raises(ValueError):
        sizing.center_crop(a, 8)


@pytest.mark.parametrize(
    "length,tile", [(512, 572), (1000, 572), (388, 572), (100, 572), (777, 236), (30, 236), (5000, 572), (1100, 236)]
)
def test_tile_layout_covers_the_axis_on_the_pooling_grid(length, tile):
    starts, out, border = sizing.tile_layout(length, tile)
    assert out == sizing.output_size(tile) and border == (tile - out) // 2
    covered = np.zeros(starts[-1] + out, bool)
    for s in starts:
        covered[s : s + out] = True
    assert covered.all() and len(covered) >= length
    assert starts[0] == 0 and all(s % 16 == 0 for s in starts)
    assert len(starts) == 1 or starts[-2] + out < length  # no tile more than needed
    assert length <= out or starts[-1] + out < length + 16  # the last window reaches < one pooling cell beyond


def test_tile_layout_for_an_isbi_slice():
    assert sizing.tile_layout(512, 572) == ([0, 128], 388, 92)


def test_tile_layout_refuses_tiles_smaller_than_the_pooling_grid():
    with pytest.raises(ValueError, match="larger tile"):
        sizing.tile_layout(512, 188)
    with pytest.raises(ValueError, match="508 or 524"):
        sizing.tile_layout(512, 512)
