"""Notebook 06's primary study: the pre-registration, the rule (simulated), the table and its order in git."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from unet_repro.study import primary as P
from unet_repro.study.grid import read_toml
from unet_repro.study.records import METRICS

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "results" / "06_ablations" / "runs"
ALL_CELL = {"pixel_error": 0.11, "warping_error": 0.03, "rand_error": 0.9, "v_rand": 0.09, "v_info": 0.0}


def test_holm_matches_the_step_down_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    np.testing.assert_allclose(P.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    assert P.holm([0.6, 0.9])[1] == 1.0  # capped at 1


@pytest.mark.parametrize(
    ("diffs", "lower_is_better", "expected"),
    [
        (np.linspace(0.05, 0.07, 10), False, "helps"),  # a score rises
        (np.linspace(0.05, 0.07, 10), True, "hurts"),  # an error rises
        (-np.linspace(0.05, 0.07, 10), True, "helps"),
        (np.array([0.003, -0.002, 0.001, -0.001, 0.002, -0.003, 0.0, 0.001, -0.001, 0.0]), False, "no effect larger"),
        (np.array([0.09, -0.08, 0.1, -0.07, 0.05, -0.1, 0.08, -0.06, 0.02, -0.01]), False, "no effect detected"),
        (np.array([0.5]), False, "no effect detected"),  # one pair: no test, no interval
    ],
)
def test_decide_gives_the_registered_verdicts(diffs, lower_is_better, expected):
    out = P.decide([diffs], [0.02], lower_is_better=lower_is_better)
    assert out["verdict"].iloc[0].startswith(expected)


def test_decide_interval_is_the_t_interval():
    d = np.array([0.01, 0.03, 0.02, 0.05, 0.04])
    row = P.decide([d], [0.02], lower_is_better=False).iloc[0]
    half = 2.7764451051977987 * d.std(ddof=1) / math.sqrt(5)  # t(0.975, 4 degrees of freedom)
    assert row.ci_low == pytest.approx(d.mean() - half) and row.ci_high == pytest.approx(d.mean() + half)


def test_the_rule_holds_its_error_rate_and_finds_real_effects():
    """Under no effect, at most 5% of simulated 10-claim studies give any verdict (up to 3 Monte Carlo
    standard errors); an effect of 3 seed standard deviations is found in most claims."""
    n = 1000
    fwer, _ = P.simulate_rule(n_studies=n)
    assert fwer <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / n), f"the rule gives a verdict in {fwer:.3f} of null studies"
    _, power = P.simulate_rule(n_studies=100, effect_sds=3.0)
    assert power > 0.9, f"an effect of 3 seed SDs is found in only {power:.2f} of claims"


def test_collapse_rule():
    rec = {"status": "ok", "metrics": {"test": {"none": {"pixel_error": 0.105}}}}
    assert P.collapsed(rec, 0.11, 0.01)
    assert not P.collapsed({**rec, "metrics": {"test": {"none": {"pixel_error": 0.099}}}}, 0.11, 0.01)
    assert P.collapsed({"status": "diverged"}, 0.11, 0.01)


def _record(name: str, seed: int, v_rand: float, status: str = "ok", modes=("none",)) -> dict:
    scores = dict.fromkeys(METRICS, 0.05) | {"v_rand": v_rand}
    metrics = {"test": {m: scores | {"v_rand": v_rand + 0.01 * (m != "none")} for m in modes}}
    return {"name": name, "seed": seed, "status": status} | ({"metrics": metrics} if status == "ok" else {})


def test_claim_differences_pair_by_seed_score_diverged_runs_as_all_cell_and_read_averaging(tmp_path):
    recs = [_record("baseline", s, 0.8, modes=("none", "d4")) for s in (0, 1, 2)]
    recs += [_record("change", 0, 0.85), _record("change", 1, 0.0, status="diverged"), _record("change", 5, 0.9)]
    for r in recs:
        (tmp_path / f"{r['name']}-s{r['seed']}.json").write_text(json.dumps(r))
    rule = P.Rule("v_rand", "test", "none", 0.05, 0.95, 3, 0.01)
    claims = (
        P.Claim("change", "baseline", "c", "s", "hurts", 0.02),
        P.Claim("tta_d4", "baseline", "a", "s", "helps", 0.02),
    )
    diffs = P.claim_differences(tmp_path, P.Registration(rule, claims, (0, 1, 2)), ALL_CELL)
    change = diffs[diffs.claim == "change"].set_index("seed")
    assert list(change.index) == [0, 1]  # seed 5 has no baseline and is outside the registration's seeds
    assert change.loc[0, "v_rand"] == pytest.approx(0.05)
    assert change.loc[1, "v_rand"] == pytest.approx(ALL_CELL["v_rand"] - 0.8) and change.loc[1, "collapsed"]
    tta = diffs[diffs.claim == "tta_d4"]
    assert len(tta) == 3 and np.allclose(tta["v_rand"], 0.01)
    table = P.primary_table(diffs, P.Registration(rule, claims, (0, 1, 2)), "tiny")
    assert list(table["verdict"]) == ["pending (2 of 3 seed pairs)", "pending (3 of 3 seed pairs)"]
    assert list(table["collapsed"]) == [1, 0]


# --- the committed pre-registration -------------------------------------------------------------------


def test_registration_names_ten_claims_on_entries_of_its_own_grid():
    reg = P.load_registration(ROOT / P.REGISTRATION)
    doc = read_toml(ROOT / P.REGISTRATION)
    entries = {c["name"]: c for c in doc["config"]}
    assert len(reg.claims) == 10 and reg.rule.metric == "v_rand" and reg.rule.min_pairs >= 10
    assert len(reg.seeds) >= reg.rule.min_pairs
    for c in reg.claims:
        if c.name.startswith("tta_"):
            assert c.name[4:] in entries[c.reference]["tta_modes"], c.name
        else:
            assert c.name in entries, c.name
    # the same baseline as the exploratory study, so their records (seeds 0-2) are shared
    ablations = read_toml(ROOT / "studies" / "06_ablations.toml")
    assert doc["base"] == ablations["base"]


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def registration_commit() -> str:
    try:
        first = _git("log", "--diff-filter=A", "--format=%H", "--", str(P.REGISTRATION)).splitlines()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    if not first:
        pytest.skip("the registration is not committed in this checkout's history")
    return first[-1]


def test_registration_is_unchanged_since_it_was_committed(registration_commit):
    committed = _git("show", f"{registration_commit}:{P.REGISTRATION}")
    assert (ROOT / P.REGISTRATION).read_text().strip() == committed, "the pre-registration may not change"


def test_every_new_record_of_the_study_was_trained_after_the_registration(registration_commit):
    reg = P.load_registration(ROOT / P.REGISTRATION)
    names = {c.name for c in reg.claims} | {c.reference for c in reg.claims}
    for path in sorted(RUNS.glob("*.json")):
        rec = json.loads(path.read_text())
        if rec["name"] not in names or "commit" not in rec:  # seeds 0-2 predate commit records
            continue
        commit = (rec["commit"] or "").split("+")[0]
        assert commit and not rec["commit"].endswith("+dirty"), f"{path.name}: trained from uncommitted code"
        ok = subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", registration_commit, commit])
        assert ok.returncode == 0, f"{path.name} was trained at {commit[:10]}, before the pre-registration"


def test_seeds_0_to_2_pair_because_training_is_unchanged_since_they_ran(registration_commit):
    """The registered check: the baseline's seed 0 retrained after the registration reproduces its record."""
    (check,) = [json.loads(p.read_text()) for p in sorted((RUNS.parent / "runs_check").glob("*.json"))]
    old = json.loads((RUNS / f"{check['run_id']}.json").read_text())
    assert "commit" not in old  # trained before records named their commit
    ok = subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", registration_commit, check["commit"]])
    assert ok.returncode == 0 and not check["commit"].endswith("+dirty")
    assert check["metrics"] == old["metrics"] and check["loss_curve"] == old["loss_curve"]
