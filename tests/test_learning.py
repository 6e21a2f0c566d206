"""What training learns from (section 3 and 3.1): the paper profile's recipe, and a few real steps of the loop.

The training runs here are tiny (a 2-channel, depth-2 network on one 552x552 tile whose 512x512 output window
is a whole ISBI slice, so every step sees the same tile unless augmentation changes it) and take a few
seconds on one thread. They run :func:`unet_repro.training.loop.train` itself and watch what it passes to the loss.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from unet_repro.augment.augmenter import Augmenter
from unet_repro.loss import cross_entropy as loss_mod
from unet_repro.loss.weights import weight_maps
from unet_repro.training import loop as T
from unet_repro.training.config import PROFILE_CONFIGS, TrainConfig, profile_config

TILE = 552  # depth 2, valid convolutions: output 512, the whole slice, so the tile position is fixed


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # weight-map cache goes to tmp


def _tiny(**kw) -> TrainConfig:
    base = {
        "profile": "custom",
        "base_channels": 2,
        "depth": 2,
        "tile": TILE,
        "eval_tile": TILE,
        "iterations": 2,
        "optimizer": "adam",
        "lr": 0.01,
        "lr_schedule": "constant",
        "warmup": 0,
        "checkpoint_every": 0,
        "train_slices": (0,),
        "augment": False,
        "threads": 1,
        "seed": 3,
        "tta": "none",
    }
    return TrainConfig(**(base | kw))


class _LossSpy:
    """Wraps ``weighted_cross_entropy`` wherever the package imported it, recording each call's inputs."""

    def __init__(self, monkeypatch):
        self.calls: list[dict[str, torch.Tensor]] = []
        real = loss_mod.weighted_cross_entropy

        def spy(logits, target, weight, *args, **kwargs):
            out = real(logits, target, weight, *args, **kwargs)
            self.calls.append(
                {
                    "target": target.detach().cpu().clone(),
                    "weight": weight.detach().cpu().clone(),
                    "loss": out.detach().cpu().clone(),
                }
            )
            return out

        for name, module in list(sys.modules.items()):
            if name.split(".")[0] == "unet_repro" and hasattr(module, "weighted_cross_entropy"):
                monkeypatch.setattr(module, "weighted_cross_entropy", spy)


def _run(cfg: TrainConfig, isbi, tmp_path, monkeypatch, name: str) -> tuple[T.TrainResult, _LossSpy]:
    spy = _LossSpy(monkeypatch)
    result = T.train(cfg, tmp_path / name, isbi=isbi, progress=False, device="cpu", evaluate=False)
    assert len(spy.calls) == cfg.iterations, "the loop must call weighted_cross_entropy once per step"
    return result, spy


# ------------------------------------------------------------------------------------------- the paper profile


def test_paper_profile_is_the_papers_recipe():
    """Section 3: SGD, momentum 0.99, one 572x572 tile per step, the 64-channel depth-4 network of Fig. 1,
    eq. 2 with w0 = 10, sigma = 5 and class balance; section 3.1: elastic augmentation, drop-out."""
    paper = PROFILE_CONFIGS["paper"]
    assert paper.profile == "paper"
    assert paper.optimizer == "sgd" and paper.momentum == 0.99
    assert paper.tile == 572 and paper.base_channels == 64 and paper.depth == 4
    assert paper.augment is True
    assert paper.w0 == 10.0 and paper.sigma == 5.0 and paper.class_balance is True
    assert 0.0 < paper.dropout < 1.0
    # augment=True means the paper's elastic field: 3x3 control grid, 10 px standard deviation
    assert Augmenter().grid == 3 and Augmenter().sigma == 10.0 and Augmenter().p_elastic == 1.0
    # and the optimiser train() builds from it is SGD with that momentum
    opt = T.make_optimizer(paper, torch.nn.Linear(1, 1))
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.99
    for name, cfg in PROFILE_CONFIGS.items():
        assert cfg.profile == name
        # 572 tiles, except where notebook 06's validation choice made a profile same-padded (384 tiles)
        assert (cfg.padding, cfg.tile) in {("valid", 572), ("same", 384)}
    assert PROFILE_CONFIGS["ci"].tile == 572 and PROFILE_CONFIGS["cpu"].padding == "same"
    with pytest.raises(ValueError, match="unknown profile"):
        profile_config("huge")


# ------------------------------------------------------------------------------------------- the training loop


def test_a_few_steps_lower_the_loss(isbi, tmp_path, monkeypatch):
    """Same tile every step (no augmentation, output window = the slice): 15 Adam steps lower the loss."""
    result, spy = _run(_tiny(iterations=15), isbi, tmp_path, monkeypatch, "steps")
    losses = [r["loss"] for r in result.log]
    assert losses == pytest.approx([float(c["loss"]) for c in spy.calls])  # the logged loss is eq. 1's
    assert all(torch.equal(c["target"], spy.calls[0]["target"]) for c in spy.calls)  # a fixed batch indeed
    assert losses[-1] < 0.9 * losses[0], losses
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses


def test_the_weight_map_reaches_the_loss(isbi, tmp_path, monkeypatch):
    """The loss sees eq. 2's map of the slice (w0, sigma, class balance), and w0 changes loss and weights."""
    cfg = _tiny(iterations=1)
    _, spy = _run(cfg, isbi, tmp_path, monkeypatch, "w10")
    (call,) = spy.calls
    border = (TILE - 512) // 2
    seen = call["weight"][0, border : border + 512, border : border + 512].numpy()
    expected = weight_maps(isbi.train_labels[[0]], w0=10.0, sigma=5.0)[0]  # balance of the training slice
    np.testing.assert_allclose(seen, expected, rtol=1e-6)
    assert seen.max() > 2 * np.median(seen)  # the border term is there

    _, spy0 = _run(_tiny(iterations=1, w0=0.0), isbi, tmp_path, monkeypatch, "w0")
    _, flat = _run(_tiny(iterations=1, w0=0.0, class_balance=False), isbi, tmp_path, monkeypatch, "flat")
    assert torch.equal(spy0.calls[0]["target"], call["target"])
    assert not torch.allclose(spy0.calls[0]["weight"], call["weight"])
    assert float(spy0.calls[0]["loss"]) != pytest.approx(float(call["loss"]), rel=1e-3)
    assert torch.all(flat.calls[0]["weight"] == 1.0)  # no class balance, no border term: plain cross-entropy


def test_augmentation_reaches_the_loss(isbi, tmp_path, monkeypatch):
    """With augmentation on, the same seed feeds the loss a deformed tile (label and weight map moved)."""
    _, plain = _run(_tiny(iterations=2), isbi, tmp_path, monkeypatch, "plain")
    _, aug = _run(_tiny(iterations=2, augment=True), isbi, tmp_path, monkeypatch, "aug")
    for p, a in zip(plain.calls, aug.calls, strict=False):
        changed = (p["target"] != a["target"]).float().mean().item()
        assert 0.05 < changed < 0.6, changed  # moved, not replaced by noise
        assert not torch.allclose(p["weight"], a["weight"])
        assert set(a["target"].unique().tolist()) <= {0, 1}
    # a different tile every step: the augmentation is drawn per step
    assert not torch.equal(aug.calls[0]["target"], aug.calls[1]["target"])
    assert torch.equal(plain.calls[0]["target"], plain.calls[1]["target"])
