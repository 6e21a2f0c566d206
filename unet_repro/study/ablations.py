"""Notebook 06's study: what each ingredient of U-Net is worth, measured on the test block.

The study (``studies/06_ablations.toml``) trains one baseline, the paper's recipe at CPU scale, and one
change at a time, each with the same seeds. This module names every change and the claim it tests
(:data:`ABLATIONS`), turns the committed run records into the study's table (:func:`ablation_table`, the
paired differences of :mod:`unet_repro.study.records` with 95% intervals), and draws its figures. This table is
**exploratory**: it reports intervals, never verdicts; the claims decided by a rule fixed in advance are
:mod:`unet_repro.study.primary`'s. The learning rates
come from ``studies/06_learning_rate.toml``, chosen on the validation block (:mod:`unet_repro.study.recipe`).
``python -m unet_repro.readme`` writes the README's exploratory table from ``results/06_ablations.csv``.

The tables and figures import no torch (only :func:`load_configs` does, to fill in configuration defaults).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .records import LOWER_IS_BETTER, METRICS, MIN_PAIRS, load_records, paired_effects, pairs_text, read_records

__all__ = [
    "Ablation",
    "ABLATIONS",
    "BASELINE",
    "SCARCITY",
    "LONGER",
    "load_configs",
    "with_tta_as_configs",
    "ablation_table",
    "scarcity_table",
    "length_table",
    "loss_curves",
    "forest_plot",
    "learning_curve_plot",
    "scarcity_plot",
    "interval_phrase",
    "readme_table",
    "README_MARKERS",
]

BASELINE = "baseline"
# The verdict of a change with fewer than MIN_PAIRS seed pairs so far.
TOO_FEW = "too few seeds"


@dataclass(frozen=True)
class Ablation:
    """One change to the baseline and the claim it tests.

    Args:
        name: the grid entry (``studies/06_ablations.toml``), or ``tta_<mode>`` for test-time averaging.
        group: the ingredient (augmentation, loss, optimiser, ...).
        change: what differs from the baseline.
        claim: who claims what about it.
        reference: the configuration it is paired with (the baseline, or for augmentation at a given number
            of training slices, the augmented run on those slices).
    """

    name: str
    group: str
    change: str
    claim: str
    reference: str = BASELINE


_PAPER_AUG = "paper 3.1: augmentation is essential; elastic deformation the key one"
_PAPER_W = "paper 3, eq. 2: the border weight map helps separate touching cells"
_SEED = "seed blog: works better"
ABLATIONS: tuple[Ablation, ...] = (
    Ablation("no_augmentation", "augmentation", "no augmentation", _PAPER_AUG),
    Ablation("no_elastic", "augmentation", "augmentation without elastic deformation", _PAPER_AUG),
    Ablation("elastic_only", "augmentation", "elastic deformation only", _PAPER_AUG),
    Ablation("no_border_term", "loss", "w0 = 0 (class balance only)", _PAPER_W),
    Ablation(
        "no_class_balance", "loss", "no class balance w_c (border term only)", "paper 3, eq. 2: w_c balances classes"
    ),
    Ablation("plain_cross_entropy", "loss", "unweighted cross-entropy", _PAPER_W),
    Ablation("adam", "optimiser", "Adam instead of SGD momentum 0.99", "paper 3: SGD, high momentum (0.99)"),
    Ablation("no_dropout", "regularisation", "no drop-out", "paper 3.1: drop-out is further implicit augmentation"),
    Ablation("batch_norm", "regularisation", "batch normalisation after each convolution", "not in the paper"),
    Ablation("same_padding", "architecture", "same padding (384 tiles, one-pass prediction)", _SEED),
    Ablation("bilinear", "architecture", "bilinear up-sampling + 1x1 convolution", _SEED),
    Ablation("same_padding_bilinear", "architecture", "same padding and bilinear up-sampling", _SEED),
    Ablation(
        "small_tiles_batch4", "tiles", "4 tiles of 380 per step (same output pixels)", "paper 3: large tiles over batch"
    ),
    Ablation("tta_rot4", "test-time", "average over 4 rotations", "paper 3.3: average over rotated inputs"),
    Ablation("tta_d4", "test-time", "average over 4 rotations x flip", "paper 3.3: average over rotated inputs"),
    Ablation("slices_8", "data", "8 training slices", "paper: few images suffice with augmentation"),
    Ablation("slices_3", "data", "3 training slices", "paper: few images suffice with augmentation"),
    Ablation("slices_1", "data", "1 training slice", "paper: few images suffice with augmentation"),
    *(
        Ablation(
            f"slices_{n}_no_augmentation",
            "data",
            f"no augmentation on {n} training slice{'s' if n > 1 else ''} (against augmentation on {n})",
            "paper 1, 3.1: augmentation matters most when few images are available",
            reference=f"slices_{n}",
        )
        for n in (8, 3, 1)
    ),
    Ablation("long_baseline", "training length", "4000 steps instead of 1000", "paper 3: long training (10 h)"),
    *(
        Ablation(
            f"long_{short}",
            "training length",
            f"{change} at 4000 steps (against the baseline at 4000)",
            claim,
            reference="long_baseline",
        )
        for short, change, claim in (
            ("no_augmentation", "no augmentation", _PAPER_AUG),
            ("no_border_term", "w0 = 0", _PAPER_W),
        )
    ),
)

#: Changes run again at 4 times the steps (``studies/06_long.toml``): the 1000-step entry -> the long one.
LONGER: dict[str, str] = {"no_augmentation": "long_no_augmentation", "no_border_term": "long_no_border_term"}

#: The data-scarcity runs: (training slices, with augmentation) -> grid entry; 20 slices is the baseline.
SCARCITY: dict[tuple[int, bool], str] = {
    (1, True): "slices_1",
    (3, True): "slices_3",
    (8, True): "slices_8",
    (20, True): BASELINE,
    (1, False): "slices_1_no_augmentation",
    (3, False): "slices_3_no_augmentation",
    (8, False): "slices_8_no_augmentation",
    (20, False): "no_augmentation",
}


def load_configs(runs_dir: str | Path) -> pd.DataFrame:
    """One row per finished run: ``run_id, name, seed`` and every configuration field (fields a record
    predates filled in with their defaults, :func:`unet_repro.training.checkpoint.saved_config`, which imports
    torch)."""
    from ..training.checkpoint import saved_config

    rows = [
        {"run_id": r["run_id"], "name": r["name"], "seed": r["seed"], **saved_config(r["config"])}
        for r in read_records(runs_dir)
    ]
    return pd.DataFrame(rows)


def with_tta_as_configs(df: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Add the baseline's test-time averaging modes as configurations ``tta_<mode>`` scored with ``tta = none``.

    They come from the same trained models, so their differences to the baseline are paired exactly.
    """
    extra = df[(df["name"] == baseline) & (df["tta"] != "none")].copy()
    extra["name"] = "tta_" + extra["tta"]
    extra["run_id"] = extra["name"] + "-s" + extra["seed"].astype(str)
    extra["tta"] = "none"
    return pd.concat([df, extra], ignore_index=True)


def ablation_table(
    runs_dir: str | Path, block: str = "test", verdicts: bool = False, seeds: Iterable[int] | None = None
) -> pd.DataFrame:
    """The study's table: one row per (ablation, metric) with the paired difference and its 95% interval.

    Args:
        runs_dir: the committed records (``results/06_ablations/runs``).
        block: ``test`` (what is reported) or ``validation``.
        verdicts: add the choosing rule's ``verdict`` (:func:`unet_repro.study.records.verdict`; :data:`TOO_FEW`
            below :data:`MIN_PAIRS` seed pairs), which picks a recipe on the validation block. The test
            block's table is exploratory and has none.
        seeds: only the records of these seeds (default: all).

    Returns:
        Columns ``group, name, change, claim, reference, metric, n_pairs, baseline_mean, mean, mean_diff, se,
        ci_low, ci_high, [verdict,] train_minutes``: ``baseline_mean`` is the mean of ``reference`` over the
        paired seeds, ``ci_low``/``ci_high`` the 95% t-interval of ``mean_diff``, ``train_minutes`` the mean
        training time of a run of that configuration.
    """
    df = with_tta_as_configs(load_records(runs_dir))
    if seeds is not None:
        df = df[df["seed"].isin(list(seeds))]
    present = set(df["name"])
    parts = [paired_effects(df, a.reference, block, "none", [a.name]) for a in ABLATIONS if a.name in present]
    eff = pd.concat(parts, ignore_index=True) if parts else paired_effects(df, BASELINE, block, "none", [])
    info = pd.DataFrame([a.__dict__ for a in ABLATIONS])
    minutes = df[df["tta"] == "none"].groupby("name")["train_seconds"].mean() / 60.0
    out = eff.merge(info, on="name", how="left")
    out.loc[out["n_pairs"] < MIN_PAIRS, "verdict"] = TOO_FEW  # the rule needs MIN_PAIRS pairs; a study in progress
    out["train_minutes"] = out["name"].map(minutes).where(~out["name"].str.startswith("tta_"), np.nan)
    cols = ["group", "name", "change", "claim", "reference", "metric", "n_pairs", "baseline_mean", "mean"]
    cols += ["mean_diff", "se", "ci_low", "ci_high", *(["verdict"] if verdicts else [])]
    return out[[*cols, "train_minutes"]].reset_index(drop=True)


def length_table(table: pd.DataFrame) -> pd.DataFrame:
    """A change's paired difference at 1000 steps beside the same change at 4000 (:data:`LONGER`, both paired).

    Args:
        table: the study's table (:func:`ablation_table`).

    Returns:
        One row per (change, metric) with records at both lengths: ``name, metric`` and for each length the
        paired difference, its 95% interval and seed pairs (``*_short``, ``*_long``).
    """
    keep = ["metric", "mean_diff", "ci_low", "ci_high", "n_pairs"]
    parts = []
    for short, long in LONGER.items():
        a, b = table[table["name"] == short][keep], table[table["name"] == long][keep]
        if a.empty or b.empty:
            continue
        both = a.merge(b, on="metric", suffixes=("_short", "_long"))
        both.insert(0, "name", short)
        parts.append(both)
    cols = ["name", "metric", *(f"{k}_{s}" for s in ("short", "long") for k in keep[1:])]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def scarcity_table(runs_dir: str | Path, block: str = "test") -> pd.DataFrame:
    """Error against the number of training slices, with and without augmentation (mean and sd over seeds)."""
    df = load_records(runs_dir)
    df = df[(df["block"] == block) & (df["tta"] == "none")]
    rows = []
    for (n, aug), name in SCARCITY.items():
        sel = df[df["name"] == name]
        if sel.empty:
            continue
        for m in METRICS:
            v = sel[m].to_numpy(dtype=float)
            rows.append(
                {
                    "slices": n,
                    "augment": aug,
                    "name": name,
                    "metric": m,
                    "n_seeds": len(v),
                    "mean": v.mean(),
                    "sd": v.std(ddof=1) if len(v) > 1 else np.nan,
                }
            )
    return pd.DataFrame(rows).sort_values(["metric", "augment", "slices"], kind="stable").reset_index(drop=True)


def loss_curves(runs_dir: str | Path, names: Iterable[str]) -> pd.DataFrame:
    """Training loss curves (``step, loss`` per run) of the named configurations from their records."""
    wanted, rows = set(names), []
    for rec in read_records(runs_dir):
        if rec["name"] in wanted:
            rows += [{"name": rec["name"], "seed": rec["seed"], "step": s, "loss": v} for s, v in rec["loss_curve"]]
    return pd.DataFrame(rows, columns=["name", "seed", "step", "loss"])


def forest_plot(table: pd.DataFrame, metrics: Sequence[str] = METRICS):  # noqa: ANN201 - a matplotlib Figure
    """Paired differences (change - its reference) with 95% t-interval bars, one panel per metric; rows paired
    with a reference other than the baseline are drawn in blue and name it."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = list(dict.fromkeys(table["name"]))
    refs = table.drop_duplicates("name").set_index("name")["reference"]
    labels = [n if refs[n] == BASELINE else f"{n} (vs {refs[n]})" for n in names]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.32 * len(names) + 1.4), sharey=True)
    y = np.arange(len(names))[::-1]
    for ax, m in zip(np.atleast_1d(axes), metrics, strict=True):
        sub = table[table["metric"] == m].set_index("name").reindex(names)
        for yi, (name, row) in zip(y, sub.iterrows(), strict=True):
            c = "black" if refs[name] == BASELINE else "tab:blue"
            err = [[row["mean_diff"] - row["ci_low"]], [row["ci_high"] - row["mean_diff"]]]
            ax.errorbar(row["mean_diff"], yi, xerr=err, fmt="o", color=c, ms=4, capsize=2)
        ax.axvline(0.0, color="black", lw=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
        better = "left" if LOWER_IS_BETTER[m] else "right"
        ax.set_title(f"{m}\n(better: {better})", fontsize=9)
        ax.tick_params(labelsize=8)
    first = np.atleast_1d(axes)[0]
    first.set_yticks(y)
    first.set_yticklabels(labels, fontsize=8)
    fig.suptitle(
        "Exploratory: each change minus the baseline (blue: minus the reference named), test block, "
        f"95% t-intervals over {pairs_text(table['n_pairs'])} seed pairs",
        y=1.0,
    )
    fig.tight_layout()
    return fig


def learning_curve_plot(curves: pd.DataFrame, names: Sequence[str], title: str = ""):  # noqa: ANN201 - a Figure
    """Training loss against step, mean over seeds, one line per configuration, under ``title``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name in names:
        sel = curves[curves["name"] == name]
        if sel.empty:
            continue
        mean = sel.groupby("step")["loss"].mean()
        ax.plot(mean.index, mean.to_numpy(), label=f"{name} ({sel['seed'].nunique()} seeds)")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (mean of 10 steps)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def scarcity_plot(table: pd.DataFrame, metrics: Sequence[str] = ("pixel_error", "rand_error", "warping_error")):  # noqa: ANN201
    """Test error against training slices (log scale), with and without augmentation, +-1 sd over seeds."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.6))
    for ax, m in zip(np.atleast_1d(axes), metrics, strict=True):
        for aug, label in ((True, "with augmentation"), (False, "without")):
            sel = table[(table["metric"] == m) & (table["augment"] == aug)].sort_values("slices")
            ax.errorbar(sel["slices"], sel["mean"], yerr=sel["sd"], marker="o", capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_xticks([1, 3, 8, 20])
        ax.set_xticklabels(["1", "3", "8", "20"])
        ax.set_xlabel("training slices")
        ax.set_ylabel(f"test {m.replace('_', ' ')} (lower is better)")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    n = pairs_text(table["n_seeds"])
    fig.suptitle(
        "Does augmentation matter more with fewer training slices? Test block, mean +-1 sd over "
        f"{n} seeds (the 20-slice points: the baseline and no_augmentation)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def interval_phrase(row: pd.Series, digits: int = 4) -> str:
    """A paired difference with its 95% interval, e.g. ``-0.0026 [-0.0061, +0.0009]`` (one pair: no interval)."""
    if pd.isna(row["ci_low"]):
        return f"{row['mean_diff']:+.{digits}f} (one pair: no interval)"
    return f"{row['mean_diff']:+.{digits}f} [{row['ci_low']:+.{digits}f}, {row['ci_high']:+.{digits}f}]"


#: The README's "what matters" table sits between these lines; :func:`readme_table` writes what goes between.
README_MARKERS = ("<!-- exploratory ablations: generated by python -m unet_repro.readme -->", "<!-- end ablations -->")


def readme_table(table: pd.DataFrame) -> str:
    """The README's exploratory table from the study's table (``results/06_ablations.csv``).

    One row per change: the claim it tests, its reference, and the paired differences of the pixel error and
    of V_rand with their 95% intervals (test block), with the number of seed pairs; no verdicts. Changes of
    :data:`ABLATIONS` without records yet are listed as "not run yet".
    """
    lines = [
        "| change | claim tested | paired with | pixel error diff [95% interval] | V_rand diff [95% interval] "
        "| seeds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, rows in table.groupby("name", sort=False):
        px = rows[rows["metric"] == "pixel_error"].iloc[0]
        vr = rows[rows["metric"] == "v_rand"].iloc[0]
        lines.append(
            f"| {rows['change'].iloc[0]} (`{name}`) | {rows['claim'].iloc[0]} | {px['reference']} "
            f"| {interval_phrase(px)} | {interval_phrase(vr, 3)} | {int(rows['n_pairs'].min())} |"
        )
    for a in ABLATIONS:  # a study in progress: say what has not run yet rather than leave it out
        if a.name not in set(table["name"]):
            lines.append(f"| {a.change} (`{a.name}`) | {a.claim} | {a.reference} | not run yet | | 0 |")
    return "\n".join(lines)
