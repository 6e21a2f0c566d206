"""Where the warping error comes from, slice by slice: the splits and merges it counts (chapter 05).

The warping error (Jain et al. 2010; the challenge's, Table 1 of the paper) is the number of pixels whose
flip after topology-preserving warping would still split or merge a cell, over all pixels. This module
counts them per slice at one threshold, as pixels and as events (4-connected groups of such pixels: one
missing piece of membrane is one merge event), so a reader sees how many topological mistakes a number
means. Imports no torch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from .warping import MERGE, SPLIT, warp_label

__all__ = ["topology_errors_by_slice", "topology_events"]


def topology_errors_by_slice(prob_cell: np.ndarray, label: np.ndarray, threshold: float) -> pd.DataFrame:
    """Split and merge pixels and events of each slice at ``threshold`` (the warping error's classes).

    Args:
        prob_cell: probability of cell in [0, 1], (Z, H, W).
        label: 0 = membrane, >0 = cell, same shape.
        threshold: where the proposal is binarised (e.g. the stack's best warping threshold).

    Returns:
        One row per slice: ``slice, split_pixels, merge_pixels, splits, merges, warping_error`` (the slice's
        (split + merge pixels) / pixels; their mean over slices is the stack's warping error at ``threshold``).
    """
    classes = warp_label(prob_cell, label, threshold).classes
    rows = []
    for k, cls in enumerate(classes):
        split, merge = cls == SPLIT, cls == MERGE
        rows.append(
            {
                "slice": k,
                "split_pixels": int(split.sum()),
                "merge_pixels": int(merge.sum()),
                "splits": int(ndimage.label(split)[1]),
                "merges": int(ndimage.label(merge)[1]),
                "warping_error": float(split.sum() + merge.sum()) / cls.size,
            }
        )
    return pd.DataFrame(rows)


def _pairs(sizes: list[int]) -> int:
    """Pixel pairs across different parts: the sum over i < j of ``sizes[i] * sizes[j]``."""
    total = sum(sizes)
    return int((total * total - sum(s * s for s in sizes)) // 2)


def topology_events(prob_cell: np.ndarray, label: np.ndarray, threshold: float) -> pd.DataFrame:
    """Every merge and split of a stack at ``threshold``: which cells it joins or cuts, and what it costs.

    The warped label keeps the label's cells (warping preserves topology), so its 4-connected cells stand for
    the label's. A **merge** is one set of cells that the warping error's merge pixels join: the pixels of a
    slice whose 8-neighbourhood touches the same cells are one merge, however many gaps they form. A **split**
    is one cell that split pixels cut: it falls apart into the proposal's cells (``prob_cell > threshold``,
    4-connected) that overlap it. ``pixels`` is what the warping error counts for the event; ``pairs`` counts
    the pixel pairs it puts wrongly together (a merge: across the joined cells) or apart (a split: across
    the pieces), what a Rand-type score is charged for it.

    Args:
        prob_cell: probability of cell in [0, 1], (Z, H, W).
        label: 0 = membrane, >0 = cell, same shape.
        threshold: where the proposal is binarised.

    Returns:
        One row per event, most pixels first (ties: most pairs first): ``slice`` (index into the stack),
        ``kind`` (``merge`` or ``split``), ``pixels``, ``y``, ``x`` (the pixel of the event nearest its centre),
        ``parts`` (cells joined, or pieces of the cut cell), ``part_pixels`` (their sizes, largest first),
        ``pairs``, ``yx`` (the event's pixels, an (n, 2) array of rows and columns).
    """
    prob = np.asarray(prob_cell, dtype=np.float64)
    res = warp_label(prob_cell, label, threshold)
    four = ndimage.generate_binary_structure(2, 1)
    rows = []
    for k, cls in enumerate(res.classes):
        cells, _ = ndimage.label(res.warped[k] != 0, structure=four)
        cell_sizes = np.bincount(cells.ravel())
        pieces, _ = ndimage.label(prob[k] > threshold, structure=four)
        groups: dict[tuple[str, tuple[int, ...]], list[tuple[int, int]]] = {}
        for y, x in zip(*np.nonzero(cls == MERGE), strict=True):
            near = cells[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
            groups.setdefault(("merge", tuple(int(c) for c in np.unique(near[near > 0]))), []).append((y, x))
        for y, x in zip(*np.nonzero(cls == SPLIT), strict=True):
            groups.setdefault(("split", (int(cells[y, x]),)), []).append((y, x))
        for (kind, ids), where in groups.items():
            if kind == "merge":
                parts = sorted((int(cell_sizes[c]) for c in ids), reverse=True)
            else:
                overlap = np.bincount(pieces[cells == ids[0]])[1:] if ids[0] else np.zeros(0, np.int64)
                parts = sorted((int(v) for v in overlap if v), reverse=True)
            yx = np.array(where)
            centre = yx[np.argmin(((yx - yx.mean(axis=0)) ** 2).sum(axis=1))]
            rows.append(
                {
                    "slice": k,
                    "kind": kind,
                    "pixels": len(where),
                    "y": int(centre[0]),
                    "x": int(centre[1]),
                    "parts": len(parts),
                    "part_pixels": parts,
                    "pairs": _pairs(parts),
                    "yx": yx,
                }
            )
    columns = ["slice", "kind", "pixels", "y", "x", "parts", "part_pixels", "pairs", "yx"]
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["pixels", "pairs"], ascending=False, kind="stable").reset_index(drop=True)
