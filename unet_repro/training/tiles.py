"""Training tiles (section 3 and Fig. 2 of the paper): random tiles of the training slices, and the arrays
they are cut from.

Tiles: a random 572x572 input tile whose 388x388 output window lies inside the slice; the rest of the
input is extrapolated by mirroring (Fig. 2). The input scaling (grey value / 255,
``unet_repro.data.isbi2012.normalize_image``) is ours.

Weight maps: "We pre-compute the weight map for each ground truth segmentation" (section 3). They are
computed once on the whole 512x512 training slice (so that the distances to the nearest cells are not
truncated at a tile edge) and then cut and *deformed with the tile* by the same displacement field as the
image and label (``unet_repro.training.pipeline``). Recomputing them after every deformation would cost one distance
transform per cell per step, and the smooth deformation changes the distances only slightly.

Hand-written: a crop at a uniformly drawn position of mirror-padded arrays is a few lines, and the order
in which it draws random numbers is part of what makes a run reproducible.
"""

from __future__ import annotations

import numpy as np

from ..data import isbi2012 as data_mod
from ..data.isbi2012 import normalize_image
from ..model.sizing import Padding, mirror_canvas, output_size
from .config import TrainConfig

__all__ = ["TileSampler", "prepare_data"]


class TileSampler:
    """Random training tiles: a ``tile`` x ``tile`` input whose output window lies inside the slice.

    Fig. 2: the input context beyond the slice border is extrapolated by mirroring. Images, labels and
    weight maps are mirror-padded once by the context border; a tile is a crop of the padded arrays at a
    uniformly drawn output-window position.

    Args:
        images: N x H x W float32 (normalised) slices.
        labels: N x H x W integer classes (0 membrane, 1 cell).
        weights: N x H x W float32 weight maps (or None).
        tile: input tile side (a valid size for ``padding``).
        depth: network depth.
        padding: the network's padding; with ``"same"`` the tile is its own output window (no context).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        weights: np.ndarray | None,
        tile: int,
        depth: int = 4,
        padding: Padding = "valid",
    ) -> None:
        self.tile = tile
        self.out = output_size(tile, depth, padding)
        self.border = (tile - self.out) // 2
        n, h, w = images.shape
        b = self.border
        ext = (max(h, self.out), max(w, self.out))  # a slice smaller than the output window: mirrored to fill it
        self.images = mirror_canvas(images.astype(np.float32), ext, b)
        self.labels = mirror_canvas(labels, ext, b)
        self.weights = None if weights is None else mirror_canvas(weights.astype(np.float32), ext, b)
        self.shape = (n, h, w)

    def position(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """Draw (slice, top, left) of the output window (uniform over windows inside the slice)."""
        n, h, w = self.shape
        h, w = max(h, self.out), max(w, self.out)  # slices smaller than the window: the window at 0
        return int(rng.integers(n)), int(rng.integers(h - self.out + 1)), int(rng.integers(w - self.out + 1))

    def crop(self, i: int, y: int, x: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The input tile whose output window starts at (y, x) of slice i, with its mirrored context."""
        sl = (i, slice(y, y + self.tile), slice(x, x + self.tile))
        return self.images[sl], self.labels[sl], None if self.weights is None else self.weights[sl]

    def __call__(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return self.crop(*self.position(rng))


def prepare_data(cfg: TrainConfig, isbi: data_mod.IsbiData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training images (normalised), classes (0 membrane, 1 cell) and pre-computed weight maps.

    The weight maps (eq. 2) are computed once per training slice on the whole slice, with the class
    balance ``w_c`` counted over the whole training stack (notebook 02), and cached on disk under the
    user cache folder (the key covers labels and parameters, so a change never reuses a stale map).
    """
    from ..loss.weights import weight_maps

    train_idx, _ = cfg.slices(len(isbi.train_images))
    images = normalize_image(isbi.train_images[train_idx])
    labels = isbi.train_labels[train_idx]
    classes = (labels > 127).astype(np.int64)
    cells = getattr(isbi, "instance_labels", None)  # a user's instance labels: eq. 2 measured to the true cells
    weights = weight_maps(
        labels if cells is None else cells[train_idx],
        instances=None if cells is None else True,
        w0=cfg.w0,
        sigma=cfg.sigma,
        class_weights=None if cfg.class_balance else (1.0, 1.0),
        cache_dir=data_mod.cache_dir().parent / "weight_maps",
    )
    return images, classes, weights
