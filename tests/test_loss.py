"""Tests of unet_repro.loss: eq. 1 of the paper (weighted pixel-wise soft-max cross-entropy)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unet_repro.loss import weighted_cross_entropy


def _data(seed: int = 0, n: int = 2, c: int = 2, h: int = 6, w: int = 7, scale: float = 3.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * scale
    target = torch.randint(0, c, (n, h, w), generator=g)
    return logits, target


@pytest.mark.parametrize("normalize", ["weights", "pixels"])
@pytest.mark.parametrize("c", [2, 4])
def test_unit_weights_equal_plain_cross_entropy(normalize, c):
    logits, target = _data(c=c)
    got = weighted_cross_entropy(logits, target, torch.ones(target.shape, dtype=torch.float64), normalize)
    assert torch.allclose(got, F.cross_entropy(logits, target), atol=1e-12)


def test_unit_weights_sum_is_cross_entropy_sum():
    logits, target = _data()
    got = weighted_cross_entropy(logits, target, torch.ones(target.shape, dtype=torch.float64), "none")
    assert torch.allclose(got, F.cross_entropy(logits, target, reduction="sum"), atol=1e-10)


def test_class_weight_map_equals_torch_class_weights():
    """A map holding only w_c equals cross_entropy with per-class weights (which divides by sum w)."""
    logits, target = _data(seed=1)
    cw = torch.tensor([2.3, 0.64], dtype=torch.float64)
    wmap = cw[target]
    got = weighted_cross_entropy(logits, target, wmap, "weights")
    assert torch.allclose(got, F.cross_entropy(logits, target, weight=cw), atol=1e-12)


def test_explicit_formula_and_normalisations():
    """-sum w log p_l, computed from an explicit soft-max, divided by sum w / by the pixel count."""
    logits, target = _data(seed=2)
    g = torch.Generator().manual_seed(5)
    wmap = torch.rand(target.shape, generator=g, dtype=torch.float64) * 10
    p = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    p_true = torch.where(target == 1, p[:, 1], p[:, 0])
    e = -(wmap * torch.log(p_true)).sum()
    assert torch.allclose(weighted_cross_entropy(logits, target, wmap, "none"), e)
    assert torch.allclose(weighted_cross_entropy(logits, target, wmap, "weights"), e / wmap.sum())
    assert torch.allclose(weighted_cross_entropy(logits, target, wmap, "pixels"), e / target.numel())


def test_crops_target_and_weight_to_the_output_window():
    logits, _ = _data(seed=3, h=6, w=8)
    g = torch.Generator().manual_seed(1)
    big_t = torch.randint(0, 2, (2, 10, 14), generator=g)
    big_w = torch.rand((2, 10, 14), generator=g, dtype=torch.float64)
    got = weighted_cross_entropy(logits, big_t, big_w, "weights")
    want = weighted_cross_entropy(logits, big_t[:, 2:8, 3:11], big_w[:, 2:8, 3:11], "weights")  # by hand
    assert torch.equal(got, want)
    with pytest.raises(ValueError, match="do not fit"):
        weighted_cross_entropy(logits, big_t[:, :9], big_w[:, :9])  # odd margin


def test_gradient_finite_and_correct_for_extreme_logits():
    logits = torch.tensor([[[[1e4, -1e4]], [[-1e4, 1e4]]]], dtype=torch.float32, requires_grad=True)
    target = torch.tensor([[[1, 1]]])  # first pixel badly wrong (p = exp(-2e4))
    wmap = torch.tensor([[[1.0, 3.0]]])
    loss = weighted_cross_entropy(logits, target, wmap, "pixels")
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(logits.grad).all()
    assert math.isclose(loss.item(), (1.0 * 2e4 + 3.0 * 0.0) / 2, rel_tol=1e-6)
    # d loss / d a_k = w (p_k - [k = l]) / N: -0.5 and +0.5 on the wrong pixel, ~0 on the right one
    expected = torch.tensor([[[[0.5, 0.0]], [[-0.5, 0.0]]]])
    assert torch.allclose(logits.grad, expected, atol=1e-6)


def test_weights_emphasise_border_pixels():
    """Same prediction error on a border pixel costs more when its weight is higher (eq. 1's purpose)."""
    logits = torch.zeros(1, 2, 1, 2, dtype=torch.float64)
    logits[0, 0, 0, 0] = 2.0  # pixel 0 predicted membrane (wrong, it is cell)
    logits[0, 1, 0, 1] = 2.0  # pixel 1 predicted cell (right)
    target = torch.tensor([[[1, 1]]])
    plain = weighted_cross_entropy(logits, target, torch.ones(1, 1, 2, dtype=torch.float64), "pixels")
    border = weighted_cross_entropy(logits, target, torch.tensor([[[10.0, 1.0]]], dtype=torch.float64), "pixels")
    assert border > 5 * plain


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(target=torch.full((1, 4, 4), 255)), "class indices"),
        (dict(target=torch.zeros(1, 4, 4)), "integer"),
        (dict(weight=-torch.ones(1, 4, 4)), ">= 0"),
        (dict(weight=torch.full((1, 4, 4), float("nan"))), "finite"),
        (dict(weight=torch.zeros(1, 4, 4)), "sum to 0"),
        (dict(logits=torch.zeros(2, 4, 4)), "N x C x h x w"),
        (dict(target=torch.zeros(1, 1, 4, 4, dtype=torch.long)), "N x H x W"),
        (dict(target=torch.zeros(2, 4, 4, dtype=torch.long), weight=torch.ones(2, 4, 4)), "batch"),
        (dict(normalize="mean"), "normalize"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = dict(logits=torch.zeros(1, 2, 4, 4), target=torch.zeros(1, 4, 4, dtype=torch.long),
                weight=torch.ones(1, 4, 4), normalize="weights") | kwargs
    with pytest.raises(ValueError, match=match):
        weighted_cross_entropy(**args)
