"""Splits and merges per slice: they add up to the warping error, and a cut membrane is one merge."""

from __future__ import annotations

import numpy as np
import pytest

from unet_repro.metrics import evaluate
from unet_repro.metrics.topology import topology_errors_by_slice


def _two_cells() -> np.ndarray:
    lab = np.full((64, 64), 255, np.uint8)
    lab[:, 30:33] = 0  # one vertical membrane between two cells
    return lab


def test_a_cut_membrane_is_one_merge_event_and_the_slices_add_up_to_the_warping_error():
    lab = np.stack([_two_cells(), _two_cells()])
    prob = (lab / 255).astype(np.float32)
    prob[1, 20:26, 30:33] = 1.0  # slice 1: a 6-px gap in the membrane merges the two cells
    table = topology_errors_by_slice(prob, lab, 0.5)
    assert list(table.merges) == [0, 1] and list(table.splits) == [0, 0] and table.merge_pixels[1] > 0
    ev = evaluate(prob, lab)
    i = int(np.flatnonzero(np.isclose(ev.warping.thresholds, 0.5))[0])
    assert table.warping_error.mean() == pytest.approx(ev.warping.error[i])
