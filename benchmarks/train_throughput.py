"""Training throughput of the project's loop against a bare PyTorch loop, side by side in one process.

The project loop is what ``unet_repro.training.loop.train`` runs per step (section 3 of the paper: one tile per SGD
step): a random tile drawn and cut by ``TileSampler``, augmented (section 3.1, when the configuration says
so) by ``unet_repro.training.pipeline.TileSource`` (in background threads when ``--workers`` > 0), copied to the
device, one ``StepRunner`` step (weighted cross-entropy of eq. 1, mixed precision as configured), the
learning-rate schedule, and the loss kept on the device in a ``LossBuffer`` read every ``--sync-every`` steps.
The bare loop is the same model at the same precision on the same device, trained by a plain
``torch.optim.SGD`` step on one fixed, pre-made tile, with the plain weighted cross-entropy and no reads.
Blocks of the two loops alternate (``--rounds`` times), so a noisy machine slows both alike; the ratio is
project steps/s over bare steps/s.

FLOPs: a training step is counted as 3x the forward pass (the backward pass costs about twice the forward);
the forward count is ``unet_repro.model.unet.count_flops`` (the count notebook 01 derives, as
``torch.utils.flop_counter`` counts convolutions). "Peak here" is a large square matrix product in the
same precision, timed in the same run.

Colab T4 estimate (an assumption, not a measurement): the paper profile's full schedule (its iterations x
3 x its forward FLOPs) divided by ``65 TFLOP/s`` (the T4's fp16 tensor-core peak, datasheet) times the
fraction of peak that this run achieved (achieved TFLOP/s / the matrix product's TFLOP/s here). A T4
reaches a lower fraction of its peak than a large GPU in practice, so read it as a lower bound.

Usage::

    python benchmarks/train_throughput.py --quick            # about a minute on 2 CPU cores
    python benchmarks/train_throughput.py --device cuda --amp auto --workers 6   # the paper profile

The table goes to ``results/benchmarks/train_throughput.csv`` (one row per run, appended; ``--out`` to
change); the last line printed is ``ratio_vs_bare=R``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

T4_FP16_PEAK_TFLOPS = 65.0


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _synthetic(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ISBI-sized stand-ins: grey images in [0, 1], two classes, weights in [1, 10] (eq. 2's range)."""
    rng = np.random.default_rng(seed)
    images = rng.random((n, size, size), dtype=np.float32)
    classes = (rng.random((n, size, size)) > 0.3).astype(np.int64)
    weights = rng.uniform(1.0, 10.0, (n, size, size)).astype(np.float32)
    return images, classes, weights


def matmul_tflops(dev: torch.device, dtype: torch.dtype, seconds: float = 1.0) -> float:
    """TFLOP/s of a square matrix product in ``dtype`` (the 'peak here' of the fraction)."""
    n = 4096 if dev.type == "cuda" else 512
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    a @ b
    _sync(dev)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            a @ b
        reps += 10
        _sync(dev)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benchmarks/train_throughput.py", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small model and tile: about a minute on 2 CPU cores")
    p.add_argument("--profile", default="paper", help="training profile to benchmark (default paper)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    p.add_argument("--amp", default=None, choices=["off", "bf16", "fp16", "auto"], help="default: the profile's")
    p.add_argument("--base-channels", type=int, help="default: the profile's (8 with --quick)")
    p.add_argument("--tile", type=int, help="default: the profile's (188 with --quick)")
    p.add_argument("--workers", type=int, help="tile threads (default: 0 on CPU, 6 on CUDA)")
    p.add_argument("--sync-every", type=int, help="steps per loss read (default: as train() does)")
    p.add_argument("--steps", type=int, help="steps per block (default 5 with --quick, 50 otherwise)")
    p.add_argument("--rounds", type=int, help="alternating blocks of each loop (default 16 with --quick, 5 otherwise)")
    p.add_argument("--threads", type=int, help="CPU threads (default: 2 with --quick)")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/train_throughput.csv"))
    p.add_argument("--note", default="", help="free text for the table's note column (e.g. the machine)")
    args = p.parse_args(argv)
    for name in ("base_channels", "tile", "workers", "sync_every", "steps", "rounds", "threads"):
        v = getattr(args, name)
        if v is not None and v < (0 if name == "workers" else 1):
            p.error(f"--{name.replace('_', '-')} must be positive, got {v}")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time both loops; return the table row."""
    from unet_repro.augment.augmenter import Augmenter
    from unet_repro.device import resolve_amp
    from unet_repro.model.unet import UNet, count_flops
    from unet_repro.training.config import learning_rate, profile_config
    from unet_repro.training.loop import make_optimizer
    from unet_repro.training.pipeline import LossBuffer, StepRunner, TileSource
    from unet_repro.training.tiles import TileSampler

    dev = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    elif args.quick:
        torch.set_num_threads(2)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    overrides: dict[str, Any] = {}
    if args.quick:
        overrides.update(base_channels=8, tile=188, eval_tile=188)
    if args.base_channels:
        overrides["base_channels"] = args.base_channels
    if args.tile:
        overrides.update(tile=args.tile, eval_tile=args.tile)
    if args.amp:
        overrides["amp"] = args.amp
    cfg = profile_config(args.profile, **overrides)
    paper = profile_config("paper")
    amp_dtype, _ = resolve_amp(cfg.amp, dev)
    workers = args.workers if args.workers is not None else (6 if dev.type == "cuda" else 0)
    sync_every = args.sync_every or (50 if dev.type == "cuda" else 1)
    if dev.type == "cuda" and workers and not args.threads:  # as train() does
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // workers))
    steps = args.steps or (5 if args.quick else 50)
    rounds = args.rounds or (16 if args.quick else 5)

    images, classes, weights = _synthetic(4, 512)
    sampler = TileSampler(images, classes, weights, cfg.tile, cfg.depth)
    augmenter = Augmenter() if cfg.augment else Augmenter.none()

    # the project loop, exactly the pieces train() uses
    torch.manual_seed(cfg.seed)
    model = UNet(cfg.model_config()).to(dev)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = make_optimizer(cfg, model)
    runner = StepRunner(model, opt, cfg.amp, dev)
    losses = LossBuffer(sync_every)
    total = (rounds + 1) * steps
    tiles = iter(
        TileSource(sampler, augmenter, np.random.default_rng(cfg.seed), dev, total, workers, cfg.channels_last)
    )
    step = 0

    def project_block() -> None:
        nonlocal step
        for _ in range(steps):
            lr = learning_rate(cfg, step)
            for group in opt.param_groups:
                group["lr"] = lr
            b = next(tiles)
            loss = runner(b.x, b.target, b.weight)
            step += 1
            losses.add(step, lr, 0.0, loss)
            if losses.due():
                losses.read()
        losses.read()

    # the bare loop: same model and precision, one fixed tile on the device, plain SGD
    torch.manual_seed(cfg.seed)
    bare = UNet(cfg.model_config()).to(dev)
    if cfg.channels_last:
        bare = bare.to(memory_format=torch.channels_last)
    bare.train()
    bare_opt = torch.optim.SGD(bare.parameters(), lr=1e-4, momentum=cfg.momentum)
    scaler = torch.amp.GradScaler(dev.type) if runner.scaler is not None else None
    out = sampler.out
    x = torch.rand(1, 1, cfg.tile, cfg.tile, device=dev)
    if cfg.channels_last:
        x = x.to(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (1, out, out), device=dev)
    w = torch.rand(1, out, out, device=dev) + 1.0

    def bare_block() -> None:
        for _ in range(steps):
            with torch.autocast(dev.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
                logits = bare(x)
            nll = torch.nn.functional.cross_entropy(logits.float(), y, reduction="none")
            loss = (w * nll).sum() / w.sum()
            bare_opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                bare_opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(bare_opt)
                scaler.update()
        _sync(dev)

    project_block()  # warm-up (cuDNN autotuning, allocator, thread pool)
    bare_block()
    t_project = t_bare = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        project_block()
        t_project += time.perf_counter() - t0
        t0 = time.perf_counter()
        bare_block()
        t_bare += time.perf_counter() - t0
    n = steps * rounds
    flops = 3 * count_flops(cfg.model_config(), cfg.tile)
    paper_flops = 3 * count_flops(paper.model_config(), paper.tile)
    peak = matmul_tflops(dev, amp_dtype or torch.float32)
    project_sps, bare_sps = n / t_project, n / t_bare
    achieved = project_sps * flops / 1e12
    fraction = achieved / peak
    same_as_paper = dataclasses.replace(cfg, amp=paper.amp) == paper
    here_min = (
        paper.iterations / project_sps if same_as_paper else paper.iterations * paper_flops / (achieved * 1e12)
    ) / 60
    t4_hours = paper.iterations * paper_flops / (T4_FP16_PEAK_TFLOPS * 1e12 * fraction) / 3600
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else (platform.processor() or platform.machine())
    return {
        "device": dev.type,
        "device_name": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "profile": cfg.profile,
        "base_channels": cfg.base_channels,
        "tile": cfg.tile,
        "augment": cfg.augment,
        "amp": cfg.amp,
        "workers": workers,
        "sync_every": sync_every,
        "steps_timed": n,
        "project_steps_per_s": round(project_sps, 4),
        "bare_steps_per_s": round(bare_sps, 4),
        "ratio_vs_bare": round(project_sps / bare_sps, 3),
        "gflop_per_step": round(flops / 1e9, 3),
        "project_tflops": round(achieved, 4),
        "bare_tflops": round(bare_sps * flops / 1e12, 4),
        "matmul_tflops_here": round(peak, 4),
        "fraction_of_matmul": round(fraction, 4),
        "paper_full_schedule_minutes_here": round(here_min, 2),
        "t4_paper_full_schedule_hours_est": round(t4_hours, 2),
        "note": args.note,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    row = run(args)
    for k, v in row.items():
        print(f"{k:>34}: {v}")
    from unet_repro.training.config import profile_config

    paper_iters = profile_config("paper").iterations
    print(
        f"estimated Colab T4 time of the paper profile's full schedule ({paper_iters} steps): "
        f"{row['t4_paper_full_schedule_hours_est']} h, assuming a T4 reaches the same fraction "
        f"({row['fraction_of_matmul']:.3f}) of its {T4_FP16_PEAK_TFLOPS:g} TFLOP/s fp16 peak as this run "
        "reached of the matrix-product rate measured here"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new = not args.out.is_file()
    with open(args.out, "a", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(row), lineterminator="\n")
        if new:
            wr.writeheader()
        wr.writerow(row)
    print(f"ratio_vs_bare={row['ratio_vs_bare']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
