"""Notebook 06's primary study: the paper's claims tested by a rule fixed before the runs.

``studies/06_primary.toml`` is the pre-registration: ten claims (a change and the configuration it is paired
with), one primary metric, a practical-equivalence margin per claim, and the rule, committed before any of
the study's new runs. This module reads it (:func:`load_registration`) and applies the rule to the committed
records (:func:`primary_table`):

- per claim, the paired t-test on the primary metric (two-sided, n - 1 degrees of freedom) with its 95%
  t-interval, and the exact Wilcoxon signed-rank test beside it;
- Holm's step-down correction across the claims (family-wise alpha 0.05);
- "helps" / "hurts" only when the Holm-adjusted p is below alpha; otherwise "no effect detected", or "no
  effect larger than <margin>" when the whole interval lies within the margin (:func:`decide`);
- how many runs of each configuration collapsed (diverged, or scored within a stated distance of predicting
  "all cell"): collapsed runs stay in the pairs.

:func:`simulate_rule` runs the same :func:`decide` on simulated studies, so the rule's false-verdict rate and
power are measured, not asserted. :mod:`unet_repro.study.ledger` turns the table into the claims ledger that the
README and notebook 06 open with.

Holm's correction is written here (six lines) rather than taken from statsmodels, which would be a large
dependency for one function; the t and Wilcoxon tests are SciPy's. Imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .grid import read_toml
from .records import LOWER_IS_BETTER, METRICS, pairs_text, read_records, t_half_width

__all__ = [
    "Claim",
    "Rule",
    "Registration",
    "REGISTRATION",
    "HELPS",
    "HURTS",
    "PENDING",
    "load_registration",
    "holm",
    "decide",
    "simulate_rule",
    "collapsed",
    "claim_differences",
    "primary_table",
    "run_scale",
    "forest_plot",
]

#: the committed pre-registration, relative to the checkout
REGISTRATION = Path("studies") / "06_primary.toml"
HELPS, HURTS, NO_EFFECT = "helps", "hurts", "no effect detected"
#: the verdict of every claim while any claim has fewer seed pairs than registered
PENDING = "pending"
#: the start of the verdict given when the whole interval lies within the margin ("no effect larger than 0.02")
WITHIN_MARGIN = "no effect larger than"
_LABEL = {
    "pixel_error": "pixel",
    "warping_error": "warping",
    "rand_error": "Rand",
    "v_rand": "V_rand",
    "v_info": "V_info",
}


@dataclass(frozen=True)
class Claim:
    """One pre-registered claim: ``name`` (a grid entry, or ``tta_<mode>`` for test-time averaging of the
    reference's own models) against ``reference``; ``expect`` is the direction its source claims."""

    name: str
    reference: str
    change: str
    source: str
    expect: str
    margin: float


@dataclass(frozen=True)
class Rule:
    """The registered rule (see ``[rule]`` of the registration)."""

    metric: str
    block: str
    tta: str
    alpha: float
    interval: float
    min_pairs: int
    collapse_distance: float


@dataclass(frozen=True)
class Registration:
    rule: Rule
    claims: tuple[Claim, ...]
    seeds: tuple[int, ...]


def load_registration(path: str | Path = REGISTRATION) -> Registration:
    """Read a pre-registration (a sweep grid with ``[rule]`` and ``[[claim]]`` tables)."""
    doc = read_toml(path)
    r = doc["rule"]
    rule = Rule(
        metric=r["metric"],
        block=r["block"],
        tta=r["tta"],
        alpha=float(r["alpha"]),
        interval=float(r["interval"]),
        min_pairs=int(r["min_pairs"]),
        collapse_distance=float(r["collapse_distance"]),
    )
    if rule.metric not in METRICS:
        raise ValueError(f"{path}: rule.metric {rule.metric!r} is not one of {list(METRICS)}")
    fields = ("name", "reference", "change", "source", "expect", "margin")
    claims = tuple(Claim(**{k: c[k] for k in fields}) for c in doc["claim"])
    bad = [c.name for c in claims if c.expect not in (HELPS, HURTS)]
    if bad:
        raise ValueError(f"{path}: claims {bad} must expect 'helps' or 'hurts'")
    return Registration(rule, claims, tuple(int(s) for s in doc["seeds"]))


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control), in the order given."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def decide(
    diffs: Sequence[np.ndarray],
    margins: Sequence[float],
    *,
    lower_is_better: bool,
    alpha: float = 0.05,
    interval: float = 0.95,
) -> pd.DataFrame:
    """The registered rule on a family of claims, each given as its paired differences (change - reference).

    Returns:
        One row per claim: ``n_pairs, mean_diff, ci_low, ci_high, t, p, p_holm, verdict``. The verdict is
        "helps"/"hurts" when ``p_holm < alpha`` (by the sign, oriented by ``lower_is_better``), else "no
        effect larger than <margin>" when the interval lies within +-margin, else "no effect detected".
    """
    n = np.array([len(d) for d in diffs])
    mean = np.array([np.mean(d) if len(d) else math.nan for d in diffs], dtype=float)
    sd = np.array([np.std(d, ddof=1) if len(d) > 1 else math.nan for d in diffs], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = sd / np.sqrt(n)
        t = np.where(se > 0, mean / se, math.nan)  # one pair, or identical differences: no test
    p = 2 * stats.t.sf(np.abs(t), df=np.maximum(n - 1, 1))
    half = t_half_width(np.where(se > 0, se, math.nan), n, interval)
    out = pd.DataFrame({"n_pairs": n, "mean_diff": mean, "ci_low": mean - half, "ci_high": mean + half, "t": t, "p": p})
    out["p_holm"] = holm(out["p"].fillna(1.0))
    verdicts = []
    for row, margin in zip(out.itertuples(), margins, strict=True):
        if row.p_holm < alpha:
            better = row.mean_diff < 0 if lower_is_better else row.mean_diff > 0
            verdicts.append(HELPS if better else HURTS)
        elif -margin <= row.ci_low and row.ci_high <= margin:  # NaN (no interval) compares False
            verdicts.append(f"{WITHIN_MARGIN} {margin:g}")
        else:
            verdicts.append(NO_EFFECT)
    out["verdict"] = verdicts
    return out


def simulate_rule(
    *,
    n_claims: int = 10,
    n_pairs: int = 10,
    effect_sds: float = 0.0,
    n_studies: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Run :func:`decide` on simulated studies with Gaussian paired differences (sd 1).

    Every claim has the same true effect, ``effect_sds`` seed standard deviations.

    Returns:
        ``(studies with at least one helps/hurts verdict, claims given a verdict)``, both as fractions.
    """
    rng = np.random.default_rng(seed)
    any_verdict, verdicts = 0, 0
    for _ in range(n_studies):
        diffs = rng.normal(effect_sds, 1.0, size=(n_claims, n_pairs))
        v = decide(list(diffs), [0.0] * n_claims, lower_is_better=False, alpha=alpha)["verdict"]
        k = int(v.isin([HELPS, HURTS]).sum())
        any_verdict += k > 0
        verdicts += k
    return any_verdict / n_studies, verdicts / (n_studies * n_claims)


def collapsed(record: Mapping, all_cell_pixel: float, distance: float, block: str = "test", tta: str = "none") -> bool:
    """A run collapsed: it diverged, or its pixel error on ``block`` is within ``distance`` of "all cell"."""
    if record.get("status") == "diverged":
        return True
    return record["metrics"][block][tta]["pixel_error"] >= all_cell_pixel - distance


def _arm(claim: Claim, rule: Rule) -> tuple[str, str]:
    """The (grid entry, test-time mode) a claim's change is scored from: ``tta_<mode>`` is the reference's
    own models averaged over ``<mode>``; every other change is its own entry without averaging."""
    if claim.name.startswith("tta_"):
        return claim.reference, claim.name.removeprefix("tta_")
    return claim.name, rule.tta


def _scores(records: Sequence[Mapping], name: str, tta: str, rule: Rule, all_cell: Mapping[str, float]) -> pd.DataFrame:
    """Per seed, the five scores of entry ``name`` at test-time mode ``tta`` on the registered block (a
    diverged run scored as the all-cell prediction) and whether the run collapsed."""
    rows = [
        {
            "seed": rec["seed"],
            **(all_cell if rec.get("status") == "diverged" else rec["metrics"][rule.block][tta]),
            "collapsed": collapsed(rec, all_cell["pixel_error"], rule.collapse_distance, rule.block, tta),
        }
        for rec in records
        if rec["name"] == name and rec.get("status") in ("ok", "diverged")
    ]
    return pd.DataFrame(rows, columns=["seed", *METRICS, "collapsed"]).set_index("seed").sort_index()


def claim_differences(runs_dir: str | Path, registration: Registration, all_cell: Mapping[str, float]) -> pd.DataFrame:
    """Every claim's paired differences, seed by seed, on all five metrics.

    Args:
        runs_dir: the committed sweep records (``results/06_ablations/runs``).
        registration: the pre-registration (:func:`load_registration`).
        all_cell: the five scores of predicting "all cell" on the registered block.

    Returns:
        One row per (claim, seed) among the registration's seeds where both arms have a record: ``claim,
        seed``, the difference (change - reference) of each metric, and ``collapsed`` / ``reference_collapsed``.
    """
    records = read_records(runs_dir, statuses=None)
    rule, parts = registration.rule, []
    for claim in registration.claims:
        change = _scores(records, *_arm(claim, rule), rule, all_cell)
        ref = _scores(records, claim.reference, rule.tta, rule, all_cell)
        seeds = sorted(set(change.index) & set(ref.index) & set(registration.seeds))
        diff = change.loc[seeds, list(METRICS)] - ref.loc[seeds, list(METRICS)]
        diff["collapsed"] = change.loc[seeds, "collapsed"]
        diff["reference_collapsed"] = ref.loc[seeds, "collapsed"]
        parts.append(diff.reset_index().assign(claim=claim.name))
    out = pd.concat(parts, ignore_index=True)
    return out[["claim", "seed", *METRICS, "collapsed", "reference_collapsed"]]


def _wilcoxon(d: np.ndarray) -> float:
    """Two-sided exact Wilcoxon signed-rank p (SciPy's normal approximation where zeros or ties forbid exact)."""
    if len(d) < 2 or not np.any(d):
        return math.nan
    return float(stats.wilcoxon(d, alternative="two-sided").pvalue)


def primary_table(diffs: pd.DataFrame, registration: Registration, scale: str) -> pd.DataFrame:
    """The primary study's table: one row per claim on the registered metric, with the registered verdict.

    Args:
        diffs: :func:`claim_differences`.
        registration: the pre-registration.
        scale: where the runs were made, e.g. ``"8 channels, 1000 steps, CPU"`` (goes into every row).

    Returns:
        Columns ``claim, change, source, expect, reference, metric, n_pairs, mean_diff, ci_low, ci_high, t,
        p, p_holm, wilcoxon_p, wilcoxon_p_holm, tests_agree, margin, collapsed, reference_collapsed,
        verdict, scale``. While any claim has fewer than the registered seed pairs the family is incomplete,
        and every verdict reads "pending (k of N seed pairs)" with the interval so far.
    """
    rule = registration.rule
    groups = [diffs.loc[diffs["claim"] == c.name] for c in registration.claims]
    d = [g[rule.metric].to_numpy(float) for g in groups]
    out = decide(
        d,
        [c.margin for c in registration.claims],
        lower_is_better=LOWER_IS_BETTER[rule.metric],
        alpha=rule.alpha,
        interval=rule.interval,
    )
    info = pd.DataFrame([c.__dict__ for c in registration.claims]).rename(columns={"name": "claim"})
    out = pd.concat([info, out], axis=1)
    out["metric"] = rule.metric
    out["wilcoxon_p"] = [_wilcoxon(x) for x in d]
    out["wilcoxon_p_holm"] = holm(out["wilcoxon_p"].fillna(1.0))
    out["tests_agree"] = (out["p_holm"] < rule.alpha) == (out["wilcoxon_p_holm"] < rule.alpha)
    out["collapsed"] = [int(g["collapsed"].sum()) for g in groups]
    out["reference_collapsed"] = [int(g["reference_collapsed"].sum()) for g in groups]
    if int(out["n_pairs"].min()) < rule.min_pairs:
        out["verdict"] = [f"{PENDING} ({n} of {rule.min_pairs} seed pairs)" for n in out["n_pairs"]]
    out["scale"] = scale
    cols = ["claim", "change", "source", "expect", "reference", "metric", "n_pairs", "mean_diff", "ci_low"]
    cols += ["ci_high", "t", "p", "p_holm", "wilcoxon_p", "wilcoxon_p_holm", "tests_agree", "margin"]
    return out[[*cols, "collapsed", "reference_collapsed", "verdict", "scale"]]


def run_scale(runs_dir: str | Path, name: str = "baseline") -> str:
    """Where and how big the runs of entry ``name`` were, e.g. ``"8 channels, 1000 steps, CPU"``."""
    recs = [r for r in read_records(runs_dir) if r["name"] == name]
    if not recs:
        raise ValueError(f"no finished records of {name!r} in {runs_dir}")
    channels = sorted({r["config"]["base_channels"] for r in recs})
    steps = sorted({r["config"]["iterations"] for r in recs})
    devices = sorted({"GPU" if str(r.get("device", "cpu")).startswith("cuda") else "CPU" for r in recs})
    return f"{'/'.join(map(str, channels))} channels, {'/'.join(map(str, steps))} steps, {'+'.join(devices)}"


def forest_plot(table: pd.DataFrame):  # noqa: ANN201 - a matplotlib Figure
    """The primary claims: each change minus its reference on the registered metric, 95% t-intervals, the
    margins shaded; green/red where the rule says helps/hurts, black otherwise."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(table) + 1.6))
    y = np.arange(len(table))[::-1]
    colour = {HELPS: "tab:green", HURTS: "tab:red"}
    for yi, (_, r) in zip(y, table.iterrows(), strict=True):
        ax.fill_betweenx([yi - 0.35, yi + 0.35], -r["margin"], r["margin"], color="0.9", lw=0)
        err = [[r["mean_diff"] - r["ci_low"]], [r["ci_high"] - r["mean_diff"]]]
        ax.errorbar(r["mean_diff"], yi, xerr=err, fmt="o", color=colour.get(r["verdict"], "black"), capsize=3)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{r['claim']} (expected: {r['expect']})" for _, r in table.iterrows()], fontsize=8)
    metric, n = table["metric"].iloc[0], pairs_text(table["n_pairs"])
    better = "left" if LOWER_IS_BETTER[metric] else "right"
    ax.set_xlabel(f"{metric}: change minus {'/'.join(sorted(set(table['reference'])))} (better: {better})")
    ax.set_title(
        f"Primary claims: a bar inside the grey band is no effect larger than the margin\n"
        f"(test block, 95% t-intervals over {n} seed pairs; green/red: Holm-adjusted p < 0.05)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
