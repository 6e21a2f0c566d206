"""Choosing on the validation block: trials ranked by one rule, and a profile's recipe from the study.

The protocol (:mod:`unet_repro.data.protocol`) lets choices look at the validation block (slices 20-24) only.
Two kinds of choice are made here, both by reading sweep records:

- among trials (learning rates, notebook 04's ci recipe): the lowest mean validation pixel error, ties to
  the lower validation Rand error (:func:`validation_trials`, :func:`choose_learning_rate`);
- the ``cpu`` profile's recipe from notebook 06's study (:func:`recipe_from_validation`): every change to
  the baseline whose paired validation effect "helps" the deciding metric and "hurts" none (the verdict
  rule of :func:`unet_repro.study.records.verdict`), one change per configuration field (the larger gain wins).

The test block is never read here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .ablations import ABLATIONS, BASELINE, TOO_FEW, ablation_table, load_configs
from .grid import Grid
from .records import LOWER_IS_BETTER, METRICS, load_records

__all__ = [
    "validation_trials",
    "choose_learning_rate",
    "RECIPE_GROUPS",
    "change_fields",
    "recipe_from_validation",
    "recipe_overrides",
]

#: the study's groups a profile's recipe may take a change from (not "data": fewer slices is not a recipe).
RECIPE_GROUPS = ("augmentation", "loss", "optimiser", "regularisation", "architecture", "tiles", "test-time")


def validation_trials(
    runs_dir: str | Path,
    fields: Sequence[str] = ("optimizer", "lr", "iterations"),
    metric: str = "pixel_error",
    names: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Trials ranked by the choosing rule: the best mean ``metric`` on the validation block first.

    Args:
        runs_dir: the trials' records (e.g. ``studies/06_learning_rate.toml``, ``studies/ci_recipe.toml``).
        fields: configuration fields to list beside each trial's name.
        metric: the deciding validation metric; ties (several trials no better than "all cell" score the same
            pixel error) go to the lower validation Rand error.
        names: only these trials (grid entries), when the folder holds other runs too (None: every run).

    Returns:
        One row per trial: ``name``, the ``fields``, ``n_seeds`` and the validation mean of every metric, best
        first. Only finished runs; the test block is not read.
    """
    df = load_records(runs_dir)
    df = df[(df["block"] == "validation") & (df["tta"] == "none")]
    if names is not None:
        df = df[df["name"].isin(set(names))]
    if df.empty:
        raise ValueError(f"no validation records in {runs_dir}; run the trials' grid first")
    df = df.merge(load_configs(runs_dir)[["run_id", *fields]], on="run_id")
    keys = ["name", *fields]
    means = df.groupby(keys, as_index=False, sort=False)[list(METRICS)].mean()
    means["n_seeds"] = df.groupby(keys, sort=False).size().to_numpy()
    tie = "rand_error" if metric != "rand_error" else "pixel_error"  # equal scores (e.g. all "all cell")
    ranked = means.sort_values(keys, kind="stable").sort_values(
        [metric, tie], ascending=[LOWER_IS_BETTER[metric], True], kind="stable"
    )
    return ranked[[*keys, "n_seeds", *METRICS]].reset_index(drop=True)


def choose_learning_rate(
    runs_dir: str | Path,
    optimizer: str,
    iterations: int | None = None,
    metric: str = "pixel_error",
    names: Iterable[str] | None = None,
) -> pd.Series:
    """The learning-rate trial of ``optimizer`` with the best mean ``metric`` on the validation block
    (:func:`validation_trials`' rule).

    Args:
        runs_dir: the trials' records (``studies/06_learning_rate.toml``).
        optimizer: ``sgd`` or ``adam``.
        iterations: only trials of this many steps (None: all).
        metric: the deciding validation metric (ties to the lower validation Rand error).
        names: only these trials (the learning-rate grid's entries; the folder also holds the study's runs).

    Returns:
        The chosen row: ``name, optimizer, lr, iterations, n_seeds`` and the validation mean of every metric.
    """
    trials = validation_trials(runs_dir, ("optimizer", "lr", "iterations"), metric, names)
    trials = trials[(trials["optimizer"] == optimizer) & ((trials["iterations"] == iterations) if iterations else True)]
    if trials.empty:
        raise ValueError(f"no validation records of optimizer {optimizer!r} ({iterations} steps) in {runs_dir}")
    return trials.iloc[0]


def change_fields(grid: Grid, name: str, baseline: str = BASELINE) -> dict[str, Any]:
    """The configuration fields a study entry changes from the baseline (``tta_<mode>``: ``{"tta": mode}``)."""
    if name.startswith("tta_"):
        return {"tta": name.removeprefix("tta_")}
    configs = {s.name: s.config for s in grid.specs}
    if name not in configs or baseline not in configs:
        raise ValueError(f"{name!r} or {baseline!r} is not an entry of the grid; pass the study's grid")
    base, cfg = configs[baseline], configs[name]
    return {k: v for k, v in cfg.items() if k != "seed" and base.get(k) != v}


def recipe_from_validation(runs_dir: str | Path, grid: Grid, metric: str = "pixel_error") -> pd.DataFrame:
    """Which of the study's changes a recipe takes, by their paired effects on the validation block.

    Args:
        runs_dir: the study's records (``results/06_ablations/runs``).
        grid: the study's grid (``studies/06_ablations.toml``), which says what each change sets; only the
            records of its seeds count (the choice was made on them; later studies that share the folder, such
            as the primary study's seeds 3-9, do not move it).
        metric: the deciding metric; a change is taken when its verdict there is "helps" and no metric's
            verdict is "hurts". Two taken changes that set the same field: the larger gain on ``metric`` wins.

    Returns:
        One row per change of :data:`RECIPE_GROUPS` with 3 or more seed pairs: ``name, group, fields``
        (what it sets), ``mean_diff`` (on ``metric``), ``helps``, ``hurts`` (metrics), ``taken`` and ``why``.
    """
    table = ablation_table(runs_dir, block="validation", verdicts=True, seeds=grid.seeds)
    groups = {a.name: a.group for a in ABLATIONS}
    sign = 1.0 if LOWER_IS_BETTER[metric] else -1.0
    rows = []
    for name, rows_of in table.groupby("name", sort=False):
        if groups.get(name) not in RECIPE_GROUPS or (rows_of["verdict"] == TOO_FEW).any():
            continue
        by_metric = rows_of.set_index("metric")
        helps = [m for m in METRICS if by_metric.loc[m, "verdict"] == "helps"]
        hurts = [m for m in METRICS if by_metric.loc[m, "verdict"] == "hurts"]
        eligible = metric in helps and not hurts
        why = "helps " + metric if eligible else (f"hurts {', '.join(hurts)}" if hurts else f"does not help {metric}")
        gain = -sign * float(by_metric.loc[metric, "mean_diff"])  # > 0: better than the baseline
        rows.append(
            {
                "name": name,
                "group": groups[name],
                "fields": change_fields(grid, name),
                "mean_diff": float(by_metric.loc[metric, "mean_diff"]),
                "helps": ", ".join(helps),
                "hurts": ", ".join(hurts),
                "taken": eligible,
                "why": why,
                "_gain": gain,
            }
        )
    out = pd.DataFrame(
        rows, columns=["name", "group", "fields", "mean_diff", "helps", "hurts", "taken", "why", "_gain"]
    )
    owner: dict[str, str] = {}  # field -> the taken change that sets it; best gain first
    for i in out[out["taken"]].sort_values("_gain", ascending=False, kind="stable").index:
        clash = sorted(set(out.at[i, "fields"]) & set(owner))
        if clash:
            out.at[i, "taken"] = False
            out.at[i, "why"] = f"helps less than {owner[clash[0]]}, which sets {clash[0]} too"
        else:
            owner.update(dict.fromkeys(out.at[i, "fields"], out.at[i, "name"]))
    return out.drop(columns="_gain")


def recipe_overrides(choice: pd.DataFrame) -> dict[str, Any]:
    """The fields of the taken changes of :func:`recipe_from_validation`, merged."""
    fields: dict[str, Any] = {}
    for f in choice.loc[choice["taken"], "fields"]:
        fields.update(f)
    return fields


def describe(fields: Mapping[str, Any]) -> str:
    """Configuration fields as one line, ``name = value, ...`` (the tables and the notebook print them so)."""
    return ", ".join(f"{k} = {v!r}" for k, v in fields.items())
