"""The model file, ``model.pt``: the trained network and everything needed to rebuild it.

``model.pt`` holds ``{"state_dict", "model_config": asdict(UNetConfig), "train_config", "input_scaling",
...}``; :func:`load_model` rebuilds the network with ``torch.load(..., weights_only=True)``, so opening a model
file never runs code from it. Prediction needs only this module and the network, not the training code; a
training run's checkpoint (momentum, random states) is :mod:`unet_repro.training.checkpoint`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from .sizing import UNetConfig
from .unet import UNet

__all__ = ["atomic_save", "config_dict", "load_model", "model_from_dict", "read_dict", "read_model_dict", "save_model"]

_TRAIN_HINT = "pass a model.pt written by `python -m unet_repro.train`"


def config_dict(cfg: Any) -> dict[str, Any]:
    """A configuration dataclass (the training one) as plain JSON-like values (tuples become lists), as
    stored in files."""
    d = dataclasses.asdict(cfg)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def atomic_save(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file, then an atomic rename: a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_dict(path: Path, what: str, hint: str = _TRAIN_HINT) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of a dict, or a one-line ``ValueError`` naming the file."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types, with advice that does not apply
        raise ValueError(f"{path} is not a {what} (torch.load failed: {type(exc).__name__}); {hint}") from None
    if not isinstance(payload, dict):
        raise ValueError(f"{path} holds a {type(payload).__name__}, not a {what}; {hint}")  # noqa: TRY004 - a bad file
    return payload


def save_model(model: UNet, path: str | Path, cfg: Any = None, **extra: Any) -> Path:
    """Write ``model.pt``: the state dict and everything needed to rebuild the model.

    Args:
        model: the network (its ``config`` is stored as ``asdict(UNetConfig)``).
        path: the file to write (atomically: a crash never leaves half a file).
        cfg: the training configuration (a dataclass), stored for the reader and for
            :func:`unet_repro.training.checkpoint.is_finished_run`.
        **extra: more JSON-like entries (e.g. ``iterations``, ``seconds``).

    Returns:
        ``path``.
    """
    path = Path(path)
    payload: dict[str, Any] = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_config": dataclasses.asdict(model.config),
        "train_config": config_dict(cfg) if cfg is not None else {},
        "input_scaling": "grey value / 255",
        **extra,
    }
    atomic_save(payload, path)
    return path


def load_model(path: str | Path, device: str | torch.device = "cpu") -> UNet:
    """Rebuild a model written by :func:`save_model` (safe load: ``weights_only=True``), in eval mode.

    Args:
        path: a ``model.pt``.
        device: where to put the model.

    Returns:
        The :class:`unet_repro.model.unet.UNet` with the saved weights.

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        ValueError: (one line) when the file is not a model written by :func:`save_model`.
    """
    return model_from_dict(read_model_dict(path), path, device)


def read_model_dict(path: str | Path) -> dict[str, Any]:
    """The dict of a ``model.pt`` (read once: weights, configurations, grey-value mapping), for :func:`model_from_dict`.

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        ValueError: (one line) when it cannot be read as a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model at {path}; train one with `python -m unet_repro.train --out DIR`")
    return read_dict(path, "model")


def model_from_dict(payload: dict[str, Any], path: str | Path, device: str | torch.device = "cpu") -> UNet:
    """The model held by a ``model.pt`` already read with :func:`read_dict` (one read serves several uses).

    Args:
        payload: the dict :func:`save_model` wrote.
        path: the file it came from (named in errors).
        device: where to put the model.

    Returns:
        The :class:`unet_repro.model.unet.UNet` with the saved weights, in eval mode.

    Raises:
        ValueError: (one line) when ``payload`` is not a model written by :func:`save_model`.
    """
    if "state_dict" not in payload or "model_config" not in payload:
        kind = "a training checkpoint" if "iteration" in payload and "model" in payload else "not a model"
        raise ValueError(f"{path} is {kind} (no state_dict/model_config); {_TRAIN_HINT}")
    try:
        model = UNet(UNetConfig(**payload["model_config"]))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path} does not hold a valid U-Net ({first}); {_TRAIN_HINT}") from None
    return model.to(device).eval()
