"""The shipped model (``unet_repro.model.shipped``): half-precision weights, a checked hash, ``--model cpu``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from unet_repro.inference.tiling import predict_stack
from unet_repro.model.files import load_model, save_model
from unet_repro.model.shipped import SHIPPED, model_card, resolve_model, sha256_of, ship
from unet_repro.model.unet import UNet
from unet_repro.training.config import profile_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def checkout(tmp_path) -> Path:
    """A checkout holding a shipped ``cpu`` model made from a tiny same-padding run."""
    torch.manual_seed(0)
    run = tmp_path / "run"
    run.mkdir()
    cfg = profile_config("cpu", base_channels=2, depth=2)
    save_model(UNet(cfg.model_config()), run / "model.pt", cfg, iterations=3)
    (run / "metrics.json").write_text(json.dumps({"profile": "cpu", "commit": "abc", "iterations": 3}))
    root = tmp_path / "checkout"
    (root / "results").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "unet-repro"\n')
    ship(run, root / SHIPPED["cpu"], {"max_abs_prob_change": 1e-4, "pixel_error_change": 0.0})
    return root


def test_half_precision_weights_load_into_a_float32_network(checkout, tmp_path):
    model = load_model(resolve_model("cpu", checkout))
    full = load_model(tmp_path / "run" / "model.pt")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    for (k, a), b in zip(model.state_dict().items(), full.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b.half().float(), msg=k)  # exactly the float16 rounding, nothing else
    x = np.random.default_rng(0).integers(0, 256, (1, 64, 64), dtype=np.uint8)
    diff = np.abs(predict_stack(model, x, progress=False) - predict_stack(full, x, progress=False)).max()
    assert 0 < diff < 1e-2
    meta = json.loads((checkout / SHIPPED["cpu"] / "model.json").read_text())
    assert meta["sha256"] == sha256_of(checkout / SHIPPED["cpu"] / "model.pt") and meta["trained"]["commit"] == "abc"


def test_a_changed_file_is_refused(checkout):
    path = checkout / SHIPPED["cpu"] / "model.pt"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        resolve_model("cpu", checkout)


def test_a_path_is_used_as_it_is(tmp_path):
    assert resolve_model(tmp_path / "m.pt") == tmp_path / "m.pt"


def test_predict_model_cpu_from_a_checkout(checkout, tmp_path):
    """``unet-repro predict --model cpu`` in a checkout: no training, the shipped file."""
    tifffile.imwrite(tmp_path / "x.tif", np.random.default_rng(1).integers(0, 256, (2, 64, 64), dtype=np.uint8))
    proc = subprocess.run(
        [sys.executable, "-m", "unet_repro.predict", "--model", "cpu", "--input", str(tmp_path / "x.tif")]
        + ["--output", str(tmp_path / "p.tif"), "--no-progress"],
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert tifffile.imread(tmp_path / "p.tif").shape == (2, 64, 64)


def test_model_card_carries_the_numbers(checkout):
    meta = json.loads((checkout / SHIPPED["cpu"] / "model.json").read_text())
    card = model_card(meta, {"pixel_error": 0.0491, "rand_error": 0.0916}, {"pixel_error": 0.0027})
    assert "| pixel error | 0.0491 |" in card and "pixel error 0.0027" in card
    assert meta["sha256"] in card and "slices 25-29" in card and "MIT" in card


def test_the_repository_ships_the_cpu_model():
    """The committed model matches its hash and its card (skipped until a cpu run has been shipped)."""
    folder = ROOT / SHIPPED["cpu"]
    if not (folder / "model.pt").is_file():
        pytest.skip("no shipped cpu model yet: python scripts/ship_model.py after make reproduce PROFILE=cpu")
    meta = json.loads((folder / "model.json").read_text())
    assert resolve_model("cpu", ROOT) == folder / "model.pt"
    assert (
        meta["train_config"]["profile"] == "cpu" and meta["sha256"] in (ROOT / "results/cpu/MODEL_CARD.md").read_text()
    )
