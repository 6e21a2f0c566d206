"""The cells of a label image, as eq. 2 of the paper needs them (section 3).

Eq. 2 measures ``d1``, the distance "to the border of the nearest cell", and ``d2``, the distance "to the
border of the second nearest cell", so a ground-truth label has to be read as a set of cells first.
:func:`label_cells` does this: for a binary label (two distinct values, 0 = membrane/background, >0 = cell)
the cells are the 4-connected components of ``label > 0``; for an instance image (0 = background, each other
value one cell) every non-zero value is one cell, connected or not. A label with more than two values that
does not look like an instance image (a grey-value image, a probability map, an interpolated binary label)
is refused with a message saying how to fix it. ``_as_label`` validates every label array that
:mod:`unet_repro.loss.weights` takes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

__all__ = ["label_cells"]

_FOUR = ndi.generate_binary_structure(2, 1)


# --------------------------------------------------------------------------------------------- checks
def _as_label(label: np.ndarray, ndims: Sequence[int], what: str = "label") -> np.ndarray:
    """Validate a label array: integer or bool dtype, wanted rank, non-empty, non-negative."""
    if not isinstance(label, np.ndarray):
        label = np.asarray(label)
    if label.ndim not in ndims:
        want = " or ".join(f"{n}D" for n in ndims)
        raise ValueError(
            f"{what} must be a {want} array, got shape {label.shape}; pass one slice (H, W)"
            + (" or a stack (Z, H, W)" if 3 in ndims else "")
        )
    if label.size == 0 or 0 in label.shape:
        raise ValueError(f"{what} is empty (shape {label.shape}); pass a label image with pixels")
    if label.dtype.kind == "f":
        if np.isnan(label).any():
            raise ValueError(f"{what} contains NaN; labels must be integers (0 = membrane/background, >0 = cell)")
        raise ValueError(
            f"{what} has float dtype {label.dtype}; labels must be integer or bool (0 = membrane/background, "
            ">0 = cell). Threshold a probability map first (e.g. (p > 0.5).astype(np.uint8)) or cast an "
            "integer-valued float array with .astype(np.int64)."
        )
    if label.dtype.kind not in "biu":
        raise ValueError(f"{what} has dtype {label.dtype}; labels must be integer or bool arrays")
    if label.dtype.kind == "i" and label.min() < 0:
        raise ValueError(f"{what} has negative values (min {label.min()}); use 0 for background and >0 for cells")
    return label


# ---------------------------------------------------------------------------------------------- cells
def _looks_like_instances(label: np.ndarray) -> tuple[bool, str]:
    """Plausibility test for an instance image (called when a label has more than two values).

    An instance image consists of regions; a grey-value image, a probability map or an interpolated
    binary label does not: there, most labelled pixels touch a pixel of another non-zero value, or some
    value occurs only as a thin seam between other values.
    """
    a = label
    fg = a > 0
    diff = np.zeros(a.shape, bool)
    for sl_a, sl_b in (
        ((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
        ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
    ):
        d = (a[sl_a] != a[sl_b]) & fg[sl_a] & fg[sl_b]
        diff[sl_a] |= d
        diff[sl_b] |= d
    n_fg = int(fg.sum())
    frac = diff.sum() / max(n_fg, 1)
    if frac > 0.5:
        return False, f"{frac:.0%} of its non-zero pixels touch a pixel of another non-zero value"
    values, counts = np.unique(a[fg], return_counts=True)
    seam_values, seam_n = np.unique(a[diff], return_counts=True)
    seam_counts = np.zeros(values.size, np.int64)
    seam_counts[np.searchsorted(values, seam_values)] = seam_n
    seams = values[(seam_counts == counts) & (counts > 1)]
    if seams.size > 0 and seams.size >= 0.25 * values.size:
        return False, (
            f"{seams.size} of its {values.size} non-zero values occur only as seams between other "
            "values (as in an interpolated or blurred binary label)"
        )
    return True, ""


def label_cells(label: np.ndarray, instances: bool | None = None) -> tuple[np.ndarray, int]:
    """The cells of a label image as consecutive integers 1..K (0 = background).

    Args:
        label: (H, W) integer/bool label: binary (0 = membrane, >0 = cell) or an instance image
            (0 = background, 1..K or any positive values = cells).
        instances: ``None`` decides from the values: two distinct values (or fewer) = binary, more =
            instance image (checked for plausibility); ``False`` forces binary, ``True`` instances.

    Returns:
        ``(cells, K)``: int32 (H, W) with cell ids 1..K, and K. Binary labels give the 4-connected
        components of ``label > 0``.

    Raises:
        ValueError: when a label with more than two values does not look like an instance image.
    """
    label = _as_label(label, (2,))
    if label.dtype.itemsize == 1:  # bool/uint8/int8 (non-negative): counting is faster than sorting
        values = np.flatnonzero(np.bincount(label.view(np.uint8).ravel(), minlength=256))
    else:
        values = np.unique(label)
    nonzero = values[values != 0]
    if instances is None:
        if nonzero.size > 1:
            ok, why = _looks_like_instances(label)
            if not ok:
                raise ValueError(
                    f"label has {nonzero.size + (values[0] == 0)} distinct values but is not an instance image: "
                    f"{why}. For a binary label threshold it (e.g. label > 127); if it really is an instance "
                    "image, pass instances=True."
                )
            instances = True
        else:
            instances = False
    if not instances:
        cells, k = ndi.label(label > 0, structure=_FOUR)
        return cells.astype(np.int32, copy=False), int(k)
    if nonzero.size == 0:
        return np.zeros(label.shape, np.int32), 0
    # consecutive ids 1..K in the order of the values
    lut_values = np.concatenate([[0], nonzero]) if values[0] == 0 else nonzero
    ids = np.searchsorted(lut_values, label)
    if values[0] != 0:
        ids = ids + 1
    return ids.astype(np.int32), int(nonzero.size)
