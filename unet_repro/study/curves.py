"""Held-out learning curves of study runs: the validation block's scores at every checkpoint.

A grid with ``curve = true`` (``studies/06_curves.toml``) records in each run's JSON the scores of its held-out
block after every checkpoint (:mod:`unet_repro.training.curve`). These functions read them back and draw them,
so that "train longer" can be seen on slices no run was trained on rather than inferred from the training loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .records import read_records

__all__ = ["CURVE_METRICS", "heldout_curves", "heldout_curve_plot"]

#: the scores a curve holds (lower is better for the first three, higher for the last two).
CURVE_METRICS = ("pixel_error", "rand_error", "warping_error", "v_rand", "v_info")


def heldout_curves(runs_dir: str | Path) -> pd.DataFrame:
    """Every recorded held-out curve of a folder of study records.

    Args:
        runs_dir: a folder of sweep records (``*.json``).

    Returns:
        One row per (run, checkpoint): ``name``, ``seed``, ``iterations`` (the run's length), ``block``,
        ``step`` and the scores of :data:`CURVE_METRICS`; empty when no record holds a curve.
    """
    rows = []
    if Path(runs_dir).is_dir():
        for rec in read_records(runs_dir):
            curve = rec.get("heldout_curve")
            if not curve:
                continue
            for r in curve["rows"]:
                rows.append(
                    {
                        "name": rec["name"],
                        "seed": rec["seed"],
                        "iterations": rec["config"]["iterations"],
                        "block": curve["block"],
                        "step": int(r["step"]),
                        **{m: r[m] for m in CURVE_METRICS},
                    }
                )
    return pd.DataFrame(rows, columns=["name", "seed", "iterations", "block", "step", *CURVE_METRICS])


def heldout_curve_plot(curves: pd.DataFrame, metrics: Sequence[str] = ("pixel_error", "rand_error", "v_rand")):  # noqa: ANN201 - a Figure
    """The held-out scores against the training step, one line per run, one panel per metric."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6))
    for ax, m in zip(axes, metrics, strict=True):
        for (name, seed), sel in curves.groupby(["name", "seed"], sort=False):
            ax.plot(
                sel["step"],
                sel[m],
                marker="o",
                ms=2.5,
                label=f"{name} (seed {seed}, {sel['iterations'].iloc[0]} steps)",
            )
        better = "higher" if m.startswith("v_") else "lower"
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{m} ({curves['block'].iloc[0]} block; {better} is better)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
