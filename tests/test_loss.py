"""Tests of unet_repro.loss.cross_entropy: eq. 1 of the paper (weighted pixel-wise soft-max cross-entropy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unet_repro.loss.cross_entropy import weighted_cross_entropy
from unet_repro.loss.weights import border_weight_map


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


def _two_cells() -> np.ndarray:
    """0 = membrane, 255 = cell: two 30x24 cells separated by a 2-pixel membrane gap (columns 29 and 30)."""
    label = np.zeros((40, 60), np.uint8)
    label[5:35, 5:29] = 255
    label[5:35, 31:55] = 255
    return label


def test_eq1_with_eq2_weights_costs_a_border_error_more():
    """Eq. 1 with the eq. 2 map of two touching cells: the same misclassification costs w(x) times the
    per-pixel log-loss, so an error in the separation gap costs more than one in a cell or far out in the
    membrane, by the factor eq. 2 predicts (w0 = 10, sigma = 5, d1 = 1 and d2 = 2 px in the gap,
    w_c = N / (2 N_k) from the label's class counts)."""
    label = _two_cells()
    wmap = torch.from_numpy(border_weight_map(label, w0=10.0, sigma=5.0))[None].double()
    target = torch.from_numpy((label > 0).astype(np.int64))[None]
    correct = torch.stack([(target == 0), (target == 1)], 1).double() * 8.0 - 4.0  # confident and right

    def cost_of_error_at(y: int, x: int) -> float:
        logits = correct.clone()
        logits[0, :, y, x] = -logits[0, :, y, x]  # the same confident mistake, wherever it is made
        return float(weighted_cross_entropy(logits, target, wmap) - weighted_cross_entropy(correct, target, wmap))

    gap, cell, far = (20, 29), (20, 15), (1, 1)  # gap pixel next to the left cell; cell interior; membrane corner
    n, n_cell = label.size, int((label > 0).sum())
    w_membrane, w_cell = n / (2 * (n - n_cell)), n / (2 * n_cell)
    w_gap = w_membrane + 10.0 * math.exp(-((1.0 + 2.0) ** 2) / (2 * 5.0**2))
    assert cost_of_error_at(*gap) / cost_of_error_at(*cell) == pytest.approx(w_gap / w_cell, rel=1e-4)
    assert cost_of_error_at(*gap) / cost_of_error_at(*far) == pytest.approx(w_gap / w_membrane, rel=1e-4)
    assert cost_of_error_at(*gap) > 5 * cost_of_error_at(*far)  # the border term dominates in the gap


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
    args = (
        dict(
            logits=torch.zeros(1, 2, 4, 4),
            target=torch.zeros(1, 4, 4, dtype=torch.long),
            weight=torch.ones(1, 4, 4),
            normalize="weights",
        )
        | kwargs
    )
    with pytest.raises(ValueError, match=match):
        weighted_cross_entropy(**args)
