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

__all__ = ["CURVE_METRICS", "curve_summary", "curve_headline", "heldout_curves", "heldout_curve_plot"]

#: the scores a curve holds (lower is better for the first three, higher for the last two).
CURVE_METRICS = ("pixel_error", "rand_error", "warping_error", "v_rand", "v_info")


def _higher_is_better(metric: str) -> bool:
    """The V scores (``v_rand``, ``v_info``) are better higher; the errors lower."""
    return metric.startswith("v_")


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
        better = "higher" if _higher_is_better(m) else "lower"
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{m} ({curves['block'].iloc[0]} block; {better} is better)")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def curve_summary(curves: pd.DataFrame, metric: str = "v_rand") -> pd.DataFrame:
    """Per run: the score at its last checkpoint, its best score and the step that reached it.

    Args:
        curves: the rows of :func:`heldout_curves`.
        metric: one of :data:`CURVE_METRICS` (``v_*`` scores are better higher, the errors lower).

    Returns:
        One row per (name, seed), longest run last: ``iterations``, ``final``, ``best``, ``best_step``.
    """
    higher = _higher_is_better(metric)
    rows = []
    for (name, seed), sel in curves.groupby(["name", "seed"], sort=False):
        sel = sel.sort_values("step")
        i = sel[metric].idxmax() if higher else sel[metric].idxmin()
        rows.append(
            {
                "name": name,
                "seed": seed,
                "iterations": int(sel["iterations"].iloc[0]),
                "final": float(sel[metric].iloc[-1]),
                "best": float(sel.loc[i, metric]),
                "best_step": int(sel.loc[i, "step"]),
            }
        )
    return pd.DataFrame(rows).sort_values("iterations", kind="stable").reset_index(drop=True)


def curve_headline(curves: pd.DataFrame, metric: str = "v_rand") -> str:
    """A figure title that says what the curves show: the longest run's end and best against the shortest's end.

    Exploratory curves (one seed per length) carry no verdict: the title gives the difference and its direction
    (``better``/``worse`` by the metric's sense), not "helps".
    """
    s = curve_summary(curves, metric)
    short, long = s.iloc[0], s.iloc[-1]
    higher = _higher_is_better(metric)
    gain = (long.final - short.final) * (1 if higher else -1)
    word = "better" if gain > 0 else "worse" if gain < 0 else "the same"
    return (
        f"{metric} on the {curves['block'].iloc[0]} block: {long.iterations} steps end at {long.final:.3f} "
        f"(best {long.best:.3f} at step {long.best_step}), {short.iterations} steps at {short.final:.3f}; "
        f"{long.final - short.final:+.3f}, {word} (one seed each, exploratory)"
    )
