"""Training on your own 2D image/label stack: the paper's method (section 3) on any data, not just ISBI 2012.

The paper trains on "the input images and their corresponding segmentation maps" (section 3); this module
turns a user's stack into the form ``unet_repro.training.loop.train`` takes for ISBI 2012 (:class:`IsbiData`), so
all that follows (tiles with a mirrored border, Fig. 2; weight maps, eq. 2; held-out scoring) is shared.

- **Inputs.** Images and labels may each be a multi-page TIFF, a folder of TIFF/PNG slices (sorted by
  name, numbers by value: ``2.png`` before ``10.png``; the ``image``/``label`` folders of the Keras U-Net
  ``data/membrane/train`` layout) or one 2D image. A single image pair is cut into 6 horizontal strips, so
  that it too has train, validation and test blocks.
- **Grey values.** 8-bit images are scaled by /255 as for ISBI 2012. 16-bit, 32-bit and float images are
  accepted: they are mapped linearly from the stack's range ``lo..hi`` to 0..255 (8 bits, the input depth
  the network is trained on here), then /255. ``lo, hi`` are recorded in ``model.pt`` and ``metrics.json``
  (``data.input_range``) and ``predict`` maps its input the same way (``inference.command.scale_for_model``).
  RGB(A) images are accepted only when the colour channels are equal (a grey image saved as colour): the
  network has one input channel (Fig. 1) and turning colour into grey is a choice this module will not make
  silently.
- **Labels.** ``binary``: two values; ``membrane_value`` (default 0, the ISBI convention) is membrane or
  background, the other value is cell. ``instance``: 0 = border/background, each other integer one cell;
  eq. 2's ``d1``/``d2`` are then measured to these true cells (``unet_repro.loss.weights``), not to connected
  components of a binary mask.
- **Split.** Contiguous blocks in the proportions of ``unet_repro.data.protocol`` (20/5/5 of 30: train,
  validation, test); as for ISBI's final models, a run trains on train + validation and is scored on test.

In Python: ``stack = load_user_stack("membrane/train/image", "membrane/train/label")``, then
``train(stack.configure(profile_config("ci")), "runs/own", isbi=stack)``; ``unet-repro train --images ...
--labels ...`` does the same and also writes the test block as ``heldout_images.tif``/``heldout_labels.tif``.

Bad input raises :class:`UserDataError` (a :class:`unet_repro.data.isbi2012.DataError`), one line ``problem; fix``,
which the command line prints with exit status 2 before any run folder exists.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .isbi2012 import DataError, IsbiData

#: a training configuration (``unet_repro.training.config.TrainConfig``; data imports no training code)
Config = TypeVar("Config")

__all__ = ["LABEL_KINDS", "SUFFIXES", "UserDataError", "UserStack", "load_user_stack", "split_blocks", "to_uint8"]

LABEL_KINDS = ("binary", "instance")
SUFFIXES = (".tif", ".tiff", ".png")
#: strips a single image is cut into (train 4, validation 1, test 1 under :func:`split_blocks`)
STRIPS = 6
_INPUTS = "a multi-page TIFF, a folder of TIFF/PNG slices, or one 2D image"


class UserDataError(DataError):
    """A user's image or label stack that cannot be trained on; the message says what to change."""


@dataclass(frozen=True)
class UserStack(IsbiData):
    """A user's stack in the form training takes (``train_images`` uint8, ``train_labels`` 0 membrane / 255 cell).

    Args:
        instance_labels: N x H x W int32 cells (0 = border/background) for ``instance`` labels, else None.
        heldout_source: the test block's images with their original grey values (what ``predict`` is given).
        record: ``{"data": {...}}``: sources, label kind, grey-value range and split, stored with the run.
    """

    instance_labels: np.ndarray | None = None
    heldout_source: np.ndarray | None = None
    record: dict[str, Any] = field(default_factory=dict)

    def configure(self, cfg: Config) -> Config:
        """``cfg`` with this stack's test block as the held-out block (training on all slices before it)."""
        test = self.record["data"]["split"]["test"]
        return dataclasses.replace(cfg, heldout=(test[0], test[-1] + 1), train_slices=None)

    def write_heldout(self, out: str | Path) -> None:
        """Write ``heldout_images.tif`` (original grey values) and ``heldout_labels.tif`` (0/255) to ``out``,
        the inputs of ``unet-repro predict`` and ``unet-repro evaluate`` for the test block."""
        import tifffile

        test = self.record["data"]["split"]["test"]
        tifffile.imwrite(Path(out) / "heldout_images.tif", self.heldout_source, photometric="minisblack")
        tifffile.imwrite(Path(out) / "heldout_labels.tif", self.train_labels[test], photometric="minisblack")


# ------------------------------------------------------------------------------------------- reading
def _natural(path: Path) -> list[Any]:
    parts = re.split(r"(\d+)", path.name.lower())
    return [int(p) if i % 2 else p for i, p in enumerate(parts)]


def _files(path: Path, option: str) -> list[Path]:
    """The image files ``path`` names: itself, or a folder's TIFF/PNG files in natural name order."""
    if not path.exists():
        raise UserDataError(f"{option} {path} does not exist; give {_INPUTS}")
    if not path.is_dir():
        return [path]
    files = [p for p in path.iterdir() if not p.name.startswith(".") and p.is_file()]
    other = [p.name for p in files if p.suffix.lower() not in SUFFIXES]
    if other:
        raise UserDataError(
            f"{option} folder {path} holds {other[0]!r}, not a TIFF or PNG image; move it out of the folder"
        )
    if not files:
        raise UserDataError(f"{option} folder {path} holds no TIFF or PNG image; give a folder of slices")
    return sorted(files, key=_natural)


def _grey(arr: np.ndarray, colour: bool, path: Path, option: str) -> np.ndarray:
    """Drop the colour axis (last) of ``arr`` when its R, G, B channels are equal (alpha ignored); refuse colour."""
    if not colour:
        return arr
    rgb = arr[..., :3] if arr.shape[-1] >= 3 else arr[..., :1]  # RGB(A), or grey + alpha
    if not (rgb == rgb[..., :1]).all():
        raise UserDataError(
            f"{option} {path} is a colour image whose channels differ; convert it to grey values "
            "(the network has one input channel)"
        )
    return rgb[..., 0]


def _read(path: Path, option: str) -> np.ndarray:
    """One file as N x H x W (a PNG or 2D TIFF gives N = 1)."""
    try:
        if path.suffix.lower() == ".png":
            from PIL import Image

            with Image.open(path) as img:  # palette PNG: labels are its indices, images its colours
                arr = np.array(img.convert("RGB") if img.mode == "P" and option == "--images" else img)
            arr = _grey(arr, arr.ndim == 3, path, option)
        else:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                arr, axes = series.asarray(), series.axes
            if "S" in axes:  # samples per pixel: RGB(A)
                arr = _grey(np.moveaxis(arr, axes.index("S"), -1), True, path, option)
    except UserDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL and tifffile raise many types for a bad file
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise UserDataError(f"{option} {path} is not a readable TIFF or PNG ({why}); give an image file") from None
    arr = np.squeeze(arr)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or min(arr.shape[1:]) < 2:
        raise UserDataError(f"{option} {path} has shape {arr.shape}; give 2D grey-value slices (H x W, at least 2x2)")
    return arr


def read_stack(path: str | Path, option: str = "--images") -> np.ndarray:
    """Read a multi-page TIFF, a folder of TIFF/PNG slices or one 2D image as an N x H x W array.

    Args:
        path: the file or folder.
        option: how messages name it (``--images`` or ``--labels``).

    Returns:
        The slices, in the file's dtype.

    Raises:
        UserDataError: missing path, empty folder, non-image or unreadable file, colour, slices of different sizes.
    """
    files = _files(Path(path), option)
    stacks = [_read(f, option) for f in files]
    if len(files) > 1:
        for f, s in zip(files, stacks, strict=True):
            if s.shape[0] != 1:
                raise UserDataError(f"{option} {f} holds {s.shape[0]} slices; a folder must hold one 2D slice per file")
            if s.shape[1:] != stacks[0].shape[1:]:
                raise UserDataError(
                    f"{option} {f} is {s.shape[1]}x{s.shape[2]} but {files[0].name} is "
                    f"{stacks[0].shape[1]}x{stacks[0].shape[2]}; give slices of one size"
                )
        if len({s.dtype for s in stacks}) > 1:
            raise UserDataError(f"{option} folder {path} mixes pixel types; save every slice with the same bit depth")
    return np.concatenate(stacks)


# ----------------------------------------------------------------------------------------- grey values
def to_uint8(images: np.ndarray, input_range: tuple[float, float]) -> np.ndarray:
    """Grey values as 8 bits: ``input_range`` ``(lo, hi)`` mapped linearly to 0..255, values outside clipped.

    Args:
        images: any integer or float array.
        input_range: ``(lo, hi)``; uint8 images with ``(0, 255)`` are returned unchanged (ISBI's scaling).

    Returns:
        uint8 array.
    """
    if images.dtype == np.uint8 and tuple(float(v) for v in input_range) == (0.0, 255.0):
        return images
    lo, hi = (float(v) for v in input_range)
    scaled = (np.asarray(images, np.float64) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _range(images: np.ndarray, option: str) -> tuple[float, float]:
    """The grey-value range that :func:`to_uint8` maps to 0..255: (0, 255) for uint8, else min..max."""
    if images.dtype.kind not in "biuf":
        raise UserDataError(f"{option} hold {images.dtype} pixels; give integer or float grey values")
    if images.dtype == np.uint8:
        return 0.0, 255.0
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        raise UserDataError(f"{option} hold NaN or infinite values; replace them with finite grey values")
    lo, hi = float(images.min()), float(images.max())
    if lo == hi:
        raise UserDataError(f"{option} hold one grey value ({lo:g}) only; give images with content")
    return lo, hi


# ------------------------------------------------------------------------------------------------ labels
def _labels(labels: np.ndarray, kind: str, membrane_value: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(0/255 uint8 membrane/cell labels, int32 instances or None), checked."""
    if labels.dtype.kind not in "biu":
        raise UserDataError(
            f"--labels hold {labels.dtype} values; labels must be integers (save them as 8- or 16-bit images)"
        )
    values = np.unique(labels)
    if values.size < 2:
        raise UserDataError(
            f"--labels hold one value ({values[0]}) only; give labels that mark both membrane/background and cells"
        )
    if kind == "instance":
        if values[0] != 0:
            raise UserDataError(
                f"--labels (instance) have no 0 pixel (smallest value {values[0]}); mark borders/background 0 "
                "and each cell with its own integer > 0"
            )
        cells = labels.astype(np.int32)
        return np.where(cells > 0, 255, 0).astype(np.uint8), cells
    if values.size > 2:
        raise UserDataError(
            f"--labels hold {values.size} values ({', '.join(map(str, values[:4]))}, ...) but binary labels were "
            "asked for; threshold them to two values or pass --labels-kind instance"
        )
    if membrane_value not in values:
        raise UserDataError(
            f"--labels hold the values {values[0]} and {values[1]}, not --membrane-value {membrane_value}; "
            f"pass --membrane-value {values[0]} or {values[1]} (the membrane/background value)"
        )
    return np.where(labels == membrane_value, 0, 255).astype(np.uint8), None


# -------------------------------------------------------------------------------------------------- split
def split_blocks(n: int, split: str = "blocks") -> dict[str, list[int]]:
    """Train, validation and test slices: contiguous blocks in this order (``unet_repro.data.protocol``).

    Args:
        n: slices in the stack.
        split: ``blocks`` (the protocol's 20/5/5 of 30: test and validation one sixth each, rounded, test at
            least one slice) or ``TRAIN,VALIDATION,TEST`` slice counts summing to ``n`` (validation may be 0).

    Returns:
        ``{"rule", "train", "validation", "test", "trained_on"}``; a run trains on train + validation.
    """
    if split == "blocks":
        test = max(1, round(n / 6))
        counts = (n - test - round(n / 6), round(n / 6), test)
    else:
        try:
            counts = tuple(int(c) for c in split.split(","))
        except ValueError:
            counts = ()
        if len(counts) != 3 or sum(counts) != n or min(counts) < 0:
            raise UserDataError(
                f"--split {split!r} is not 'blocks' or three slice counts TRAIN,VALIDATION,TEST adding up to "
                f"the {n} slices; e.g. --split {max(n - 2, 1)},{min(1, n - 2) if n > 2 else 0},1"
            )
    if counts[0] < 1 or counts[2] < 1:
        raise UserDataError(
            f"{n} slice(s) cannot be split into a train and a test block (--split {split}); give more slices "
            "or three counts TRAIN,VALIDATION,TEST with TRAIN and TEST >= 1"
        )
    a, b = counts[0], counts[0] + counts[1]
    if counts[1]:  # the protocol's own checks (blocks inside the stack, no overlap)
        from .protocol import Protocol

        Protocol(n_slices=n, validation=(a, b), test=(b, n))
    return {
        "rule": split,
        "train": list(range(a)),
        "validation": list(range(a, b)),
        "test": list(range(b, n)),
        "trained_on": list(range(b)),
    }


def _strips(stack: np.ndarray) -> np.ndarray:
    """One H x W image as :data:`STRIPS` horizontal strips of H // STRIPS rows (the remainder dropped)."""
    h = stack.shape[1] // STRIPS
    if h < 2:
        raise UserDataError(
            f"one image of {stack.shape[1]} rows is too small to cut into {STRIPS} strips; give more slices"
        )
    return stack[0, : h * STRIPS].reshape(STRIPS, h, stack.shape[2])


# -------------------------------------------------------------------------------------------------- load
def load_user_stack(
    images: str | Path, labels: str | Path, labels_kind: str = "binary", membrane_value: int = 0, split: str = "blocks"
) -> UserStack:
    """Load and check a user's image and label stacks for ``unet_repro.training.loop.train(cfg, out, isbi=...)``.

    16-bit, 32-bit and float images are accepted and mapped from their range to 8 bits (module docstring).

    Args:
        images: multi-page TIFF, folder of TIFF/PNG slices, or one 2D image.
        labels: the same for the labels, slice for slice.
        labels_kind: ``binary`` (two values) or ``instance`` (0 = border/background, each cell its integer).
        membrane_value: the membrane/background value of binary labels (0, as in ISBI 2012).
        split: see :func:`split_blocks`.

    Returns:
        :class:`UserStack`; pass ``stack.configure(cfg)`` as the configuration.

    Raises:
        UserDataError: one line naming the problem and the fix.
    """
    if labels_kind not in LABEL_KINDS:
        raise UserDataError(f"labels_kind {labels_kind!r} is unknown; use one of {', '.join(LABEL_KINDS)}")
    img, lab = read_stack(images, "--images"), read_stack(labels, "--labels")
    if len(img) != len(lab):
        raise UserDataError(
            f"--images hold {len(img)} slice(s) but --labels {len(lab)}; give one label slice per image slice"
        )
    if img.shape != lab.shape:
        raise UserDataError(
            f"--images slices are {img.shape[1]}x{img.shape[2]} but --labels {lab.shape[1]}x{lab.shape[2]}; "
            "give labels of the images' size"
        )
    lo, hi = _range(img, "--images")
    classes, cells = _labels(lab, labels_kind, membrane_value)
    strips = len(img) == 1
    if strips:
        img, classes = _strips(img), _strips(classes)
        cells = None if cells is None else _strips(cells)
    blocks = split_blocks(len(img), split)
    data = {
        "images": str(images),
        "labels": str(labels),
        "slices": len(img),
        "slice_shape": list(img.shape[1:]),
        "single_image_strips": STRIPS if strips else 0,
        "labels_kind": labels_kind,
        "membrane_value": membrane_value if labels_kind == "binary" else 0,
        "input_dtype": str(img.dtype),
        "input_range": [lo, hi],
        "input_scaling": "grey value / 255" if img.dtype == np.uint8 else f"(x - {lo:g}) / ({hi:g} - {lo:g}), 8 bits",
        "split": blocks,
    }
    train = to_uint8(img, (lo, hi))
    return UserStack(
        train_images=train,
        train_labels=classes,
        test_images=train[:0],
        root=Path(images),
        instance_labels=cells,
        heldout_source=img[blocks["test"]],
        record={"data": data},
    )


# ------------------------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` options for a user's stack."""
    g = parser.add_argument_group("your own data (instead of ISBI 2012)")
    g.add_argument("--images", help=f"image stack: {_INPUTS}")
    g.add_argument("--labels", help="label stack of the same slices (binary or instance labels)")
    g.add_argument("--labels-kind", choices=LABEL_KINDS, default="binary", help="binary (default) or instance")
    g.add_argument("--membrane-value", type=int, default=0, help="membrane/background value of binary labels (0)")
    g.add_argument("--split", default="blocks", help="blocks (default) or slice counts TRAIN,VALIDATION,TEST")


def from_args(args: argparse.Namespace) -> UserStack | None:
    """The user's stack named by ``--images``/``--labels`` (None without them: ISBI 2012).

    Sets ``args.out`` to ``build/runs/own-<profile>`` when it is empty (the ISBI runs' folders stay theirs).
    """
    if not (args.images or args.labels):
        return None
    if not (args.images and args.labels):
        given, missing = ("--images", "--labels") if args.images else ("--labels", "--images")
        raise UserDataError(f"{given} was given without {missing}; give both (images and their labels)")
    stack = load_user_stack(args.images, args.labels, args.labels_kind, args.membrane_value, args.split)
    if not args.out:
        from ..results import repo_root

        args.out = str((repo_root() or Path.cwd()) / "build" / "runs" / f"own-{args.profile}")
    return stack
