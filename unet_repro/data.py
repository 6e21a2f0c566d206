"""The ISBI 2012 EM segmentation data (section 3.3 of the paper, first data set).

30 training slices of 512x512 with membrane labels (0 = membrane, 255 = cell) and 30 test slices whose
labels were never published. Each file's decoded pixels are checked against a SHA-256 sum, so a
different or damaged file is an error, never a silently different data set.

Where the data is looked for, in order: the ``root`` argument, ``$UNET_REPRO_DATA``, the user cache
folder (``$XDG_CACHE_HOME/unet-repro/isbi2012`` or ``~/.cache/unet-repro/isbi2012``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "FILES",
    "ENV_VAR",
    "IsbiData",
    "DataError",
    "cache_dir",
    "resolve_root",
    "read_stack",
    "load_isbi2012",
    "split_train_heldout",
]

ENV_VAR = "UNET_REPRO_DATA"

#: file name -> SHA-256 of the decoded pixels (C order, 30 x 512 x 512 uint8), from PROVENANCE.md.
FILES: dict[str, str] = {
    "train-volume.tif": "200da3d452d726e6c9ca1ce04b869d4edb727320d23b516d01cce707dc8c4760",
    "train-labels.tif": "a7cb64000a1a7e542682927e19c91339f58f9f178e0bcce4e207371116f0ca36",
    "test-volume.tif": "1b58fa7ec1d0ff9d39a855622db3ff66a97863036339b0d04be51b2f5a99b0e9",
}
SHAPE = (30, 512, 512)


class DataError(RuntimeError):
    """The data is missing, damaged or not the ISBI 2012 stack; the message says what to do."""


@dataclass(frozen=True)
class IsbiData:
    """The three ISBI 2012 volumes, uint8, 30 x 512 x 512 each."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    root: Path


def cache_dir() -> Path:
    """The per-user cache folder where downloads go."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "unet-repro" / "isbi2012"


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$UNET_REPRO_DATA``, else :func:`cache_dir`."""
    if root:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return cache_dir()


def pixel_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's pixel bytes in C order (independent of the TIFF writer)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def read_stack(path: Path, expected_sha256: str | None = None) -> np.ndarray:
    """Read one multi-page TIFF and verify its pixels.

    Raises:
        DataError: the file cannot be decoded, has the wrong shape or dtype, or its pixel checksum
            differs from ``expected_sha256``.
    """
    import tifffile

    try:
        arr = tifffile.imread(path)
    except Exception as exc:  # tifffile raises several types for damaged files
        raise DataError(f"{path} is not a readable TIFF ({exc}); delete it and load again to re-download") from exc
    if arr.shape != SHAPE or arr.dtype != np.uint8:
        raise DataError(
            f"{path} holds {arr.dtype} {arr.shape}, expected uint8 {SHAPE}: not the ISBI 2012 stack; "
            "delete it and load again to re-download"
        )
    if expected_sha256 is not None:
        got = pixel_sha256(arr)
        if got != expected_sha256:
            raise DataError(
                f"{path}: pixel checksum {got} differs from the expected {expected_sha256}; "
                "the file is damaged or a different data set. Delete it and load again to re-download."
            )
    return arr


def load_isbi2012(root: str | os.PathLike | None = None) -> IsbiData:
    """Load (and verify) the ISBI 2012 training stack, its labels and the test stack.

    Args:
        root: folder holding ``train-volume.tif``, ``train-labels.tif`` and ``test-volume.tif``;
            ``None`` resolves as described in the module docstring.

    Returns:
        :class:`IsbiData` with uint8 arrays of shape 30 x 512 x 512 (labels: 0 membrane, 255 cell).
    """
    folder = resolve_root(root)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"ISBI 2012 files missing in {folder}: {', '.join(missing)}. Put them there, point "
            f"${ENV_VAR} at a folder holding them, or pass root=..."
        )
    arrays = {name: read_stack(folder / name, sha) for name, sha in FILES.items()}
    return IsbiData(
        train_images=arrays["train-volume.tif"],
        train_labels=arrays["train-labels.tif"],
        test_images=arrays["test-volume.tif"],
        root=folder,
    )


def split_train_heldout(
    n_slices: int = 30, heldout: tuple[int, int] = (25, 30)
) -> tuple[list[int], list[int]]:
    """The evaluation protocol: slices ``heldout[0]..heldout[1]-1`` held out, the rest for training.

    The challenge never published test labels, so held-out numbers come from the training stack;
    a contiguous block is held out because neighbouring sections are nearly identical.
    """
    lo, hi = heldout
    if not (0 <= lo < hi <= n_slices):
        raise ValueError(f"held-out block {heldout} must lie within 0..{n_slices}")
    held = list(range(lo, hi))
    return [i for i in range(n_slices) if i not in held], held
