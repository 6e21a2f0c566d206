"""How long one training step of a U-Net takes on this machine, for notebook 04's speed appendix.

The paper trained for "only 10 hours on a NVidia Titan GPU (6 GB)" (section 4) without saying how many steps.
:func:`sgd_step_seconds` times the paper's step (SGD with momentum 0.99, one 572 x 572 tile) so the notebook can
say how many such steps fit into 10 hours here. Speed is no claim of the paper: the notebook reports it only.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..model.unet import UNet

__all__ = ["sgd_step_seconds"]


def sgd_step_seconds(base_channels: int, device: torch.device, steps: int = 2, tile: int = 572) -> float:
    """Median seconds of an SGD step (forward, backward, update) on one ``tile`` x ``tile`` input, after a warm-up.

    Args:
        base_channels: channels of the first level (the paper's network: 64).
        device: where to run (CUDA is synchronised before each time is read).
        steps: timed steps.
        tile: input side; the output is ``tile - 184`` pixels (valid convolutions).

    Returns:
        The median of the ``steps`` timed steps, in seconds.
    """
    torch.manual_seed(0)
    net = UNet(base_channels=base_channels).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.99)
    x = torch.rand(1, 1, tile, tile, device=device)
    y = torch.randint(0, 2, (1, tile - 184, tile - 184), device=device)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))
