"""What a metric sees, drawn at native resolution: error maps and cells of a prediction (chapters 04 and 05).

A membrane is 2 to 8 pixels wide on a 512 x 512 ISBI slice, so a whole slice shrunk into a notebook hides the
mistakes that the challenge metrics count. This module draws crops at one screen pixel per image pixel
(:func:`native_crops_figure`) and enlarged crops around single merges and splits (:func:`event_crops_figure`),
from the arrays a metric scores: :func:`error_map` (false and missed membrane at the threshold the reported
metric used), :func:`cells` (the 4-connected cells that the Rand and warping errors compare). Imports no torch;
matplotlib only inside the drawing functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "CORRECT",
    "FALSE_MEMBRANE",
    "MISSED_MEMBRANE",
    "ERROR_COLOURS",
    "ERROR_NAMES",
    "error_map",
    "near_membrane_share",
    "cells",
    "cell_colours",
    "busiest_window",
    "window_around",
    "CropRow",
    "native_crops_figure",
    "event_crops_figure",
]

#: :func:`error_map`'s values: right, membrane predicted inside a cell, membrane predicted as cell
CORRECT, FALSE_MEMBRANE, MISSED_MEMBRANE = 0, 1, 2
ERROR_COLOURS = {FALSE_MEMBRANE: (1.0, 0.55, 0.0), MISSED_MEMBRANE: (0.0, 0.75, 1.0)}
ERROR_NAMES = {
    FALSE_MEMBRANE: "false membrane (label: cell, predicted: membrane)",
    MISSED_MEMBRANE: "missed membrane (label: membrane, predicted: cell)",
}


def error_map(prob_cell: np.ndarray, label: np.ndarray, threshold: float) -> np.ndarray:
    """Each pixel's mistake at ``threshold``, by the challenge's rule (cell where ``prob_cell > threshold``).

    Args:
        prob_cell: probability of cell in [0, 1], any shape.
        label: 0 = membrane, >0 = cell, same shape.
        threshold: the threshold of the metric reported (e.g. the pixel error's best one on the scored block).

    Returns:
        uint8 array of the same shape: :data:`CORRECT`, :data:`FALSE_MEMBRANE` or :data:`MISSED_MEMBRANE`.
        Its non-zero pixels are the pixel error's false negatives and false positives of the cell class.
    """
    prob, lab = np.asarray(prob_cell), np.asarray(label)
    if prob.shape != lab.shape:
        raise ValueError(f"prob_cell {prob.shape} and label {lab.shape} differ in shape")
    cell_pred, cell_true = prob.astype(np.float64) > threshold, lab != 0
    out = np.zeros(lab.shape, np.uint8)
    out[cell_true & ~cell_pred] = FALSE_MEMBRANE
    out[~cell_true & cell_pred] = MISSED_MEMBRANE
    return out


def near_membrane_share(errors: np.ndarray, label: np.ndarray, distance: int = 2) -> float:
    """The share of wrong pixels (non-zero ``errors``) within ``distance`` pixels (chessboard) of the label's
    membrane/cell edge: how many of the mistakes are about where a membrane ends, not whether it is there.

    Args:
        errors: :func:`error_map` (or any mask of wrong pixels), (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell, same shape.
        distance: pixels from the edge (1: the pixels on either side of it).

    Returns:
        A share in [0, 1] (0 when nothing is wrong).
    """
    err, lab = np.asarray(errors) != 0, np.asarray(label) != 0
    if err.shape != lab.shape:
        raise ValueError(f"errors {err.shape} and label {lab.shape} differ in shape")
    lab2 = lab.reshape((-1, *lab.shape[-2:]))
    box = np.ones((3, 3), bool)
    edge = np.stack([ndimage.binary_dilation(s, box) & ~ndimage.binary_erosion(s, box, border_value=1) for s in lab2])
    near = np.stack(
        [ndimage.binary_dilation(e, box, iterations=max(distance - 1, 0)) if distance > 1 else e for e in edge]
    )
    total = int(err.sum())
    return float((err.reshape(near.shape) & near).sum()) / total if total else 0.0


def cells(cell_mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The 4-connected cells of a 2D mask (the connectivity of the challenge's Rand and warping errors).

    Args:
        cell_mask: (H, W), true (or non-zero) = cell: ``prob_cell > threshold`` or ``label != 0``.

    Returns:
        ``(numbers, count)``: int32 image, 0 = membrane, 1..count = the cells.
    """
    mask = np.asarray(cell_mask)
    if mask.ndim != 2:
        raise ValueError(f"cells takes one 2D slice, got shape {mask.shape}")
    numbers, count = ndimage.label(mask != 0, structure=ndimage.generate_binary_structure(2, 1))
    return numbers.astype(np.int32), int(count)


def cell_colours(numbers: np.ndarray, seed: int = 0) -> np.ndarray:
    """An RGB image of numbered cells: each cell a random light colour (seeded), membrane black."""
    n = int(numbers.max()) + 1
    palette = np.random.default_rng(seed).uniform(0.25, 1.0, size=(n, 3))
    palette[0] = 0.0
    return palette[numbers]


def busiest_window(errors: np.ndarray, size: int = 256, step: int = 32) -> tuple[int, int]:
    """Top-left corner of the ``size`` x ``size`` window (corners on a ``step`` grid) with the most non-zero pixels.

    Ties go to the first window in row-major order, so the choice is reproducible.
    """
    err = np.asarray(errors) != 0
    h, w = err.shape
    if size > min(h, w):
        raise ValueError(f"a {size} px window does not fit a {h} x {w} slice")
    integral = np.pad(err.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    best, corner = -1, (0, 0)
    for top in [*range(0, h - size, step), h - size]:
        for left in [*range(0, w - size, step), w - size]:
            count = (
                integral[top + size, left + size]
                - integral[top, left + size]
                - integral[top + size, left]
                + integral[top, left]
            )
            if count > best:
                best, corner = int(count), (top, left)
    return corner


def window_around(y: int, x: int, size: int, shape: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of the ``size`` x ``size`` window centred on ``(y, x)``, moved inside ``shape``."""
    top = min(max(y - size // 2, 0), shape[0] - size)
    left = min(max(x - size // 2, 0), shape[1] - size)
    return int(top), int(left)


@dataclass(frozen=True)
class CropRow:
    """One row of :func:`native_crops_figure`: a slice, its prediction and the thresholds the metrics used."""

    name: str  # e.g. "test slice 25"
    image: np.ndarray  # (H, W) grey values
    prob_cell: np.ndarray  # (H, W) in [0, 1]
    label: np.ndarray  # (H, W), 0 = membrane
    pixel_threshold: float  # where the errors are drawn
    cell_threshold: float  # where the prediction's cells are cut
    corner: tuple[int, int]  # top-left of the crop
    size: int = 256


def _range(arr: np.ndarray, cmap: str | None) -> dict:
    """imshow's grey range: a probability 0-1, an image its own, an RGB image none."""
    if cmap is None:
        return {}
    return {"vmin": 0.0, "vmax": 1.0} if np.issubdtype(arr.dtype, np.floating) else {}


def _overlay(image: np.ndarray, errors: np.ndarray) -> np.ndarray:
    grey = (image - image.min()) / max(float(np.ptp(image)), 1e-12)
    rgb = np.repeat(grey[..., None] * 0.8, 3, axis=2)
    for value, colour in ERROR_COLOURS.items():
        rgb[errors == value] = colour
    return rgb


def native_crops_figure(rows: Sequence[CropRow], title: str, dpi: int = 100):  # noqa: ANN201 - a Figure
    """Crops at one figure pixel per image pixel (saved at ``dpi``): image, P(cell), errors, and cells.

    Columns: the image; P(cell); the errors of :func:`error_map` at ``pixel_threshold`` over the image, in the
    two colours of :data:`ERROR_COLOURS` (legend below); the prediction's cells at ``cell_threshold`` and the
    label's cells (:func:`cells`, random colours; the colours of the two do not correspond). The counts of
    cells and of each kind of error in the crop are in the titles.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    size = rows[0].size
    if any(r.size != size for r in rows):
        raise ValueError("all rows need the same crop size")
    gap, head, foot, top_title = 12, 44, 60, 40  # pixels
    width = 5 * size + 6 * gap
    height = top_title + len(rows) * (size + head) + foot
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    for r, row in enumerate(rows):
        y0, x0 = row.corner
        win = np.s_[y0 : y0 + size, x0 : x0 + size]
        errors = error_map(row.prob_cell, row.label, row.pixel_threshold)[win]
        pred_cells, n_pred = cells(row.prob_cell[win] > row.cell_threshold)
        true_cells, n_true = cells(row.label[win])
        panels = [
            (row.image[win], "gray", f"{row.name}, rows {y0}-{y0 + size - 1}, cols {x0}-{x0 + size - 1}"),
            (row.prob_cell[win], "gray", "P(cell)"),
            (
                _overlay(row.image[win].astype(np.float64), errors),
                None,
                f"errors at threshold {row.pixel_threshold:.1f}: "
                f"{int((errors == FALSE_MEMBRANE).sum())} false, {int((errors == MISSED_MEMBRANE).sum())} missed",
            ),
            (cell_colours(pred_cells, seed=r), None, f"{n_pred} predicted cells (> {row.cell_threshold:.1f})"),
            (cell_colours(true_cells, seed=r + 100), None, f"{n_true} label cells"),
        ]
        bottom = height - top_title - (r + 1) * (size + head) + 0
        for c, (arr, cmap, text) in enumerate(panels):
            ax = fig.add_axes(((gap + c * (size + gap)) / width, bottom / height, size / width, size / height))
            ax.imshow(arr, cmap=cmap, interpolation="nearest", **_range(arr, cmap))
            ax.set_title(text, fontsize=8)
            ax.set_axis_off()
    fig.legend(
        handles=[Patch(color=ERROR_COLOURS[v], label=ERROR_NAMES[v]) for v in (FALSE_MEMBRANE, MISSED_MEMBRANE)],
        loc="lower center",
        ncol=2,
        fontsize=9,
        frameon=False,
        bbox_to_anchor=(0.5, 8 / height),
    )
    fig.suptitle(title, fontsize=10, y=1 - 6 / height, va="top")
    return fig


def event_crops_figure(
    image: np.ndarray,
    prob_cell: np.ndarray,
    label: np.ndarray,
    events: Sequence[dict],
    threshold: float,
    title: str,
    size: int = 96,
):  # noqa: ANN201 - a Figure
    """One row per merge or split: the image, the label's cells, P(cell) and the prediction's cells around it.

    Args:
        image, prob_cell, label: (Z, H, W) stacks (grey values, probability of cell, 0 = membrane).
        events: rows of :func:`unet_repro.metrics.topology.topology_events` (``slice``, ``kind``, ``y``, ``x``,
            ``yx``), plus ``name`` (the row's title, e.g. "slice 25, merge 1").
        threshold: where the prediction's cells are cut (the threshold of the events).
        title: the figure's title.
        size: crop side in pixels (drawn enlarged).

    The event's centre is ringed in red on the image and P(cell); its pixels are red on both cell panels.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(events), 4, figsize=(10, 2.7 * len(events)), squeeze=False)
    for r, ev in enumerate(events):
        k = int(ev["slice"])
        top, left = window_around(int(ev["y"]), int(ev["x"]), size, image.shape[1:])
        win = np.s_[top : top + size, left : left + size]
        pred_cells, _ = cells(prob_cell[k][win] > threshold)
        true_cells, _ = cells(label[k][win])
        panels = [
            (image[k][win], "gray", f"{ev['name']}: image"),
            (cell_colours(true_cells, seed=r + 100), None, "label's cells"),
            (prob_cell[k][win], "gray", "P(cell)"),
            (cell_colours(pred_cells, seed=r), None, f"predicted cells (> {threshold:.1f})"),
        ]
        yx = np.asarray(ev["yx"]).reshape(-1, 2) - (top, left)
        yx = yx[((yx >= 0) & (yx < size)).all(axis=1)]  # the event's pixels inside the crop
        for c, (ax, (arr, cmap, text)) in enumerate(zip(axes[r], panels, strict=True)):
            ax.imshow(arr, cmap=cmap, interpolation="nearest", **_range(arr, cmap))
            if c in (1, 3):
                ax.scatter(yx[:, 1], yx[:, 0], s=4, c="red", marker="s", lw=0)
            else:
                ring = dict(s=260, facecolors="none", edgecolors="red", lw=1.5)
                ax.scatter([int(ev["x"]) - left], [int(ev["y"]) - top], **ring)
            ax.set_xlim(-0.5, size - 0.5)
            ax.set_ylim(size - 0.5, -0.5)
            ax.set_title(text, fontsize=9)
            ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (2.7 * len(events))))
    return fig
