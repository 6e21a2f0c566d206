"""Where a model runs and in which precision: one home for the device and mixed-precision choices.

:func:`resolve_device` turns ``--device`` (``auto``, ``cpu``, ``cuda[:N]``, ``mps``) into a ``torch.device``
with a one-line error naming the fix; :func:`resolve_amp` turns ``--amp`` into an autocast dtype and whether
gradients need scaling. Mixed precision is not the paper's (it trained in fp32 in 2015): it is an option for
today's GPUs. Training (:mod:`unet_repro.training`) and prediction (:mod:`unet_repro.inference`) share both.
"""

from __future__ import annotations

import torch

from .options import AMP_MODES

__all__ = ["resolve_amp", "resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The device to run on: ``auto`` is CUDA when available, else CPU.

    Args:
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (or a ``torch.device``).

    Returns:
        The ``torch.device``.

    Raises:
        ValueError: (one line, naming the fix) for an unknown name or a device this machine lacks.
    """
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"--device {device}: unknown device; use --device auto, cpu, cuda, cuda:N or mps")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {device}: no CUDA device is available here (torch.cuda.is_available() "
                "is False); use --device cpu or auto"
            )
        if index and int(index) >= torch.cuda.device_count():
            raise ValueError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"numbered from 0; use --device cuda:0 .. cuda:{torch.cuda.device_count() - 1}"
            )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: no Apple MPS device is available here; use --device cpu or auto")
    return torch.device(name)


def resolve_amp(amp: str | bool, device: torch.device | str) -> tuple[torch.dtype | None, bool]:
    """The autocast dtype (None: fp32) and whether gradients need scaling, for ``amp`` on ``device``.

    Args:
        amp: ``"off"``, ``"bf16"``, ``"fp16"`` or ``"auto"`` (``True``/``False`` mean ``"bf16"``/``"off"``).
        device: where the model runs.

    Returns:
        ``(dtype or None, use_grad_scaler)``; the scaler is used for fp16 on CUDA only (fp16 gradients
        underflow without it; bf16 has fp32's exponent range and needs none).
    """
    if isinstance(amp, bool):
        amp = "bf16" if amp else "off"
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {amp!r}")
    dev = torch.device(device)
    if amp == "auto":
        if dev.type != "cuda":
            return None, False
        # native bf16 from compute capability 8.0 (Ampere) on; a T4 (7.5) only emulates it, slowly, which
        # torch.cuda.is_bf16_supported() counts as support
        native = bool(torch.version.hip) or torch.cuda.get_device_capability(dev)[0] >= 8
        amp = "bf16" if native else "fp16"
    if amp == "off":
        return None, False
    if amp == "bf16":
        return torch.bfloat16, False
    return torch.float16, dev.type == "cuda"
