"""Training the U-Net on the ISBI 2012 stack (section 3 of the paper): the loop.

The recipe (SGD with momentum 0.99, one 572x572 tile per step, the weighted loss of eq. 1 and 2, elastic
augmentation, drop-out) is the configuration in ``unet_repro.config``; files of a run (model, checkpoint,
log) are ``unet_repro.checkpoint``; the tiles and weight maps it draws from are ``unet_repro.tiles``.
This module runs the steps.

Everything that draws random numbers (tile positions, augmentation, drop-out, initialisation) is seeded;
on CPU two runs with the same configuration give identical weights, and an interrupted run resumed from
its checkpoint ends with the same weights as an uninterrupted one (``unet_repro.checkpoint`` writes and
restores the model, the optimiser's momentum and every RNG state).

Tiles and the training arrays (pre-computed weight maps) are ``unet_repro.tiles``.

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

from . import checkpoint
from . import data as data_mod
from .checkpoint import config_dict, is_finished_run, load_model, save_model
from .config import (
    PAPER,
    PROFILE_CONFIGS,
    TrainConfig,
    learning_rate,
    make_optimizer,
    profile_config,
)
from .inference import predict_stack, resolve_device
from .model import UNet
from .options import AMP_MODES, DEFAULT_PROFILE, OPTIMIZERS, PROFILES, SCHEDULES, TTA_MODES
from .results import code_commit
from .tiles import TileSampler, prepare_data

__all__ = [
    "TrainConfig",
    "PAPER",
    "PROFILE_CONFIGS",
    "profile_config",
    "TileSampler",
    "TrainResult",
    "train",
    "learning_rate",
    "make_optimizer",
    "evaluate_heldout",
    "load_model",
    "is_finished_run",
    "save_model",
    "resolve_device",
    "main",
]

# Re-exported, since notebooks and scripts import them from here: the configuration (unet_repro.config),
# ``load_model``, ``save_model``, ``is_finished_run`` (unet_repro.checkpoint), ``resolve_device``
# (unet_repro.inference).


#: tile threads (``train(workers=...)``) and steps per loss read (``train(sync_every=...)``) on a GPU.
GPU_WORKERS = max(1, min(8, (os.cpu_count() or 4) - 2))
GPU_SYNC_EVERY = 50


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
) -> TrainResult:
    """Train a U-Net on ISBI 2012 and write ``model.pt``, ``log.csv`` and ``heldout_prob.tif`` to ``out_dir``.

    Args:
        cfg: the run's configuration (see :data:`PROFILE_CONFIGS`).
        out_dir: output folder (created).
        resume: continue from ``out_dir/checkpoint.pt`` when it exists (same configuration required,
            ``iterations`` included, except for :data:`unet_repro.checkpoint.RESUME_FREE`).
        isbi: the data (default: :func:`unet_repro.data.load_isbi2012`).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda`` (see :func:`resolve_device`).
        progress: show a progress bar with the loss and iterations/s.
        stop_after: stop after this many steps as if interrupted (checkpoint written, no evaluation);
            used to test resuming.
        evaluate: predict the held-out slices and compute the pixel error at the end.
        workers: threads that prepare tiles ahead of the step (``unet_repro.pipeline.TileSource``; the
            same tiles as without them). None: 0 on a CPU (the sequential code), :data:`GPU_WORKERS` on a GPU.
        sync_every: steps between reads of the losses, which stay on the device in between (the non-finite
            check then names the first bad step). None: 1 on a CPU, :data:`GPU_SYNC_EVERY` on a GPU.
        max_minutes: a time budget: training stops cleanly after the step that exceeds it, and the run is
            saved and evaluated as it is (``metrics.json`` says ``stopped_by_time_budget``).

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: (one line) for an unavailable device, or a checkpoint of another configuration.
    """
    from functools import partial

    from .loss import weighted_cross_entropy
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
        )
        if stop_after is not None and end_step < cfg.iterations and not stopped:
            return result
        if cfg.channels_last:
            model = model.to(memory_format=torch.contiguous_format)
            result.model = model
        save_model(model, out / "model.pt", cfg, iterations=len(log), seconds=seconds)
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

    from .metrics import pixel_error

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
    }
    (result.out_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")


def main(argv: Sequence[str] | None = None, prog: str = "python -m unet_repro.train") -> int:
    """``python -m unet_repro.train --profile ci|cpu|paper --out DIR [--resume]``; 2 on bad input."""
    from .cli import (
        command_parser,
        device_name,
        guarded,
        nonnegative_int,
        output_folder,
        positive_float,
        positive_int,
    )

    p = command_parser(prog, __doc__.split("\n")[0])
    p.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES)
    p.add_argument("--out", default="", type=output_folder, help="output folder (default: build/runs/<profile>/)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--device", default="auto", type=device_name, help="auto (CUDA when present), cpu, cuda[:N], mps")
    p.add_argument("--iterations", type=nonnegative_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--lr-schedule", choices=SCHEDULES)
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="sgd is the paper's")
    p.add_argument("--base-channels", type=positive_int)
    p.add_argument("--tile", type=positive_int, help="input tile side, a valid size (572 in the paper)")
    p.add_argument("--seed", type=nonnegative_int)
    p.add_argument("--tta", choices=TTA_MODES)
    p.add_argument(
        "--amp",
        choices=list(AMP_MODES),
        help="mixed precision: off (fp32), bf16, fp16, auto (bf16 or fp16 on a GPU, off on a CPU); "
        "default: the profile's (auto for paper, off for ci/cpu)",
    )
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--threads", type=positive_int, help="CPU threads (profile default: 2 for ci/cpu)")
    p.add_argument(
        "--max-minutes",
        type=positive_float,
        help="time budget: stop cleanly after the step that exceeds it, save and evaluate the run",
    )
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    overrides = {
        k: v
        for k, v in {
            "iterations": args.iterations,
            "lr": args.lr,
            "lr_schedule": args.lr_schedule,
            "base_channels": args.base_channels,
            "seed": args.seed,
            "tta": args.tta,
            "threads": args.threads,
            "optimizer": args.optimizer,
        }.items()
        if v is not None
    }
    if args.amp:
        overrides["amp"] = args.amp
    if args.channels_last:
        overrides["channels_last"] = True

    def run() -> int:
        cfg = profile_config(args.profile, **overrides)
        if args.tile is not None:  # the evaluation tile follows from the padding (TrainConfig.with_tile)
            cfg = cfg.with_tile(args.tile)
        if args.out:
            out = Path(args.out)
        else:
            from .results import run_dir

            out = run_dir(args.profile)
        if args.resume:
            _check_resumable(cfg, out)
        budget = {} if args.max_minutes is None else {"max_minutes": args.max_minutes}
        res = train(cfg, out, resume=args.resume, device=args.device, progress=not args.no_progress, **budget)
        print(
            json.dumps(
                {
                    "out": str(out),
                    "seconds": round(res.seconds, 1),
                    "seconds_per_iteration": round(res.seconds_per_iteration, 4),
                    **res.metrics,
                }
            )
        )
        return 0

    return guarded(run)


def _check_resumable(cfg: TrainConfig, out: Path) -> None:
    """``--resume``: the checks of :func:`unet_repro.checkpoint.resume` (a checkpoint, of this configuration),
    made before any data is loaded, so that a wrong ``--out`` fails at once."""
    checkpoint.check_resumable(cfg, out)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
