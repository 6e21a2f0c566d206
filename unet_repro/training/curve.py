"""The held-out learning curve: the ISBI 2012 scores of a run's held-out block at each checkpoint.

The training loss says how well a run fits its tiles; it does not say when more steps stop paying off on slices
it never saw. With ``train(..., curve=True)`` (``unet-repro train --curve``) the loop scores the model on its
held-out slices after every checkpoint (one pass, no test-time averaging, each metric at its best of 11
thresholds as the challenge server did) and appends a row to ``curve.csv``. Scoring runs in eval mode under
``torch.no_grad`` and draws no random number, so a run with the curve ends with the same weights as one without
(``tests/test_curve.py`` checks it). A resumed run keeps the rows up to its checkpoint, and scores the
checkpoint itself first when the interruption came before its row was written.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch

from ..inference.tiling import predict_stack
from .config import TrainConfig

__all__ = ["CURVE_COLUMNS", "HeldoutCurve"]

#: the columns of ``curve.csv`` (scores of the held-out block, one row per checkpoint).
CURVE_COLUMNS = ("step", "pixel_error", "rand_error", "warping_error", "v_rand", "v_info", "seconds")


class HeldoutCurve:
    """Scores of the held-out block at each checkpoint, written to ``curve.csv`` as they come.

    Args:
        path: the ``curve.csv`` of the run.
        cfg: the run's configuration (its ``eval_tile`` and ``amp``).
        images: the held-out slices (N x H x W, uint8).
        labels: their labels (0 = membrane).
        start_step: the step training starts (or resumes) from; rows after it are dropped.
    """

    def __init__(
        self, path: Path, cfg: TrainConfig, images: np.ndarray, labels: np.ndarray, start_step: int = 0
    ) -> None:
        self.path, self.cfg, self.images, self.labels = Path(path), cfg, images, labels
        self.rows: list[dict[str, float]] = []
        if start_step and self.path.is_file():
            with open(self.path, newline="") as fh:
                self.rows = [
                    {k: float(v) for k, v in r.items()} for r in csv.DictReader(fh) if int(r["step"]) <= start_step
                ]

    def has(self, step: int) -> bool:
        """Whether ``curve.csv`` holds the row of ``step`` (a run stopped between its checkpoint and the scoring
        does not)."""
        return any(int(r["step"]) == step for r in self.rows)

    def add(self, step: int, model: torch.nn.Module) -> dict[str, float]:
        """Score ``model`` on the held-out block after ``step`` and rewrite ``curve.csv``; the model goes back to
        training mode."""
        from ..metrics import isbi2012_scores

        t0 = time.perf_counter()
        model.eval()
        try:
            prob = predict_stack(model, self.images, tile=self.cfg.eval_tile, tta="none", amp=self.cfg.amp)
        finally:
            model.train()
        scores = isbi2012_scores(prob, self.labels)
        row = {"step": float(step), **{k: float(scores[k]) for k in CURVE_COLUMNS[1:-1]}}
        row["seconds"] = time.perf_counter() - t0
        self.rows = [r for r in self.rows if r["step"] < step] + [row]
        with open(self.path, "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(CURVE_COLUMNS)
            for r in self.rows:
                w.writerow([int(r["step"]), *(f"{r[k]:.8g}" for k in CURVE_COLUMNS[1:-1]), f"{r['seconds']:.2f}"])
        return row
