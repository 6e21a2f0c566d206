"""Reading sweep records: seed spreads, tolerances from them, and paired effects with 95% intervals.

A sweep (:mod:`unet_repro.study.sweep`) leaves one JSON per (configuration, seed). This module turns them into
tables: the spread over seeds of one configuration (which sets how far a rerun on other hardware may
drift: :func:`seed_tolerances`), and the paired difference of each configuration against a baseline
trained with the same seeds, with its t-interval (:func:`t_half_width`). :func:`verdict` is the choosing
rule that picks a recipe on the *validation* block (:mod:`unet_repro.study.recipe`); claims about the paper are
decided by the pre-registered rule of :mod:`unet_repro.study.primary` instead.

Imports no torch: anyone can re-aggregate the committed records.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..results import Stochastic

__all__ = [
    "METRICS",
    "LOWER_IS_BETTER",
    "MIN_PAIRS",
    "read_records",
    "load_records",
    "study_cost",
    "seed_spread",
    "block_means",
    "seed_tolerances",
    "paired_effects",
    "verdict",
    "t_half_width",
    "pairs_text",
    "INTERVAL",
    "TOLERANCE_SDS",
    "SEED_STUDY",
    "seed_study_kinds",
]

METRICS = ("pixel_error", "warping_error", "rand_error", "v_rand", "v_info")
#: errors fall as a segmentation improves; V_rand and V_info are scores that rise.
LOWER_IS_BETTER = {"pixel_error": True, "warping_error": True, "rand_error": True, "v_rand": False, "v_info": False}
# The verdict rule needs this many seed pairs (or seeds, for a spread); fewer is a study in progress.
MIN_PAIRS = 3
#: the coverage of every interval the study reports
INTERVAL = 0.95
#: a rerun may drift by this many seed standard deviations before the comparison fails.
TOLERANCE_SDS = 2.0
#: the committed seed study of the ci profile (``studies/ci_seeds.toml``), relative to the checkout.
SEED_STUDY = Path("results") / "seed_study" / "runs"


def read_records(runs_dir: str | Path, statuses: Iterable[str] | None = ("ok",)) -> list[dict]:
    """The sweep records of one folder as written (parsed JSON), in file-name order.

    Args:
        runs_dir: folder of ``*.json`` records written by :mod:`unet_repro.study.sweep`.
        statuses: which records to keep (``ok``, ``failed``, ``diverged``); ``None`` keeps all.

    Returns:
        One dict per record; every other reader of records filters these.
    """
    records = [json.loads(path.read_text()) for path in sorted(Path(runs_dir).glob("*.json"))]
    if statuses is None:
        return records
    keep = set(statuses)
    return [r for r in records if r.get("status") in keep]


def load_records(runs_dir: str | Path, statuses: Iterable[str] = ("ok",)) -> pd.DataFrame:
    """One row per (run, block, test-time mode): the five metrics and the run's facts.

    Args:
        runs_dir: folder of ``*.json`` records written by :mod:`unet_repro.study.sweep`.
        statuses: which records to keep (failed runs have no metrics).

    Returns:
        Columns ``run_id, name, seed, block, tta, <metrics>, seconds_per_step, train_seconds, device, torch``,
        sorted by name, seed, block and tta.
    """
    rows = []
    for rec in read_records(runs_dir, statuses):
        for block, modes in rec.get("metrics", {}).items():
            for tta, scores in modes.items():
                rows.append(
                    {
                        "run_id": rec["run_id"],
                        "name": rec["name"],
                        "seed": rec["seed"],
                        "block": block,
                        "tta": tta,
                        **{m: scores[m] for m in METRICS},
                        "seconds_per_step": rec.get("seconds_per_step"),
                        "train_seconds": rec.get("train_seconds"),
                        "device": rec.get("device"),
                        "torch": rec.get("torch"),
                    }
                )
    cols = ["run_id", "name", "seed", "block", "tta", *METRICS, "seconds_per_step", "train_seconds", "device", "torch"]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["name", "seed", "block", "tta"], kind="stable").reset_index(drop=True)


def study_cost(runs_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """What a study's runs cost, per records folder and device.

    A run counts its wall time, or its training plus prediction time where that is longer (a resumed run's
    wall time covers its last part only, its training time all parts), times its threads.

    Args:
        runs_dirs: folders of ``*.json`` records; every record counts, finished or not.

    Returns:
        Columns ``study`` (the folder's name), ``device`` ("not recorded" where a record lacks it), ``runs``
        and ``core_hours``.
    """
    rows = [
        {
            "study": Path(folder).name,
            "device": r.get("device", "not recorded"),
            "core_hours": max(
                r.get("wall_seconds") or 0.0, (r.get("train_seconds") or 0.0) + (r.get("predict_seconds") or 0.0)
            )
            * (r.get("threads") or 1)
            / 3600,
        }
        for folder in runs_dirs
        for r in read_records(folder, statuses=None)
    ]
    return (
        pd.DataFrame(rows)
        .groupby(["study", "device"], as_index=False)
        .agg(runs=("core_hours", "size"), core_hours=("core_hours", "sum"))
    )


def _select(df: pd.DataFrame, name: str, block: str, tta: str) -> pd.DataFrame:
    sel = df[(df["name"] == name) & (df["block"] == block) & (df["tta"] == tta)]
    if sel.empty:
        raise ValueError(f"no records of {name!r} on the {block} block with tta={tta!r}")
    return sel


def seed_spread(df: pd.DataFrame, name: str, block: str = "test", tta: str = "none") -> pd.DataFrame:
    """Mean, standard deviation (n - 1), min and max over seeds of one configuration, per metric."""
    sel = _select(df, name, block, tta)
    out = []
    for m in METRICS:
        v = sel[m].to_numpy(dtype=float)
        out.append(
            {
                "metric": m,
                "n_seeds": len(v),
                "mean": v.mean(),
                "sd": v.std(ddof=1) if len(v) > 1 else math.nan,
                "min": v.min(),
                "max": v.max(),
            }
        )
    return pd.DataFrame(out)


def block_means(df: pd.DataFrame, block: str = "test", tta: str = "none") -> pd.DataFrame:
    """Mean, standard deviation (n - 1) and count over all records of one block and test-time mode, per metric.

    Returns:
        One row per metric of :data:`METRICS`, columns ``mean``, ``std``, ``count``.
    """
    return df[(df["block"] == block) & (df["tta"] == tta)][list(METRICS)].agg(["mean", "std", "count"]).T


def seed_tolerances(df: pd.DataFrame, name: str, block: str = "test", tta: str = "none") -> dict[str, float]:
    """Per metric, the tolerance a rerun gets: :data:`TOLERANCE_SDS` seed standard deviations.

    Rounded up to two significant digits so that the printed tolerance is the one applied.
    """
    spread = seed_spread(df, name, block, tta)
    if (spread["n_seeds"] < MIN_PAIRS).any():
        raise ValueError(f"{name!r} has fewer than {MIN_PAIRS} seeds; a spread needs at least {MIN_PAIRS}")
    tol = {}
    for m, sd in zip(spread["metric"], spread["sd"], strict=True):
        x = TOLERANCE_SDS * float(sd)
        digits = 1 - int(math.floor(math.log10(x))) if x > 0 else 0
        tol[m] = math.ceil(x * 10**digits) / 10**digits if x > 0 else 0.0
    return tol


def pairs_text(n_pairs: Iterable[int]) -> str:
    """A count of seed pairs as printed in titles: ``"3"`` when all equal, else ``"3-10"``."""
    n = sorted({int(x) for x in n_pairs})
    return str(n[0]) if len(n) == 1 else f"{n[0]}-{n[-1]}"


def t_half_width(se: float | np.ndarray, n: int | np.ndarray, level: float = INTERVAL) -> float | np.ndarray:
    """Half the width of the t-interval of a mean: ``t(1/2 + level/2, n - 1) * se`` (NaN below 2 values)."""
    n = np.asarray(n)
    out = stats.t.ppf(0.5 + level / 2, df=np.maximum(n - 1, 1)) * np.where(n > 1, se, np.nan)
    return float(out) if out.ndim == 0 else out


def verdict(metric: str, mean_diff: float, se: float, n: int) -> str:
    """The choosing rule (validation block only): an effect "helps" or "hurts" when the paired mean difference
    exceeds twice its standard error (and at least :data:`MIN_PAIRS` pairs back it); otherwise it is "within
    seed noise". A recipe's choice, not a test of a claim: it fires by chance often (:mod:`unet_repro.study.primary`).

    ``mean_diff`` is configuration minus baseline; for errors a negative difference helps.
    """
    if n < MIN_PAIRS or not math.isfinite(se) or abs(mean_diff) <= 2.0 * se:
        return "within seed noise"
    better = mean_diff < 0 if LOWER_IS_BETTER[metric] else mean_diff > 0
    return "helps" if better else "hurts"


def paired_effects(
    df: pd.DataFrame, baseline: str, block: str = "test", tta: str = "none", names: Iterable[str] | None = None
) -> pd.DataFrame:
    """Seed-matched differences of each configuration against ``baseline``, per metric.

    Returns:
        Columns ``name, metric, n_pairs, baseline_mean, mean, mean_diff, se, ci_low, ci_high, verdict``: ``se``
        is the standard error of the mean paired difference (sd / sqrt(n)), ``ci_low``/``ci_high`` its
        :data:`INTERVAL` t-interval, ``verdict`` the choosing rule :func:`verdict`.
    """
    base = _select(df, baseline, block, tta).set_index("seed")
    names = [n for n in (names or df["name"].unique()) if n != baseline]
    rows = []
    for name in names:
        sel = _select(df, name, block, tta).set_index("seed")
        seeds = sorted(set(sel.index) & set(base.index))
        for m in METRICS:
            d = sel.loc[seeds, m].to_numpy(dtype=float) - base.loc[seeds, m].to_numpy(dtype=float)
            n = len(d)
            se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else math.nan
            mean = float(d.mean()) if n else math.nan
            rows.append(
                {
                    "name": name,
                    "metric": m,
                    "n_pairs": n,
                    "baseline_mean": float(base.loc[seeds, m].mean()),
                    "mean": float(sel.loc[seeds, m].mean()),
                    "mean_diff": mean,
                    "se": se,
                    "ci_low": mean - t_half_width(se, n),
                    "ci_high": mean + t_half_width(se, n),
                    "verdict": verdict(m, mean, se, n),
                }
            )
    return pd.DataFrame(rows)


def seed_study_kinds(
    columns: Iterable[str], profile: str = "ci", root: str | Path | None = None
) -> dict[str, Stochastic | str]:
    """How ``reproduce`` compares the metric columns of a results table: the seed study's tolerances.

    Every table that holds a metric gets the same tolerance for it (:func:`seed_tolerances` of the ``ci``
    seed study's test block). Outside a checkout (e.g. Colab) there is no committed seed study and nothing
    to compare against, so the columns are marked ``measured``.

    Args:
        columns: metric names among :data:`METRICS` (other names are left out of the result).
        profile: the profile whose table this is; only ``ci`` has a seed study, other profiles borrow it.
        root: the checkout (default: found from the working directory).

    Returns:
        column -> :class:`unet_repro.results.Stochastic` (or ``"measured"``).
    """
    from ..results import repo_root

    cols = [c for c in columns if c in METRICS]
    checkout = Path(root) if root else repo_root()
    runs = checkout / SEED_STUDY if checkout else None
    if runs is None or not runs.is_dir():
        return dict.fromkeys(cols, "measured")
    df = load_records(runs)
    tol = seed_tolerances(df, "ci")
    n = int(seed_spread(df, "ci")["n_seeds"].min())
    why = (
        f"{TOLERANCE_SDS:g} standard deviations over {n} seeds of the ci profile (results/seed_study, "
        "studies/ci_seeds.toml): on one machine type a seeded run repeats exactly; other hardware rounds "
        "differently and training amplifies that about as much as a change of seed"
    )
    if profile != "ci":
        why += f"; the {profile} profile has no seed study of its own and borrows the ci one"
    return {c: Stochastic(tol[c], why) for c in cols}
