"""Training configurations shared by the tests: a network and schedule small enough for seconds on one thread."""

from __future__ import annotations

from typing import Any

from unet_repro.training.config import TrainConfig


def tiny_config(**overrides: Any) -> TrainConfig:
    """2 base channels, depth 2, 92-px tiles, 6 steps on slices 0 and 1; ``overrides`` change any field."""
    base: dict[str, Any] = dict(
        profile="custom",
        base_channels=2,
        depth=2,
        tile=92,
        eval_tile=252,
        iterations=6,
        lr=0.01,
        warmup=2,
        lr_schedule="cosine",
        train_slices=(0, 1),
        threads=1,
    )
    base.update(overrides)
    return TrainConfig(**base)
