"""Score an EM membrane segmentation with the ISBI 2012 challenge metrics, no Fiji needed.

``python -m unet_repro.evaluate --proposal P.tif --labels L.tif [--json]`` prints the five numbers of
the challenge (pixel error, warping error, Rand error: Table 1 of the paper; V_rand, V_info: the later
leaderboard) and the threshold at which each was reached. ``P.tif`` holds the probability of cell in
[0, 1] (1 = cell, the challenge's submission format) as float, or a binary 0/255 segmentation;
``L.tif`` holds the labels (0 = membrane, 255 = cell). See :mod:`unet_repro.metrics` for the
conventions. This module imports no torch.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..metrics import evaluate

__all__ = ["read_image", "main"]

_ORDER = ("pixel_error", "warping_error", "rand_error", "v_rand", "v_info")


def read_image(path: str | Path) -> np.ndarray:
    """Read a (multi-page) TIFF, or a ``.npy`` file, as an array.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist")
    if p.suffix == ".npy":
        return np.load(p)
    import tifffile

    try:
        return tifffile.imread(p)
    except Exception as exc:  # tifffile raises several types for bad files
        raise ValueError(f"{p} is not a readable TIFF ({exc}); give a TIFF or .npy file") from exc


def _fmt_threshold(t: float) -> str:
    """A threshold as a reader writes it: ``0.6``, not ``0.59999999999999998``."""
    return f"{round(float(t), 6):g}"


def main(argv: Sequence[str] | None = None, prog: str = "python -m unet_repro.evaluate") -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 bad input)."""
    from ..cli import command_parser, guarded

    ap = command_parser(
        prog, "ISBI 2012 metrics (warping, Rand, pixel error, V_rand, V_info) of a proposal against labels."
    )
    ap.add_argument("--proposal", required=True, help="TIFF: probability of cell in [0, 1] (float) or binary 0/255")
    ap.add_argument("--labels", required=True, help="TIFF: 0 = membrane, 255 = cell; same shape as the proposal")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)

    def run() -> int:
        prob = read_image(args.proposal)
        lab = read_image(args.labels)
        if np.shape(prob) != np.shape(lab):
            raise ValueError(
                f"--proposal {args.proposal} has shape {np.shape(prob)} but --labels {args.labels} has "
                f"{np.shape(lab)}; give a proposal and labels of the same shape (slices x H x W)"
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ev = evaluate(prob, lab)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
        from .diagnose import blank_warning

        warning = blank_warning(prob)
        if warning:
            print(warning, file=sys.stderr)
        scores, ths = ev.scores(), ev.best_thresholds()
        if args.json:
            out = {k: scores[k] for k in _ORDER}
            out["best_thresholds"] = {k: round(float(ths[k]), 6) for k in _ORDER}
            out["warping_error_pixels"] = ev.warping.best_pixels
            out["shape"] = list(np.shape(prob))
            print(json.dumps(out, indent=2))
            return 0
        print(f"{'metric':<15}{'value':>22}{'best threshold':>16}  kind")
        for k in _ORDER:
            kind = "score (higher is better)" if k in ("v_rand", "v_info") else "error (lower is better)"
            print(f"{k:<15}{float(scores[k])!r:>22}{_fmt_threshold(ths[k]):>16}  {kind}")
        print(
            f"({ev.warping.best_pixels} split/merge pixels at the best warping threshold; "
            f"shape {tuple(np.shape(prob))})"
        )
        return 0

    return guarded(run)


if __name__ == "__main__":
    sys.exit(main())
