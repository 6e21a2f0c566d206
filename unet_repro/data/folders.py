"""A stack written as a folder of PNG slices: the layout ``unet_repro.data.user`` reads back.

The Keras U-Net's ``data/membrane/train`` layout: ``image/0.png``, ``image/1.png``, ... beside
``label/0.png``, ... (one 2D slice a file, numbered from 0, the same number for an image and its label).
Notebook 07 writes the ISBI 2012 training stack this way to show the path a lab's own stack takes
(``load_user_stack(root / "image", root / "label")``, ``unet-repro train --images ... --labels ...``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_png_folders"]


def write_png_folders(images: np.ndarray, labels: np.ndarray, root: str | Path) -> tuple[Path, Path]:
    """Write ``images`` to ``root/image/<i>.png`` and ``labels`` to ``root/label/<i>.png``, lossless.

    Args:
        images: N x H x W uint8 or uint16 grey values.
        labels: N x H x W uint8 or uint16 labels (e.g. 0 membrane, 255 cell), slice for slice.
        root: the folder to write into (created); PNG files already in its ``image``/``label`` folders are
            replaced, so that a second call leaves exactly the new slices.

    Returns:
        ``(root/image, root/label)``.

    Raises:
        ValueError: stacks that are not N x H x W of one shape, or not 8- or 16-bit integers.
    """
    from PIL import Image

    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or images.shape != labels.shape:
        raise ValueError(
            f"images {images.shape} and labels {labels.shape} must be N x H x W stacks of one shape; give both"
        )
    for name, arr in (("images", images), ("labels", labels)):
        if arr.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"{name} hold {arr.dtype}; PNG keeps 8- or 16-bit integers: convert them first")
    folders = (Path(root) / "image", Path(root) / "label")
    for folder, stack in zip(folders, (images, labels), strict=True):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        for i, s in enumerate(stack):
            Image.fromarray(np.ascontiguousarray(s)).save(folder / f"{i}.png")
    return folders
