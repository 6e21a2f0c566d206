"""What keeps a GPU busy during training: tile preparation ahead of time, mixed precision, lazy loss reads.

None of this changes what is trained (section 3 of the paper: one 572x572 tile per SGD step); it changes
when the work is done and in which number format:

- :class:`TileSource` draws each step's tile position and augmentation parameters from the run's numpy
  generator in the order :class:`unet_repro.training.tiles.TileSampler` and
  :class:`unet_repro.augment.augmenter.Augmenter`
  always drew them, and then either prepares the tile at once (``workers=0``, the CPU default: exactly the
  sequential code) or hands the deterministic part (crop, resampling, gray values) to a pool of threads
  that runs ahead of the GPU, with the tensors in pinned memory for an asynchronous copy. The tiles are the
  same in both cases; the generator state recorded with each tile is the one a checkpoint must hold.
- :func:`resolve_amp`: ``"off"`` (fp32), ``"bf16"``, ``"fp16"`` (with a ``torch.amp.GradScaler`` on CUDA)
  or ``"auto"`` (bf16 where the GPU has it, fp16 with gradient scaling where not, e.g. a T4; fp32 on CPU).
- :class:`LossBuffer`: the per-step losses stay on the device and are read every ``every`` steps, so the
  host does not wait for the GPU after each step; a non-finite loss is still reported with its step.
- :class:`StepRunner`: one optimisation step (forward under autocast, eq. 1 in fp32, backward, update).

Python threads suffice for the pool: the heavy parts (``grid_sample``, numpy array arithmetic) release the
interpreter lock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from ..device import resolve_amp

__all__ = ["check_training_arrays", "Batch", "TileSource", "LossBuffer", "StepRunner"]


@dataclass
class Batch:
    """One training step's input: the tile (1 x 1 x T x T), its classes and weights (1 x O x O or T x T)
    on the training device, and the generator state right after the step's draws (for checkpoints)."""

    x: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor
    rng_state: dict[str, Any]


def check_training_arrays(labels: np.ndarray, weights: np.ndarray | None, num_classes: int = 2) -> None:
    """Check once what eq. 1 needs of every tile: classes in ``0..num_classes-1``, weights finite and >= 0.

    Tiles are crops and resamplings of these arrays (labels by nearest neighbour, weights bilinearly and
    clipped to their range, ``unet_repro.augment.augmenter``), so they inherit both properties, and the loss need not
    check them on the device at every step (each check is a host synchronisation).

    Raises:
        ValueError: naming the property that fails.
    """
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"training classes must lie in 0..{num_classes - 1}, got {int(labels.min())}..{int(labels.max())}"
        )
    if weights is not None and (not np.isfinite(weights).all() or (weights < 0).any() or not weights.any()):
        raise ValueError("training weight maps must be finite, >= 0 and not all 0")


def _to_tensors(
    img: np.ndarray, lab: np.ndarray, wmap: np.ndarray, pin: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None, None]
    target = torch.from_numpy(np.ascontiguousarray(lab).astype(np.int64))[None]
    w = torch.from_numpy(np.ascontiguousarray(wmap, dtype=np.float32))[None]
    if pin:
        x, target, w = x.pin_memory(), target.pin_memory(), w.pin_memory()
    return x, target, w


class TileSource:
    """The training tiles of steps ``start .. stop - 1``, in order, on ``device``.

    Args:
        sampler: a :class:`unet_repro.training.tiles.TileSampler` (``position`` draws, ``crop`` cuts).
        augmenter: a :class:`unet_repro.augment.augmenter.Augmenter` (``sample`` draws, ``apply`` deforms).
        rng: the run's generator; advanced exactly as the sequential loop advances it.
        device: where the tensors go.
        steps: how many tiles to produce (never draws beyond them).
        workers: 0 prepares each tile when asked (the sequential code); n > 0 keeps ``2 n`` tiles in
            flight on ``n`` threads.
        channels_last: put the input in channels-last memory format.
        batch_size: tiles per step, drawn one after the other (1 in the paper, section 3).
    """

    def __init__(
        self,
        sampler: Any,
        augmenter: Any,
        rng: np.random.Generator,
        device: torch.device | str,
        steps: int,
        workers: int = 0,
        channels_last: bool = False,
        batch_size: int = 1,
    ) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.sampler, self.augmenter, self.rng = sampler, augmenter, rng
        self.device = torch.device(device)
        self.steps, self.workers, self.channels_last = int(steps), int(workers), channels_last
        self.pin = self.device.type == "cuda"
        check_training_arrays(sampler.labels, sampler.weights)

    def _finish(self, x: torch.Tensor, target: torch.Tensor, w: torch.Tensor, state: dict[str, Any]) -> Batch:
        nb = self.pin
        x = x.to(self.device, non_blocking=nb)
        if self.channels_last:
            x = x.to(memory_format=torch.channels_last)
        return Batch(x, target.to(self.device, non_blocking=nb), w.to(self.device, non_blocking=nb), state)

    def _prepare(self, pos: tuple[int, int, int], params: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        img, lab, wmap = self.sampler.crop(*pos)
        img, lab, wmap = self.augmenter.apply(params, img, lab, wmap)
        return _to_tensors(img, lab, wmap, self.pin)

    def __iter__(self) -> Generator[Batch, None, None]:
        """One :class:`Batch` per step; a batch of several tiles stacks consecutive draws."""
        group: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for tensors, state in self._tiles(self.steps * self.batch_size):
            group.append(tensors)
            if len(group) == self.batch_size:
                x, target, w = (t[0] if len(group) == 1 else torch.cat(t) for t in zip(*group, strict=True))
                group = []
                yield self._finish(x, target, w, state)

    def _tiles(
        self, n: int
    ) -> Generator[tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], dict[str, Any]], None, None]:
        """``n`` tiles in draw order, each with the generator state right after its draws."""
        if self.workers == 0:
            for _ in range(n):
                img, lab, wmap = self.sampler(self.rng)
                img, lab, wmap = self.augmenter(img, lab, self.rng, weight=wmap)
                yield _to_tensors(img, lab, wmap, self.pin), self.rng.bit_generator.state
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="tiles") as pool:
            queue: deque[tuple[Future, dict[str, Any]]] = deque()
            drawn = 0

            def draw() -> None:
                nonlocal drawn
                # the same draws in the same order as sampler(rng) followed by augmenter(..., rng)
                pos = self.sampler.position(self.rng)
                params = self.augmenter.sample(self.rng)
                queue.append((pool.submit(self._prepare, pos, params), self.rng.bit_generator.state))
                drawn += 1

            try:
                while drawn < min(n, 2 * self.workers):
                    draw()
                while queue:
                    fut, state = queue.popleft()
                    if drawn < n:
                        draw()
                    yield fut.result(), state
            finally:
                for fut, _ in queue:
                    fut.cancel()


class LossBuffer:
    """Per-step losses kept on the device and read in blocks (one host synchronisation per block).

    Args:
        every: steps per read; 1 reads after every step.
    """

    def __init__(self, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = int(every)
        self._pending: list[tuple[int, float, float, torch.Tensor]] = []

    def add(self, step: int, lr: float, seconds: float, loss: torch.Tensor) -> None:
        """Keep step ``step``'s (1-based) loss without reading it."""
        self._pending.append((step, lr, seconds, loss.detach()))

    def due(self) -> bool:
        """True when a block is full."""
        return len(self._pending) >= self.every

    def read(self) -> list[dict[str, float]]:
        """The pending rows ``{iteration, loss, lr, time}``, read at once.

        Raises:
            FloatingPointError: naming the first step whose loss is not finite.
        """
        if not self._pending:
            return []
        values = torch.stack([p[3] for p in self._pending]).cpu().tolist()
        rows = [
            dict(iteration=s, loss=v, lr=lr, time=t) for (s, lr, t, _), v in zip(self._pending, values, strict=True)
        ]
        self._pending = []
        for r in rows:
            if not math.isfinite(r["loss"]):
                raise FloatingPointError(
                    f"loss became {r['loss']} at step {r['iteration']} (lr {r['lr']:g}); lower --lr"
                )
        return rows


class StepRunner:
    """One optimisation step: forward under autocast, the weighted cross-entropy (eq. 1) in fp32,
    backward (scaled for fp16 on CUDA) and the optimiser's update.

    Args:
        model: the U-Net.
        opt: its optimiser.
        amp: ``TrainConfig.amp`` (see :func:`resolve_amp`).
        device: the model's device.
        loss_fn: ``(logits, target, weight) -> loss`` (default ``unet_repro.loss.cross_entropy.weighted_cross_entropy``
            without its per-step value checks, which :func:`check_training_arrays` does once).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        amp: str | bool,
        device: torch.device | str,
        loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        from ..loss.cross_entropy import weighted_cross_entropy

        self.model, self.opt = model, opt
        self.device = torch.device(device)
        self.dtype, scaled = resolve_amp(amp, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type) if scaled else None
        self.loss_fn = loss_fn or partial(weighted_cross_entropy, validate=False)

    def __call__(self, x: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Run one step and return its loss (a 0-d tensor on the device; not read)."""
        with torch.autocast(self.device.type, dtype=self.dtype or torch.bfloat16, enabled=self.dtype is not None):
            logits = self.model(x)
        loss = self.loss_fn(logits.float(), target, weight)
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.opt.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        return loss.detach()
