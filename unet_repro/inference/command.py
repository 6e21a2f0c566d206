"""Command line: overlap-tile prediction of a TIFF image or stack in the ISBI 2012 submission format.

``python -m unet_repro.predict --model M --input X.tif --output P.tif [--tta d4] [--tile 572]``

The output is what the ISBI 2012 challenge asked for: a 32-bit float TIFF of the same number of slices and
size as the input, values 0..1, 1 = cell (the probability of the cell class), 0 = membrane. The logic
lives in :mod:`unet_repro.inference.tiling` (Fig. 2 of the paper); this module only reads and writes files.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..options import TTA

__all__ = ["predict_file", "scale_for_model", "main"]


def scale_for_model(image: np.ndarray, saved: dict[str, Any]) -> np.ndarray:
    """``image`` mapped to uint8 as the model's training images were (``data.input_range`` in ``model.pt``).

    Models trained on ISBI 2012 record no range: ``image`` is returned as it is (8-bit, scaled by /255).

    Args:
        image: the input as read (any integer or float type).
        saved: the model file's dict (``model.files.read_model_dict``), read once by the caller.

    Returns:
        ``image`` as uint8 for a model trained on a user's 16-bit or float stack, else ``image``.
    """
    from ..data.user import to_uint8

    rng = saved.get("data", {}).get("input_range")
    return image if rng is None else to_uint8(np.asarray(image), (rng[0], rng[1]))


def predict_file(
    model_path: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    tile: int = 572,
    tta: TTA = "none",
    device: str = "auto",
    batch_size: int | None = None,
    amp: bool | str | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Predict every slice of ``input_path`` with the model at ``model_path`` and write ``output_path``.

    Args:
        model_path: a ``model.pt`` written by :mod:`unet_repro.training.loop`.
        input_path: 8-bit (or any grey-value) TIFF, one image (H x W) or a stack (N x H x W).
        output_path: where the float32 TIFF goes (N x H x W, or H x W for a single image).
        tile: input tile side (a valid size for the model's depth; 572 in the paper).
        tta: ``none``, ``rot4`` or ``d4`` (see :mod:`unet_repro.inference.tiling`).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        batch_size: tiles per forward pass (None: 1 on a CPU, several on a GPU; ``unet_repro.inference.tiling``).
        amp: mixed precision (``off``, ``bf16``, ``fp16``, ``auto``; see ``unet_repro.device.resolve_amp``).
            None: as the model was trained (its ``train_config``), which is fp32 on a CPU for ``auto``.
        threads: CPU threads (None: torch's default).
        progress: show a progress bar.

    Returns:
        The probabilities written (float32, 0..1, 1 = cell).
    """
    import tifffile
    import torch

    from ..device import resolve_device
    from ..model.files import model_from_dict, read_model_dict
    from .tiling import predict_stack

    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise FileNotFoundError(f"input {input_path} does not exist")
    image = tifffile.imread(input_path)
    if image.ndim == 3 and image.shape[-1] in (3, 4) and image.shape[0] > 4:
        raise ValueError(f"{input_path} looks like a colour image {image.shape}; give a grey-value image or stack")
    if image.ndim not in (2, 3):
        raise ValueError(f"{input_path} has shape {image.shape}; expected H x W or N x H x W")
    model_path = Path(model_path)
    saved = read_model_dict(model_path)  # read once: the weights, the grey-value mapping, the precision
    image = scale_for_model(image, saved)  # a model trained on a user's stack: its grey-value mapping
    if image.dtype != np.uint8:
        raise ValueError(
            f"{input_path} holds {image.dtype}; the model was trained on 8-bit grey values (0..255). "
            "Convert the image to uint8 first."
        )
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        dev = resolve_device(device)
        model = model_from_dict(saved, model_path, dev)
        if amp is None:
            amp = saved.get("train_config", {}).get("amp", "off")
        prob = predict_stack(
            model,
            image,
            tile=tile,
            tta=tta,
            batch_size=batch_size,
            amp=amp,
            progress=progress,
        )
    finally:
        torch.set_num_threads(old)
    if image.ndim == 2:
        prob = prob[0]
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(output_path, prob.astype(np.float32), photometric="minisblack")
    return prob


def main(argv: Sequence[str] | None = None, prog: str = "python -m unet_repro.predict") -> int:
    """Entry point of ``python -m unet_repro.predict`` (and ``unet-repro predict``); 2 on bad input."""
    from ..cli import command_parser, device_name, guarded, output_file, positive_int
    from ..options import AMP_MODES, TTA_MODES

    p = command_parser(prog, "Overlap-tile U-Net prediction -> 32-bit float TIFF, 1 = cell.")
    p.add_argument(
        "--model",
        required=True,
        help="model.pt written by python -m unet_repro.train, or cpu: the model shipped in results/cpu/model/",
    )
    p.add_argument("--input", required=True, help="uint8 TIFF image or stack")
    p.add_argument("--output", required=True, type=output_file, help="float32 TIFF to write")
    p.add_argument("--tile", type=positive_int, default=572, help="input tile side (default 572)")
    p.add_argument(
        "--tta",
        default="none",
        choices=TTA_MODES,
        help="test-time augmentation: none, rot4 (4 rotations), d4 (4 rotations x flip)",
    )
    p.add_argument("--device", default="auto", type=device_name, help="auto (CUDA when present), cpu, cuda[:N], mps")
    p.add_argument(
        "--batch-size", type=positive_int, help="tiles per forward pass (>= 1; default: 1 on a CPU, 16 on a GPU)"
    )
    p.add_argument(
        "--amp",
        choices=AMP_MODES,
        help="mixed precision (default: as the model was trained; auto is fp32 on a CPU)",
    )
    p.add_argument("--threads", type=positive_int, help="CPU threads (>= 1)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    def run() -> int:
        t0 = time.perf_counter()
        _check_tiff(args.input, "--input")
        from ..model.shipped import resolve_model

        prob = predict_file(
            resolve_model(args.model),
            args.input,
            args.output,
            args.tile,
            args.tta,
            args.device,
            args.batch_size,
            args.amp,
            args.threads,
            not args.no_progress,
        )
        print(f"wrote {args.output}: {prob.shape} float32, 1 = cell, in {time.perf_counter() - t0:.1f} s")
        from ..metrics.command import read_image
        from ..metrics.diagnose import blank_warning

        warning = blank_warning(prob, read_image(args.input))
        if warning:
            print(warning, file=sys.stderr)
        return 0

    return guarded(run)


def _check_tiff(path: str | Path, option: str) -> None:
    """Raise a ValueError naming ``path`` when it is missing or not a TIFF (cheap: reads the header only)."""
    import tifffile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{option} {path} does not exist; give an existing TIFF file")
    try:
        with tifffile.TiffFile(path):
            pass
    except Exception as exc:  # noqa: BLE001 - tifffile raises several types for bad files
        raise ValueError(
            f"{option} {path} is not a readable TIFF ({' '.join(str(exc).split())}); "
            "give an 8-bit grey-value TIFF image or stack"
        ) from None


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
