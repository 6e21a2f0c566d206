"""Model and checkpoint files of a training run (section 3 of the paper: one long SGD run).

A run folder (``python -m unet_repro.train --out DIR``) holds:

- ``model.pt``: the trained network (:mod:`unet_repro.model.files` writes and reads it).
- ``checkpoint.pt``: everything an interrupted run needs to continue as if it had never stopped: the
  model, the optimiser's state (the momentum of section 3), every random generator's state, the log and
  the configuration, which :func:`resume` checks against the run being resumed.
- ``log.csv``: iteration, loss, learning rate and time of every step (:func:`write_log`).

This module imports neither the training loop nor the data, so ``unet_repro.inference.command`` loads a model
without importing ``unet_repro.training.loop``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..model.files import atomic_save, config_dict, read_dict

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = [
    "RESUME_FREE",
    "check_resumable",
    "is_finished_run",
    "resume",
    "save_checkpoint",
    "saved_config",
    "write_log",
]

#: Fields of the training configuration that may change when a run is resumed: when checkpoints are
#: written, CPU threads and how the held-out block is predicted. Everything else (``iterations`` too: it
#: sets the learning-rate schedule) must match, or the resumed run would not be the run it continues.
RESUME_FREE = frozenset({"checkpoint_every", "threads", "eval_tile", "tta"})

_CKPT_HINT = "delete it or use another --out folder"


def saved_config(saved: dict[str, Any]) -> dict[str, Any]:
    """A stored configuration with the fields it predates filled in with their defaults (files written
    before a field existed ran with its default), so it compares equal to :func:`config_dict`."""
    from .config import TrainConfig

    defaults = {
        f.name: list(f.default) if isinstance(f.default, tuple) else f.default  # as config_dict stores them
        for f in dataclasses.fields(TrainConfig)
        if f.name not in saved
    }
    return {**defaults, **saved}


def is_finished_run(cfg: TrainConfig, out: str | Path) -> bool:
    """True when ``out`` holds a finished run (``model.pt`` and ``metrics.json``) of exactly ``cfg``.

    Only ``checkpoint_every`` may differ: it changes when checkpoints are written, not the weights.
    """
    out = Path(out)
    if not ((out / "model.pt").is_file() and (out / "metrics.json").is_file()):
        return False
    saved = saved_config(read_dict(out / "model.pt", "model").get("train_config", {}))
    return all(saved.get(k) == v for k, v in config_dict(cfg).items() if k != "checkpoint_every")


def save_checkpoint(
    path: Path,
    step: int,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    rng: np.random.Generator,
    log: list[dict[str, float]],
    elapsed: float,
    cfg: TrainConfig,
) -> None:
    """Write ``checkpoint.pt`` after ``step`` steps: model, optimiser, RNG states, log and configuration.

    Args:
        path: the file (written atomically).
        step: steps done.
        model: the network being trained.
        opt: its optimiser (SGD's momentum buffers or Adam's moments).
        rng: the NumPy generator drawing tiles and deformations.
        log: one dict per step (``iteration``, ``loss``, ``lr``, ``time``).
        elapsed: training seconds so far.
        cfg: the run's configuration.
    """
    atomic_save(
        {
            "iteration": step,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "np_rng": json.dumps(rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "log": [[r["iteration"], r["loss"], r["lr"], r["time"]] for r in log],
            "elapsed": elapsed,
            "config": config_dict(cfg),
        },
        path,
    )


def _read_checkpoint(path: Path, cfg: TrainConfig) -> dict[str, Any]:
    """The checkpoint's contents, after checking that it continues a run of ``cfg``."""
    ck = read_dict(path, "checkpoint", _CKPT_HINT)
    saved = ck.get("config")
    if not isinstance(saved, dict):
        raise ValueError(f"{path} is not a checkpoint written by unet_repro.training.loop (no config); {_CKPT_HINT}")  # noqa: TRY004
    saved = saved_config(saved)
    diff = {k: (saved.get(k), v) for k, v in config_dict(cfg).items() if k not in RESUME_FREE and saved.get(k) != v}
    if diff:
        why = " (iterations sets the learning-rate schedule)" if "iterations" in diff else ""
        raise ValueError(
            f"cannot resume {path}: configuration differs in {diff} (saved, now){why}; "
            "use the same profile/options or another --out folder"
        )
    return ck


def check_resumable(cfg: TrainConfig, out: str | Path) -> None:
    """Raise a one-line ``ValueError`` when ``out/checkpoint.pt`` exists but cannot continue a run of ``cfg``.

    Cheap (reads the checkpoint, loads no data), so a command line can check before it starts.
    """
    path = Path(out) / "checkpoint.pt"
    if path.is_file():
        _read_checkpoint(path, cfg)


def resume(
    path: Path, cfg: TrainConfig, model: torch.nn.Module, opt: torch.optim.Optimizer, rng: np.random.Generator
) -> tuple[int, float, list[dict[str, float]]]:
    """Restore a run from ``checkpoint.pt`` in place, so it continues exactly where it stopped.

    Args:
        path: the checkpoint written by :func:`save_checkpoint`.
        cfg: the configuration of the run being resumed; it must equal the saved one except for
            :data:`RESUME_FREE` fields.
        model, opt, rng: freshly built for ``cfg``; their states are overwritten, and so are torch's
            (and CUDA's) global generators.

    Returns:
        ``(steps done, elapsed seconds, log)``.

    Raises:
        ValueError: (one line) when the file is not a checkpoint or the configuration differs.
    """
    ck = _read_checkpoint(path, cfg)
    missing = sorted({"iteration", "model", "optimizer", "np_rng", "torch_rng", "log", "elapsed"} - ck.keys())
    if missing:
        raise ValueError(
            f"{path} is not a checkpoint written by unet_repro.training.loop (no {', '.join(missing)}); {_CKPT_HINT}"
        )
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    rng.bit_generator.state = json.loads(ck["np_rng"])
    torch.set_rng_state(ck["torch_rng"])
    if ck.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ck["cuda_rng"])
    log = [{"iteration": int(a), "loss": float(b), "lr": float(c), "time": float(d)} for a, b, c, d in ck["log"]]
    return int(ck["iteration"]), float(ck["elapsed"]), log


def write_log(path: Path, log: list[dict[str, float]]) -> None:
    """Write ``log.csv``: iteration, loss, learning rate and seconds since the start, one row per step."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["iteration", "loss", "lr", "time"])
        for r in log:
            w.writerow([r["iteration"], f"{r['loss']:.6g}", f"{r['lr']:.6g}", f"{r['time']:.3f}"])
