"""Training the U-Net on the ISBI 2012 stack (section 3 of the paper): the loop.

The recipe (SGD with momentum 0.99, one 572x572 tile per step, the weighted loss of eq. 1 and 2, elastic
augmentation, drop-out) is the configuration in ``unet_repro.training.config``; files of a run (model, checkpoint,
log) are ``unet_repro.training.checkpoint``; the tiles and weight maps it draws from are ``unet_repro.training.tiles``.
This module runs the steps.

Everything that draws random numbers (tile positions, augmentation, drop-out, initialisation) is seeded;
on CPU two runs with the same configuration give identical weights, and an interrupted run resumed from
its checkpoint ends with the same weights as an uninterrupted one (``unet_repro.training.checkpoint`` writes and
restores the model, the optimiser's momentum and every RNG state).

Tiles and the training arrays (pre-computed weight maps) are ``unet_repro.training.tiles``.

The training loop is hand-written (no Lightning / Ignite) because it is short and the paper's details
(one tile per step, deformed weight maps, exact resume) are easier to read in plain PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ..data import isbi2012 as data_mod
from ..device import resolve_device
from ..inference.tiling import predict_stack
from ..model.files import config_dict, save_model
from ..model.unet import UNet
from ..results import code_commit
from . import checkpoint
from .config import TrainConfig, learning_rate
from .curve import HeldoutCurve
from .tiles import TileSampler, prepare_data

__all__ = ["GPU_SYNC_EVERY", "GPU_WORKERS", "TrainResult", "evaluate_heldout", "make_optimizer", "train"]

#: tile threads (``train(workers=...)``) and steps per loss read (``train(sync_every=...)``) on a GPU.
GPU_WORKERS = max(1, min(8, (os.cpu_count() or 4) - 2))
GPU_SYNC_EVERY = 50


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The paper's SGD with momentum (section 3), or Adam where a profile says so."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            model.parameters(), lr=cfg.lr, betas=(cfg.momentum, 0.999), weight_decay=cfg.weight_decay
        )
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


@dataclass
class TrainResult:
    """What a run produced: the model, the log and the held-out prediction."""

    model: UNet
    config: TrainConfig
    out_dir: Path
    log: list[dict[str, float]]
    seconds: float
    seconds_per_iteration: float
    heldout_prob: np.ndarray | None = None
    heldout_slices: list[int] = field(default_factory=list)
    metrics: dict[str, float | str] = field(default_factory=dict)
    curve: list[dict[str, float]] = field(default_factory=list)  # curve.csv's rows, when trained with curve=...


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    isbi: data_mod.IsbiData | None = None,
    device: str = "auto",
    progress: bool = True,
    stop_after: int | None = None,
    evaluate: bool = True,
    workers: int | None = None,
    sync_every: int | None = None,
    max_minutes: float | None = None,
    curve: bool | Sequence[int] = False,
) -> TrainResult:
    """Train a U-Net on ISBI 2012 and write ``model.pt``, ``log.csv`` and ``heldout_prob.tif`` to ``out_dir``.

    Args:
        cfg: the run's configuration (see :data:`PROFILE_CONFIGS`).
        out_dir: output folder (created).
        resume: continue from ``out_dir/checkpoint.pt`` when it exists (same configuration required,
            ``iterations`` included, except for :data:`unet_repro.training.checkpoint.RESUME_FREE`).
        isbi: the data (default: :func:`unet_repro.data.isbi2012.load_isbi2012`).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda`` (see :func:`resolve_device`).
        progress: show a progress bar with the loss and iterations/s.
        stop_after: stop after this many steps as if interrupted (checkpoint written, no evaluation);
            used to test resuming.
        evaluate: predict the held-out slices and compute the pixel error at the end.
        workers: threads that prepare tiles ahead of the step (``unet_repro.training.pipeline.TileSource``; the
            same tiles as without them). None: 0 on a CPU (the sequential code), :data:`GPU_WORKERS` on a GPU.
        sync_every: steps between reads of the losses, which stay on the device in between (the non-finite
            check then names the first bad step). None: 1 on a CPU, :data:`GPU_SYNC_EVERY` on a GPU.
        max_minutes: a time budget: training stops cleanly after the step that exceeds it, and the run is
            saved and evaluated as it is (``metrics.json`` says ``stopped_by_time_budget``).
        curve: score the held-out slices (or, given a list, those slices of the stack) after every checkpoint
            and write ``curve.csv`` (:mod:`unet_repro.training.curve`; the weights are the same as without it).

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: (one line) for an unavailable device, or a checkpoint of another configuration.
    """
    from functools import partial

    from ..loss.cross_entropy import weighted_cross_entropy
    from .pipeline import LossBuffer, StepRunner, TileSource

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    old_threads = torch.get_num_threads()
    if dev.type == "cpu" and cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        isbi = isbi or data_mod.load_isbi2012()
        images, classes, weights = prepare_data(cfg, isbi)
        sampler = TileSampler(images, classes, weights, cfg.tile, cfg.depth, cfg.padding)  # type: ignore[arg-type]
        augmenter = cfg.augmenter()

        torch.manual_seed(cfg.seed)
        model = UNet(cfg.model_config()).to(dev)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = make_optimizer(cfg, model)
        rng = np.random.default_rng(cfg.seed)
        log: list[dict[str, float]] = []
        start_step, elapsed = 0, 0.0

        ckpt_path = out / "checkpoint.pt"
        if resume and ckpt_path.is_file():
            start_step, elapsed, log = checkpoint.resume(ckpt_path, cfg, model, opt, rng)

        end_step = cfg.iterations if stop_after is None else min(cfg.iterations, stop_after)
        heldout_curve = None
        if curve is not False:
            trained, held = cfg.slices(len(isbi.train_images))
            held = held if curve is True else list(curve)
            if not held or set(trained) & set(held):
                raise ValueError(f"curve slices {held} must be non-empty and not trained on")
            images_h, labels_h = isbi.train_images[held], isbi.train_labels[held]
            heldout_curve = HeldoutCurve(out / "curve.csv", cfg, images_h, labels_h, start_step)
            if start_step and not heldout_curve.has(start_step):  # stopped after the checkpoint, before its row
                heldout_curve.add(start_step, model)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.iterations, initial=start_step, desc=f"train {cfg.profile}", smoothing=0.1)
        model.train()
        gpu = dev.type != "cpu"
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True  # one tile size throughout: let cuDNN pick its kernels
        kwargs = {} if cfg.loss_normalize is None else {"normalize": cfg.loss_normalize}
        # the loss's value checks read the device: done once on the arrays (TileSource) instead of per step
        runner = StepRunner(model, opt, cfg.amp, dev, partial(weighted_cross_entropy, validate=False, **kwargs))
        losses = LossBuffer(sync_every or (GPU_SYNC_EVERY if gpu else 1))
        n_workers = workers if workers is not None else (GPU_WORKERS if gpu else 0)
        if gpu and n_workers:  # each tile thread's grid_sample gets its share of the cores, no more
            torch.set_num_threads(max(1, (os.cpu_count() or 2) // n_workers))
        source = TileSource(
            sampler, augmenter, rng, dev, max(0, end_step - start_step), n_workers, cfg.channels_last, cfg.batch_size
        )
        tiles = iter(source)
        deadline = None if max_minutes is None else time.perf_counter() + 60.0 * max_minutes
        stopped = False
        t0 = time.perf_counter() - elapsed
        try:
            for step in range(start_step, end_step):
                lr = learning_rate(cfg, step)
                for group in opt.param_groups:
                    group["lr"] = lr
                batch = next(tiles)
                loss = runner(batch.x, batch.target, batch.weight)
                done = step + 1
                losses.add(done, lr, time.perf_counter() - t0, loss)
                if bar is not None:
                    bar.update(1)
                stopped = deadline is not None and time.perf_counter() > deadline and done < end_step
                save = (cfg.checkpoint_every and done % cfg.checkpoint_every == 0) or done == end_step or stopped
                if save or losses.due():
                    rows = losses.read()  # raises FloatingPointError naming the first non-finite step
                    rows[-1]["time"] = time.perf_counter() - t0
                    log += rows
                    if bar is not None:
                        bar.set_postfix(loss=f"{rows[-1]['loss']:.4f}", lr=f"{lr:.2g}")
                if save:
                    # the generator as it was right after this step's draws (tile threads may have drawn ahead)
                    at_step = np.random.Generator(type(rng.bit_generator)())
                    at_step.bit_generator.state = batch.rng_state
                    checkpoint.save_checkpoint(ckpt_path, done, model, opt, at_step, log, time.perf_counter() - t0, cfg)
                    checkpoint.write_log(out / "log.csv", log)
                    if heldout_curve is not None:
                        heldout_curve.add(done, model)
                if stopped:
                    print(
                        f"time budget of {max_minutes:g} min reached: stopped after step {done} of {cfg.iterations}",
                        flush=True,
                    )
                    break
        finally:
            tiles.close()
        if bar is not None:
            bar.close()
        seconds = log[-1]["time"] if log else 0.0
        result = TrainResult(
            model=model,
            config=cfg,
            out_dir=out,
            log=log,
            seconds=seconds,
            seconds_per_iteration=seconds / len(log) if log else float("nan"),
            curve=heldout_curve.rows if heldout_curve is not None else [],
        )
        if stop_after is not None and end_step < cfg.iterations and not stopped:
            return result
        if cfg.channels_last:
            model = model.to(memory_format=torch.contiguous_format)
            result.model = model
        record = getattr(isbi, "record", {})  # a user stack (unet_repro.data.user): its sources, scaling, split
        save_model(model, out / "model.pt", cfg, iterations=len(log), seconds=seconds, **record)
        checkpoint.write_log(out / "log.csv", log)
        if evaluate:
            evaluate_heldout(result, isbi, device=dev)
            if stopped:
                summary = json.loads((out / "metrics.json").read_text())
                summary.update(stopped_by_time_budget=True, time_budget_minutes=max_minutes)
                (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        return result
    finally:
        torch.set_num_threads(old_threads)


def evaluate_heldout(result: TrainResult, isbi: data_mod.IsbiData, device: torch.device | str = "cpu") -> None:
    """Predict the held-out slices, write ``heldout_prob.tif`` and ``metrics.json`` (pixel error).

    The pixel error is the ISBI 2012 one: 1 - the best F-score of the cell class over the thresholds
    0.0, 0.1, ..., 1.0 (``unet_repro.metrics.pixel_error``), on the held-out block of the training stack.
    """
    import tifffile

    from ..metrics.pixel import pixel_error

    cfg = result.config
    _, held = cfg.slices(len(isbi.train_images))
    t0 = time.perf_counter()
    prob = predict_stack(
        result.model,
        isbi.train_images[held],
        tile=cfg.eval_tile,
        tta=cfg.tta,
        amp=cfg.amp,
    )
    seconds = time.perf_counter() - t0
    tifffile.imwrite(result.out_dir / "heldout_prob.tif", prob.astype(np.float32), photometric="minisblack")
    err = float(pixel_error(prob, isbi.train_labels[held]))
    result.heldout_prob, result.heldout_slices = prob, held
    result.metrics = {"pixel_error": err, "predict_seconds": seconds, "tta": cfg.tta}
    summary = {
        "profile": cfg.profile,
        "iterations": len(result.log),
        "train_seconds": result.seconds,
        "seconds_per_iteration": result.seconds_per_iteration,
        "heldout_slices": held,
        "heldout_pixel_error": err,
        "predict_seconds": seconds,
        "tta": cfg.tta,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "commit": code_commit(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config_sha256": hashlib.sha256(json.dumps(config_dict(cfg), sort_keys=True).encode()).hexdigest(),
        **getattr(isbi, "record", {}),  # a user stack (unet_repro.data.user): its sources, scaling, split
    }
    (result.out_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
