"""Model and checkpoint files (unet_repro.training.checkpoint): round trip, old files, bad files, resume checks."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

from unet_repro.model.files import config_dict, load_model, save_model
from unet_repro.model.sizing import UNetConfig
from unet_repro.model.unet import UNet
from unet_repro.training import checkpoint as C
from unet_repro.training.config import TrainConfig
from unet_repro.training.loop import make_optimizer

HINT = "pass a model.pt written by `python -m unet_repro.train`"


def _cfg(**kw) -> TrainConfig:
    base = {
        "base_channels": 2,
        "depth": 2,
        "tile": 92,
        "eval_tile": 92,
        "iterations": 6,
        "checkpoint_every": 2,
        "tta": "none",
    }
    return TrainConfig(**{**base, **kw})


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_model_round_trip_and_file_layout(tmp_path):
    torch.manual_seed(0)
    model = UNet(UNetConfig(base_channels=4, depth=3, padding="same", upsampling="bilinear", batch_norm=True))
    save_model(model, tmp_path / "model.pt", _cfg(), iterations=6)
    payload = torch.load(tmp_path / "model.pt", weights_only=True)  # plain tensors and JSON-like values only
    assert payload["model_config"] == dataclasses.asdict(model.config) and payload["iterations"] == 6
    assert payload["train_config"] == config_dict(_cfg()) and payload["train_config"]["heldout"] == [25, 30]
    back = load_model(tmp_path / "model.pt")
    assert back.config == model.config and not back.training
    assert _same(back.state_dict(), model.state_dict())
    assert not (tmp_path / "model.pt.tmp").exists()  # written atomically


def test_model_file_of_the_dict_era_still_loads(tmp_path):
    """Files written before UNetConfig (``model_config`` as the keyword dict of UNet) load unchanged."""
    torch.manual_seed(0)
    model = UNet(base_channels=2, depth=2)
    old_config = {
        "in_channels": 1,
        "num_classes": 2,
        "base_channels": 2,
        "depth": 2,
        "padding": "valid",
        "upsampling": "transpose",
        "batch_norm": False,
        "dropout": 0.5,
    }
    old = {
        "state_dict": model.state_dict(),
        "model_config": old_config,
        "train_config": {},
        "input_scaling": "grey value / 255",
    }
    torch.save(old, tmp_path / "old.pt")
    assert _same(load_model(tmp_path / "old.pt").state_dict(), model.state_dict())


@pytest.mark.parametrize(
    "kind", ["garbage", "text", "list", "checkpoint", "no model_config", "wrong config", "wrong weights"]
)
def test_load_model_on_a_file_that_is_not_a_model(tmp_path, kind):
    path = tmp_path / f"{kind.replace(' ', '_')}.pt"
    good = UNet(base_channels=2, depth=2)
    cfg = dataclasses.asdict(good.config)
    if kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "text":
        path.write_text("this is not a model\n")
    elif kind == "list":
        torch.save([1, 2, 3], path)
    elif kind == "checkpoint":
        torch.save({"iteration": 3, "model": good.state_dict(), "config": {}}, path)
    elif kind == "no model_config":
        torch.save({"state_dict": good.state_dict()}, path)
    elif kind == "wrong config":
        torch.save({"state_dict": good.state_dict(), "model_config": {**cfg, "width": 3}}, path)
    else:
        torch.save({"state_dict": good.state_dict(), "model_config": {**cfg, "base_channels": 4}}, path)
    with pytest.raises(ValueError) as e:
        load_model(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and msg.endswith(HINT), msg
    assert "weights_only" not in msg
    if kind == "checkpoint":
        assert "training checkpoint" in msg
    with pytest.raises(FileNotFoundError, match="train one"):
        load_model(tmp_path / "nothing.pt")


def _state(seed: int = 0):
    torch.manual_seed(seed)
    model = UNet(_cfg().model_config())
    opt = make_optimizer(_cfg(), model)
    return model, opt, np.random.default_rng(seed)


def test_checkpoint_restores_model_optimiser_generators_and_log(tmp_path):
    model, opt, rng = _state()
    model(torch.rand(1, 1, 92, 92)).sum().backward()
    opt.step()  # momentum buffers now exist
    rng.random(5)
    torch.rand(3)
    log = [{"iteration": 1, "loss": 0.5, "lr": 0.01, "time": 0.25}]
    C.save_checkpoint(tmp_path / "checkpoint.pt", 1, model, opt, rng, log, 0.25, _cfg())
    expect_np, expect_torch = rng.random(4), torch.rand(4)

    model2, opt2, rng2 = _state(seed=7)
    torch.rand(9)
    step, elapsed, log2 = C.resume(tmp_path / "checkpoint.pt", _cfg(), model2, opt2, rng2)
    assert (step, elapsed, log2) == (1, 0.25, log)
    assert _same(model2.state_dict(), model.state_dict())
    m1, m2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert m1.keys() == m2.keys() and all(torch.equal(m1[k]["momentum_buffer"], m2[k]["momentum_buffer"]) for k in m1)
    np.testing.assert_array_equal(rng2.random(4), expect_np)
    assert torch.equal(torch.rand(4), expect_torch)


def test_resume_refuses_another_configuration(tmp_path):
    model, opt, rng = _state()
    path = tmp_path / "checkpoint.pt"
    C.save_checkpoint(path, 2, model, opt, rng, [], 0.0, _cfg())
    for free in ({"checkpoint_every": 3}, {"threads": 2}, {"eval_tile": 188}, {"tta": "d4"}):
        C.resume(path, _cfg(**free), *_state())  # settings that do not change the weights may change
        C.check_resumable(_cfg(**free), tmp_path)
    for changed, shown in (
        ({"lr": 0.1}, "'lr': (0.001, 0.1)"),
        ({"iterations": 7}, "'iterations': (6, 7)"),
        ({"seed": 1}, "'seed': (0, 1)"),
        ({"augment": False}, "'augment': (True, False)"),
    ):
        for check_resume in (True, False):
            with pytest.raises(ValueError) as e:
                if check_resume:
                    C.resume(path, _cfg(**changed), *_state())
                else:
                    C.check_resumable(_cfg(**changed), tmp_path)
            msg = str(e.value)
            assert "\n" not in msg and msg.startswith(f"cannot resume {path}: configuration differs in {{{shown}}}")
            assert msg.endswith("another --out folder")
            assert ("learning-rate schedule" in msg) == ("iterations" in changed)
    C.check_resumable(_cfg(lr=0.1), tmp_path / "empty")  # no checkpoint: nothing to check


@pytest.mark.parametrize("content", [b"\x00garbage", "list", "no state"])
def test_resume_of_a_file_that_is_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    if content == "list":
        torch.save([1], path)
    elif content == "no state":
        torch.save({"config": config_dict(_cfg()), "iteration": 3}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=r"not a checkpoint.*delete it or use another --out folder") as e:
        C.resume(path, _cfg(), *_state())
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_loading_a_model_needs_no_training_code(tmp_path):
    save_model(UNet(base_channels=2, depth=2), tmp_path / "model.pt")
    code = (
        "import sys\nfrom unet_repro.model.files import load_model\n"
        f"load_model({str(tmp_path / 'model.pt')!r})\n"
        "print(sorted(m for m in sys.modules if m.startswith('unet_repro.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = eval(out.strip().splitlines()[-1])
    assert "unet_repro.model.files" in loaded and not [m for m in loaded if m.startswith("unet_repro.training")], loaded
