"""Training the U-Net on the ISBI 2012 stack (section 3 of the paper): the ``train`` command line.

``unet-repro train`` and ``python -m unet_repro.train`` parse their options here and call
:func:`unet_repro.training.loop.train`; bad input is one line and exit status 2 (:func:`unet_repro.cli.guarded`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..data import user as user_data
from ..options import AMP_MODES, DEFAULT_PROFILE, OPTIMIZERS, PROFILES, SCHEDULES, TTA_MODES
from . import checkpoint
from .config import TrainConfig, profile_config
from .loop import train

__all__ = ["main"]


def main(argv: Sequence[str] | None = None, prog: str = "python -m unet_repro.train") -> int:
    """``python -m unet_repro.train --profile ci|cpu|paper --out DIR [--resume]``; 2 on bad input."""
    from ..cli import command_parser, device_name, guarded, nonnegative_int, output_folder, positive_float, positive_int

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
    p.add_argument(
        "--curve",
        action="store_true",
        help="score the held-out slices at every checkpoint and write curve.csv (the held-out learning curve)",
    )
    p.add_argument("--no-progress", action="store_true")
    user_data.add_arguments(p)  # --images, --labels, --labels-kind, --membrane-value, --split
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
        user = user_data.from_args(args)  # the user's stack, checked before any folder is made (None: ISBI)
        cfg = user.configure(cfg) if user is not None else cfg
        if args.out:
            out = Path(args.out)
        else:
            from ..results import run_dir

            out = run_dir(args.profile)
        if args.resume:
            _check_resumable(cfg, out)
        budget = {} if args.max_minutes is None else {"max_minutes": args.max_minutes}
        res = train(
            cfg,
            out,
            resume=args.resume,
            isbi=user,
            device=args.device,
            progress=not args.no_progress,
            curve=args.curve,
            **budget,
        )
        if user is not None:
            user.write_heldout(out)
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
    """``--resume``: the checks of :func:`unet_repro.training.checkpoint.resume` (a checkpoint, of this configuration),
    made before any data is loaded, so that a wrong ``--out`` fails at once."""
    checkpoint.check_resumable(cfg, out)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
