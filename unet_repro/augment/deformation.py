"""What the elastic deformation of section 3.1 does to ISBI training tiles: the measurements of notebook 03.

Section 3.1: "We generate smooth deformations using random displacement vectors on a coarse 3 by 3 grid. The
displacements are sampled from a Gaussian distribution with 10 pixels standard deviation. Per-pixel
displacements are then computed using bicubic interpolation." The paper gives the setting, not what it does to
a tile. :func:`deformation_statistics` measures one setting (grid, sigma) over many draws: the field itself
(its spread at the control points, its size per pixel, its smoothness, its smallest local area change) and its
effect on the labels of ISBI training tiles (the fraction of label pixels that change; cells that merge, split
or vanish). :func:`rigid_shift_change` tells how to read that fraction: how many label pixels a rigid shift by
a given distance changes. :func:`table_kinds` gives the tolerances the table is compared under.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.isbi2012 import normalize_image
from ..model.sizing import mirror_canvas
from ..results import Kind, Stochastic
from .elastic import control_positions, elastic_deform, elastic_displacement, jacobian_determinant, label_topology

__all__ = [
    "TILE",
    "OUT",
    "training_tile",
    "DeformationStats",
    "deformation_statistics",
    "rigid_shift_change",
    "table_kinds",
]

#: The paper's input tile and its output window (Fig. 1).
TILE, OUT = 572, 388


def training_tile(image: np.ndarray, label: np.ndarray, tile: int = TILE) -> tuple[np.ndarray, np.ndarray]:
    """A slice as a ``tile`` x ``tile`` training input, extended by mirroring as in Fig. 2.

    Args:
        image: (H, W) grey values 0..255 (e.g. a 512x512 ISBI slice).
        label: (H, W) label of that slice.
        tile: the tile's side; ``tile - H`` and ``tile - W`` must be even and >= 0.

    Returns:
        ``(image, label)``: float32 in [0, 1] (:func:`unet_repro.data.isbi2012.normalize_image`) and the label, each
        (tile, tile), the slice in the middle and its mirror image around it.
    """
    h, w = np.shape(image)
    if np.shape(label) != (h, w) or h != w or tile < h or (tile - h) % 2:
        raise ValueError(
            f"image {np.shape(image)} and label {np.shape(label)} must be one square shape whose side differs "
            f"from tile={tile} by an even number >= 0 (e.g. 512x512 slices and tile 572)"
        )
    pad = (tile - h) // 2
    return mirror_canvas(normalize_image(image), (h, w), pad), mirror_canvas(np.asarray(label), (h, w), pad)


@dataclass(frozen=True)
class DeformationStats:
    """One elastic setting measured (section 3.1): a row of notebook 03's table and what it came from."""

    row: dict[str, object]  # the row of results/03_augmentation.csv, timings aside
    per_tile: pd.DataFrame  # per ISBI tile: before, after, merged, split, vanished (label_topology), changed
    step_se: float  # standard error of max_step_px (a median over the draws)


def deformation_statistics(
    images: np.ndarray,
    labels: np.ndarray,
    name: str,
    grid: int = 3,
    sigma: float = 10.0,
    n_fields: int = 400,
    n_tiles: int = 24,
    seed: int = 2015,
    margin: int = 40,
    tile: int = TILE,
    out: int = OUT,
) -> DeformationStats:
    """Measure one elastic setting (section 3.1) over ``n_fields`` random fields and ``n_tiles`` deformed tiles.

    Draws, in this order from ``np.random.default_rng(seed)``: the fields (:func:`elastic_displacement` on a
    ``tile`` x ``tile`` tile), then per tile a random slice and its deformation (:func:`elastic_deform`). One
    seed for every setting makes them a controlled comparison (sigma 20 fields are the sigma 10 ones doubled).

    Args:
        images, labels: (N, H, W) slices and their labels (0 membrane, > 0 cell); tiles come from all N.
        name: the row's ``config``.
        grid, sigma: the setting (the paper's: 3, 10 px).
        n_fields, n_tiles: how many fields and tiles are measured.
        seed: the generator's seed.
        margin: cells closer than this to the output window's edge do not count as split or vanished (they can
            leave the window by displacement; 40 px = 4 sigma of the paper's setting).
        tile, out: the input tile and its centred output window, where the labels are compared.

    Returns:
        :class:`DeformationStats`: ``control_std_px`` and ``control_mean_px`` (the field at the control points,
        read by linear interpolation where they fall between pixels), ``pixel_rms_px`` (root-mean-square
        displacement per axis over all pixels), ``max_step_px`` (largest change of the displacement between
        neighbouring pixels, median over draws), ``min_jacobian_det`` (smallest local area change over all
        draws; <= 0 is a fold), ``label_changed_frac`` (label pixels of the output window that change) and,
        per tile, the cells (4-connected regions of label > 0) before and after and how many merge, split or
        vanish (:func:`label_topology`).
    """
    from scipy import ndimage
    from skimage.measure import label as connected_components

    rng = np.random.default_rng(seed)
    pr, pc = control_positions((tile, tile), grid)
    rows, cols = (m.ravel() for m in np.meshgrid(pr, pc, indexing="ij"))
    at_controls, pixel_sq, steps, min_det = [], 0.0, [], np.inf
    for _ in range(n_fields):
        f = elastic_displacement((tile, tile), rng, grid=grid, sigma=sigma)
        at_controls.append([ndimage.map_coordinates(f[a], [rows, cols], order=1) for a in range(2)])
        pixel_sq += float((f**2).mean())
        steps.append(max(np.abs(np.diff(f, axis=1)).max(), np.abs(np.diff(f, axis=2)).max()))
        min_det = min(min_det, float(jacobian_determinant(f).min()))
    at_controls = np.asarray(at_controls)
    crop = (tile - out) // 2
    win = (slice(crop, crop + out), slice(crop, crop + out))
    topo, changed = [], []
    for _ in range(n_tiles):
        k = int(rng.integers(0, images.shape[0]))
        img, lab = training_tile(images[k], labels[k], tile)
        ids = connected_components(lab > 0, connectivity=1).astype(np.int32)  # cells of the whole tile
        _, ids_d = elastic_deform(img, ids, rng, grid=grid, sigma=sigma)
        changed.append(np.mean((ids_d[win] > 0) != (ids[win] > 0)))
        topo.append(label_topology(ids[win], ids_d[win], margin=margin))
    per_tile = pd.DataFrame(topo)
    per_tile["changed"] = changed
    row = {
        "config": name,
        "grid": grid,
        "sigma_px": sigma,
        "n_fields": n_fields,
        "n_tiles": n_tiles,
        "control_std_px": float(at_controls.std()),
        "control_mean_px": float(at_controls.mean()),
        "pixel_rms_px": math.sqrt(pixel_sq / n_fields),
        "max_step_px": float(np.median(steps)),
        "min_jacobian_det": min_det,
        "label_changed_frac": float(np.mean(changed)),
        "cells_before": float(per_tile["before"].mean()),
        "cells_after": float(per_tile["after"].mean()),
        "merged_per_tile": float(per_tile["merged"].mean()),
        "split_per_tile": float(per_tile["split"].mean()),
        "vanished_per_tile": float(per_tile["vanished"].mean()),
    }
    return DeformationStats(row, per_tile, 1.25 * float(np.std(steps)) / math.sqrt(n_fields))


def rigid_shift_change(
    labels: np.ndarray, shifts: Sequence[float], window: int = OUT, directions: int = 8
) -> np.ndarray:
    """How many label pixels a rigid shift changes: the yardstick for ``label_changed_frac``.

    For each distance ``s``, every slice's label is shifted by ``s`` pixels in ``directions`` directions evenly
    spread over the circle (rounded to whole pixels), and the fraction of pixels of the centred ``window`` whose
    class (label > 0 or not) differs is averaged over slices and directions.

    Args:
        labels: (N, H, W) labels (0 membrane, > 0 cell).
        shifts: distances in pixels, each at most ``(min(H, W) - window) / 2``.
        window: side of the centred window compared (the 388 output window of a 572 tile covers the central
            388x388 pixels of a 512x512 slice).
        directions: directions per distance.

    Returns:
        float64 (len(shifts),): the fraction changed at each distance.
    """
    cells = np.asarray(labels) > 0
    n, h, w = cells.shape
    r0, c0 = (h - window) // 2, (w - window) // 2
    if min(r0, c0) < 0 or max(shifts, default=0) > min(r0, c0):
        raise ValueError(f"shifts must be <= {min(r0, c0)} px for a {window} window of {h}x{w} slices")
    ref = cells[:, r0 : r0 + window, c0 : c0 + window]
    angles = np.arange(directions) * 2 * np.pi / directions
    out = []
    for s in shifts:
        fractions = []
        for a in angles:
            dy, dx = round(s * math.sin(a)), round(s * math.cos(a))
            moved = cells[:, r0 + dy : r0 + dy + window, c0 + dx : c0 + dx + window]
            fractions.append(np.mean(moved != ref))
        out.append(float(np.mean(fractions)))
    return np.asarray(out)


def table_kinds(stats: Sequence[DeformationStats]) -> dict[str, Kind]:
    """The comparison rule of every column of notebook 03's table (:func:`unet_repro.results.write_table`).

    Every draw is seeded, so the table repeats exactly on one machine type; each tolerance allows about 4
    standard errors of its statistic at the sizes measured, so that a different random stream (another NumPy,
    say) stays within it. Standard errors of per-tile means come from the spread between tiles, the largest
    over the settings; timings are measured, not compared.
    """
    n_fields, n_tiles = (int(stats[0].row[k]) for k in ("n_fields", "n_tiles"))
    sigma = max(float(s.row["sigma_px"]) for s in stats)
    points = min(int(s.row["grid"]) ** 2 for s in stats)
    n_ctrl = 2 * points * n_fields
    se_std = sigma / math.sqrt(2 * n_ctrl)  # SE of a std estimate of n_ctrl normals, largest sigma

    def tile_tol(column: str, floor: float = 1e-3) -> float:
        se = max(float(s.per_tile[column].std(ddof=1)) / math.sqrt(n_tiles) for s in stats)
        return max(float(f"{max(4 * se, 1e-3):.2g}"), floor)

    count = f"4 SE (at least 0.25) of a mean count over {n_tiles} tiles"
    return {
        "control_std_px": Stochastic(
            round(4 * se_std, 2),
            f"4 SE of the std of >= {n_ctrl} normals (2 axes x >= {points} points x n_fields), sigma <= {sigma:g} px",
        ),
        "control_mean_px": Stochastic(
            round(4 * sigma / math.sqrt(n_ctrl), 2), f"4 SE of the mean of >= {n_ctrl} normals, sigma <= {sigma:g} px"
        ),
        "pixel_rms_px": Stochastic(round(4 * se_std * 3, 2), "pixels are correlated: 3x the control-std tolerance"),
        "max_step_px": Stochastic(
            float(f"{4 * max(s.step_se for s in stats):.2g}"), f"4 SE of a median over {n_fields} draws"
        ),
        "min_jacobian_det": Stochastic(0.1, f"the minimum over {n_fields} draws: an extreme value, seed-dependent"),
        "label_changed_frac": Stochastic(tile_tol("changed"), f"4 SE of a mean over {n_tiles} tiles"),
        "cells_before": Stochastic(tile_tol("before"), f"4 SE of a mean over {n_tiles} random slices"),
        "cells_after": Stochastic(tile_tol("after"), f"4 SE of a mean over {n_tiles} random slices"),
        "merged_per_tile": Stochastic(tile_tol("merged", 0.25), count),
        "split_per_tile": Stochastic(tile_tol("split", 0.25), count),
        "vanished_per_tile": Stochastic(tile_tol("vanished", 0.25), count),
        "ms_unet_repro": "measured",
        "ms_elasticdeform": "measured",
        "speedup": "measured",
    }
