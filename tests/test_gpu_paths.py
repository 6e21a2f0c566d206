"""The GPU code paths, run on the CPU in tiny configurations: mixed precision (bf16, fp16 with gradient
scaling), tiles prepared ahead in threads, losses read in blocks, batched overlap-tile prediction."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from configs import tiny_config

from unet_repro.augment.augmenter import Augmenter
from unet_repro.device import resolve_amp
from unet_repro.inference.tiling import predict_stack
from unet_repro.model.unet import UNet
from unet_repro.training import loop as T
from unet_repro.training.config import TrainConfig, profile_config
from unet_repro.training.pipeline import LossBuffer, StepRunner, TileSource, check_training_arrays
from unet_repro.training.tiles import TileSampler


def _tiny(**kw) -> TrainConfig:
    return tiny_config(**{"checkpoint_every": 3, **kw})


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # weight-map cache goes to tmp


def _sampler(tile: int = 92, depth: int = 2) -> TileSampler:
    rng = np.random.default_rng(1)
    images = rng.random((3, 64, 64), dtype=np.float32)
    labels = (rng.random((3, 64, 64)) > 0.5).astype(np.int64)
    weights = rng.uniform(1.0, 10.0, (3, 64, 64)).astype(np.float32)
    return TileSampler(images, labels, weights, tile, depth)


def _model() -> UNet:
    torch.manual_seed(0)
    return UNet(base_channels=2, depth=2, dropout=0.0)


def _batch():
    g = torch.Generator().manual_seed(0)
    return (
        torch.rand(1, 1, 92, 92, generator=g),
        torch.randint(0, 2, (1, 92, 92), generator=g),
        torch.rand(1, 92, 92, generator=g) + 1.0,
    )


def test_resolve_amp_modes():
    assert resolve_amp("off", "cpu") == (None, False)
    assert resolve_amp(False, "cpu") == (None, False)
    assert resolve_amp(True, "cpu") == (torch.bfloat16, False)
    assert resolve_amp("bf16", "cpu") == (torch.bfloat16, False)
    assert resolve_amp("fp16", "cpu") == (torch.float16, False)  # the scaler is for CUDA's fp16
    assert resolve_amp("fp16", "cuda") == (torch.float16, True)
    assert resolve_amp("auto", "cpu") == (None, False)  # fp32 on a CPU
    with pytest.raises(ValueError, match="amp must be one of"):
        resolve_amp("fp8", "cpu")


@pytest.mark.parametrize(
    ("capability", "expected"), [((7, 5), (torch.float16, True)), ((9, 0), (torch.bfloat16, False))]
)
def test_auto_amp_by_gpu_generation(monkeypatch, capability, expected):
    """auto: fp16 with gradient scaling on a T4 (compute capability 7.5), bf16 on Ampere and later."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.version, "hip", None)
    assert resolve_amp("auto", "cuda") == expected


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_step_on_cpu(amp):
    x, y, w = _batch()
    ref, model = _model(), _model()
    runner = StepRunner(model, torch.optim.SGD(model.parameters(), lr=0.1), amp, "cpu")
    fp32 = StepRunner(ref, torch.optim.SGD(ref.parameters(), lr=0.1), "off", "cpu")
    loss, loss32 = runner(x, y, w), fp32(x, y, w)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert abs(float(loss) - float(loss32)) < 0.02  # the same loss, computed in lower precision
    assert float(loss) != float(loss32)  # and the low-precision path was really taken
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), _model().parameters(), strict=True))


def test_fp16_with_grad_scaler_on_cpu():
    """The CUDA fp16 path (GradScaler) run on the CPU: torch >= 2.3 has a CPU GradScaler."""
    if not hasattr(torch.amp, "GradScaler"):
        pytest.skip("this torch has no torch.amp.GradScaler")
    x, y, w = _batch()
    model = _model()
    runner = StepRunner(model, torch.optim.SGD(model.parameters(), lr=0.1), "fp16", "cpu")
    runner.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):
        loss = runner(x, y, w)
    assert torch.isfinite(loss) and runner.scaler.get_scale() > 0
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), before, strict=True))


@pytest.mark.parametrize("augment", [True, False])
def test_threaded_tiles_equal_sequential(augment):
    s = _sampler()
    aug = Augmenter() if augment else Augmenter.none()
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    seq = list(TileSource(s, aug, rng_a, "cpu", 7, workers=0))
    par = list(TileSource(s, aug, rng_b, "cpu", 7, workers=3))
    assert len(seq) == len(par) == 7
    for a, b in zip(seq, par, strict=True):
        assert a.x.shape == (1, 1, 92, 92) and a.target.shape == a.weight.shape == (1, 92, 92)
        assert a.target.dtype == torch.int64
        assert torch.equal(a.x, b.x) and torch.equal(a.target, b.target) and torch.equal(a.weight, b.weight)
        assert a.rng_state == b.rng_state  # what a checkpoint stores after this step
    assert rng_a.bit_generator.state == rng_b.bit_generator.state  # nothing drawn beyond the last step
    assert not torch.equal(seq[0].x, seq[1].x)
    # the sequential source is the loop's old code: sampler then augmenter on the same generator
    rng = np.random.default_rng(5)
    img, lab, wmap = s(rng)
    img, lab, wmap = aug(img, lab, rng, weight=wmap)
    assert np.array_equal(seq[0].x[0, 0].numpy(), img) and np.array_equal(seq[0].weight[0].numpy(), wmap)


def test_training_arrays_checked_once():
    check_training_arrays(np.array([[0, 1]]), np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="classes must lie"):
        check_training_arrays(np.array([[0, 2]]), None)
    with pytest.raises(ValueError, match="weight maps must be finite"):
        check_training_arrays(np.array([[0, 1]]), np.array([[1.0, np.nan]]))


def test_loss_buffer_blocks_and_non_finite():
    values = [0.5, 0.25, 0.125, 0.1, 0.05]
    per_step = [float(torch.tensor(v)) for v in values]  # what the loop read after every step
    for every in (1, 2, 7):
        buf, rows = LossBuffer(every), []
        for i, v in enumerate(values, 1):
            buf.add(i, 0.01, float(i), torch.tensor(v))
            if buf.due():
                rows += buf.read()
        rows += buf.read()
        assert [r["loss"] for r in rows] == per_step and [r["iteration"] for r in rows] == [1, 2, 3, 4, 5]
    buf = LossBuffer(10)
    for i, v in enumerate([0.5, float("nan"), float("inf")], 1):
        buf.add(i, 0.01, 0.0, torch.tensor(v))
    with pytest.raises(FloatingPointError, match="at step 2"):
        buf.read()


def test_batched_prediction_and_amp_on_cpu():
    model = _model().eval()
    stack = np.random.default_rng(0).integers(0, 256, (1, 100, 100), dtype=np.uint8)
    one = predict_stack(model, stack, tile=92)
    four = predict_stack(model, stack, tile=92, batch_size=4)
    np.testing.assert_allclose(four, one, atol=1e-5)
    bf16 = predict_stack(model, stack, tile=92, amp="bf16")
    assert bf16.shape == one.shape and np.abs(bf16 - one).max() < 0.05 and not np.array_equal(bf16, one)


def test_amp_config_values():
    assert _tiny().amp == "off" and profile_config("ci").amp == "off" and profile_config("paper").amp == "auto"
    assert _tiny(amp=True).amp == "bf16" and _tiny(amp=False).amp == "off"  # the earlier switch
    with pytest.raises(ValueError, match="amp must be one of"):
        _tiny(amp="half")


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _log(path):
    with open(path) as fh:
        return [row[:3] for row in csv.reader(fh)]  # iteration, loss, lr (time is measured)


def test_gpu_loop_settings_train_the_same_weights(isbi, tmp_path):
    """Tile threads and block-wise loss reads (the GPU defaults) change nothing on the CPU: same weights,
    same log, same checkpoint; and a run interrupted and resumed with them ends where an uninterrupted one does."""
    cfg = _tiny(iterations=7, checkpoint_every=3)
    ref = T.train(cfg, tmp_path / "ref", isbi=isbi, progress=False, device="cpu", evaluate=False)
    gpu = T.train(
        cfg, tmp_path / "gpu", isbi=isbi, progress=False, device="cpu", evaluate=False, workers=2, sync_every=4
    )
    assert _same(ref.model, gpu.model)
    assert _log(tmp_path / "ref" / "log.csv") == _log(tmp_path / "gpu" / "log.csv") and len(gpu.log) == 7
    ck = [torch.load(tmp_path / d / "checkpoint.pt", weights_only=True) for d in ("ref", "gpu")]
    assert ck[0]["np_rng"] == ck[1]["np_rng"]  # the generator as after step 7, not as far as the threads drew
    # stopped by a time budget after step 1, while the threads had drawn the tiles of steps 2-4 already
    T.train(
        cfg,
        tmp_path / "res",
        isbi=isbi,
        progress=False,
        device="cpu",
        evaluate=False,
        workers=2,
        sync_every=3,
        max_minutes=1e-6,
    )
    res = T.train(
        cfg,
        tmp_path / "res",
        isbi=isbi,
        progress=False,
        device="cpu",
        evaluate=False,
        resume=True,
        workers=2,
        sync_every=3,
    )
    assert _same(ref.model, res.model)


@pytest.mark.parametrize("sync_every", [1, 5])
def test_non_finite_loss_still_names_the_step(isbi, tmp_path, sync_every):
    cfg = _tiny(lr=1e6, warmup=0, lr_schedule="constant", optimizer="sgd", iterations=12, checkpoint_every=0)
    with pytest.raises(FloatingPointError, match=r"at step \d+ \(lr 1e\+06\)"):
        T.train(
            cfg,
            tmp_path / f"nan{sync_every}",
            isbi=isbi,
            progress=False,
            device="cpu",
            evaluate=False,
            sync_every=sync_every,
        )


def test_time_budget_stops_cleanly(isbi, tmp_path):
    res = T.train(
        _tiny(iterations=50, tta="none"), tmp_path / "b", isbi=isbi, progress=False, device="cpu", max_minutes=1e-6
    )
    assert len(res.log) == 1  # stopped after the first step past the budget
    summary = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert summary["stopped_by_time_budget"] is True and summary["iterations"] == 1
    assert (tmp_path / "b" / "model.pt").is_file() and (tmp_path / "b" / "checkpoint.pt").is_file()


def test_predict_file_uses_the_training_precision(tmp_path):
    import tifffile

    from unet_repro.inference.command import predict_file
    from unet_repro.model.files import save_model

    model = _model().eval()
    stack = np.random.default_rng(1).integers(0, 256, (1, 100, 100), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "in.tif", stack)
    for amp in ("bf16", "off"):
        save_model(model, tmp_path / f"{amp}.pt", _tiny(amp=amp))
        got = predict_file(
            tmp_path / f"{amp}.pt", tmp_path / "in.tif", tmp_path / f"{amp}.tif", tile=92, device="cpu", progress=False
        )
        np.testing.assert_array_equal(got, predict_stack(model, stack, tile=92, amp=amp))
    assert not np.array_equal(tifffile.imread(tmp_path / "bf16.tif"), tifffile.imread(tmp_path / "off.tif"))
