"""Pixel error: ``1 - max_th F`` of the cell pixels (Table 1 of the paper, section 3.3: 0.0611 for U-Net).

The challenge's ``PixelError.getPixelErrorMaximalFScore(0.0, 1.0, 0.1)`` (Fiji "Trainable Weka
Segmentation", ``trainableSegmentation.metrics``): positive class = cell, a pixel is cell when
``float64(proposal) > th``, tp/fp/fn summed over all slices (micro average), then the F-score of
:func:`unet_repro.metrics._common._fscore` at each of the 11 thresholds.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._common import THRESHOLDS, FScoreCurve, _map_slices, validate_inputs


@njit(cache=True, nogil=True)
def _pixel_counts(prob: np.ndarray, lab: np.ndarray, ths: np.ndarray) -> np.ndarray:
    """Per threshold: cells called cell, cells total, membranes called cell, membranes total."""
    nt = ths.shape[0]
    out = np.zeros((nt, 4), np.int64)
    flat_p = prob.ravel()
    flat_l = lab.ravel()
    for i in range(flat_p.shape[0]):
        v = np.float64(flat_p[i])
        row = 0 if flat_l[i] != 0 else 2
        out[0, row + 1] += 1
        for t in range(nt):
            if v > ths[t]:
                out[t, row] += 1
            else:
                break  # thresholds increase
    for t in range(1, nt):
        out[t, 1] = out[0, 1]
        out[t, 3] = out[0, 3]
    return out


def _pixel_curve(prob: np.ndarray, lab: np.ndarray, threads: int | None = None) -> FScoreCurve:
    """The pixel-error curve of checked inputs (float32 and 0/1 uint8 stacks) on ``threads`` threads."""
    ths = np.array(THRESHOLDS)
    counts = sum(_map_slices(lambda k: _pixel_counts(prob[k], lab[k], ths), lab.shape[0], threads))
    tp = counts[:, 0].astype(np.float64)
    fn = (counts[:, 1] - counts[:, 0]).astype(np.float64)
    fp = counts[:, 2].astype(np.float64)
    return FScoreCurve.from_counts("pixel", ths, tp, fp, fn)


def pixel_error_curve(prob_cell: np.ndarray, label: np.ndarray) -> FScoreCurve:
    """Pixel error statistics at the 11 challenge thresholds (positive class = cell, micro average).

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell.

    Returns:
        :class:`FScoreCurve`; ``1 - best_fscore`` is the pixel error of Table 1 of the paper.
    """
    return _pixel_curve(*validate_inputs(prob_cell, label))


def pixel_error(prob_cell: np.ndarray, label: np.ndarray) -> float:
    """``1 - max_th F`` of the cell pixels (Table 1 of the paper: 0.0611 for U-Net).

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell.

    Returns:
        The pixel error.
    """
    return 1.0 - pixel_error_curve(prob_cell, label).best_fscore
