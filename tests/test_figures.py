"""The arrays behind the figures of notebooks 04 and 05: error maps, cells, crops, merges and splits."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from unet_repro.metrics.figures import (
    FALSE_MEMBRANE,
    MISSED_MEMBRANE,
    CropRow,
    busiest_window,
    cells,
    error_map,
    native_crops_figure,
    near_membrane_share,
)
from unet_repro.metrics.pixel import pixel_error_curve
from unet_repro.metrics.topology import topology_errors_by_slice, topology_events


def _two_cells(h: int = 32, w: int = 32) -> np.ndarray:
    """A membrane frame and a vertical membrane (columns 15-16) between two cells."""
    lab = np.full((h, w), 255, np.uint8)
    lab[:2], lab[-2:], lab[:, :2], lab[:, -2:] = 0, 0, 0, 0
    lab[:, 15:17] = 0
    return lab


def test_error_map_is_the_pixel_errors_false_negatives_and_positives():
    rng = np.random.default_rng(0)
    lab = _two_cells()
    prob = np.clip((lab > 0) * 0.8 + rng.normal(0, 0.3, lab.shape), 0, 1).astype(np.float32)
    curve = pixel_error_curve(prob, lab)
    for i, t in enumerate(curve.thresholds):
        err = error_map(prob, lab, t)
        cell = lab > 0
        assert int((err == FALSE_MEMBRANE).sum()) == int((cell & (prob <= t)).sum())
        assert int((err == MISSED_MEMBRANE).sum()) == int((~cell & (prob > t)).sum())
        # the pixel error's F-score of the cell class, rebuilt from the map
        tp = int((cell & (err == 0)).sum())
        f = 2 * tp / (2 * tp + int((err != 0).sum())) if tp else 0.0
        assert f == pytest.approx(curve.fscore[i], abs=1e-12)


def test_error_map_uses_the_threshold_given():
    lab = _two_cells()
    prob = np.where(lab > 0, 0.3, 0.0).astype(np.float32)  # cells predicted at 0.3: cell above 0.2, not above 0.5
    assert (error_map(prob, lab, 0.2) == 0).all()
    assert ((error_map(prob, lab, 0.5) == FALSE_MEMBRANE) == (lab > 0)).all()


def test_cells_are_four_connected():
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = mask[1, 1] = True  # touching at a corner only: two cells
    assert cells(mask)[1] == 2
    assert cells(_two_cells())[1] == 2
    lab = _two_cells()
    lab[10:12, 15:17] = 255  # a gap in the membrane: one cell
    assert cells(lab)[1] == 1


def test_busiest_window_finds_the_errors():
    err = np.zeros((512, 512), np.uint8)
    err[300:340, 400:420] = FALSE_MEMBRANE
    top, left = busiest_window(err, size=256, step=32)
    assert top <= 300 and top + 256 >= 340 and left <= 400 and left + 256 >= 420
    assert busiest_window(np.zeros((512, 512)), 256) == (0, 0)


def test_near_membrane_share():
    lab = _two_cells()
    err = np.zeros(lab.shape, np.uint8)
    err[10, 14] = FALSE_MEMBRANE  # next to the membrane
    assert near_membrane_share(err, lab, distance=2) == 1.0
    err[10, 8] = FALSE_MEMBRANE  # in the middle of a cell, 6 px from any membrane
    assert near_membrane_share(err, lab, distance=2) == 0.5
    assert near_membrane_share(np.zeros_like(err), lab) == 0.0


def test_native_crops_are_drawn_one_pixel_per_pixel():
    lab = np.tile(_two_cells(64, 64), (4, 4))
    img = (lab // 2).astype(np.uint8)
    prob = (lab > 0).astype(np.float32)
    row = CropRow("slice", img, prob, lab, 0.5, 0.5, (0, 0), size=128)
    fig = native_crops_figure([row, row], "title", dpi=100)
    fig.canvas.draw()
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 10
    for ax in images:
        box = ax.get_window_extent()
        assert (round(box.width), round(box.height)) == (128, 128)
    plt.close(fig)


def test_topology_events_name_the_merged_and_the_split_cells():
    lab = _two_cells()
    gap = (lab > 0).astype(np.float32)
    gap[10:14, 15:17] = 1.0  # the membrane erased over 4 rows: the two cells merge
    merge = topology_events(gap[None], lab[None], 0.5)
    per_slice = topology_errors_by_slice(gap[None], lab[None], 0.5)
    assert list(merge.kind) == ["merge"]
    assert merge.pixels.iloc[0] == per_slice.merge_pixels.iloc[0] > 0
    a, b = merge.part_pixels.iloc[0]
    assert merge.parts.iloc[0] == 2 and merge.pairs.iloc[0] == a * b
    # the warped label's cells: the label's, grown by the gap pixels the warping flipped without merging
    assert int((lab > 0).sum()) <= a + b < int((lab > 0).sum()) + 8

    line = (lab > 0).astype(np.float32)
    line[2:-2, 7] = 0.0  # a false membrane across the left cell: it splits
    split = topology_events(line[None], lab[None], 0.5)
    assert list(split.kind) == ["split"]
    assert split.pixels.iloc[0] == topology_errors_by_slice(line[None], lab[None], 0.5).split_pixels.iloc[0]
    assert split.parts.iloc[0] == 2 and sorted(split.part_pixels.iloc[0]) == [5 * 28, 7 * 28]
    assert split.pairs.iloc[0] == 5 * 28 * 7 * 28
