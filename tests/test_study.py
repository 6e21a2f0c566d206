"""Aggregating sweep records: spreads, tolerances and the verdict rule, on hand-made records."""

from __future__ import annotations

import json

import pytest

from unet_repro.study.records import (
    METRICS,
    load_records,
    paired_effects,
    read_records,
    seed_spread,
    seed_study_kinds,
    seed_tolerances,
    study_cost,
    verdict,
)


def _write(folder, name, seed, pixel, status="ok"):
    scores = dict.fromkeys(METRICS, 0.5)
    scores["pixel_error"] = pixel
    rec = {
        "run_id": f"{name}-s{seed}",
        "name": name,
        "seed": seed,
        "status": status,
        "metrics": {"test": {"none": scores}, "validation": {"none": dict.fromkeys(METRICS, 0.9)}},
    }
    (folder / f"{name}-s{seed}.json").write_text(json.dumps(rec))


@pytest.fixture()
def runs(tmp_path):
    for seed, p in enumerate([0.10, 0.12, 0.11, 0.13]):
        _write(tmp_path, "base", seed, p)
        _write(tmp_path, "worse", seed, p + 0.02 + 0.001 * seed)  # a consistent, paired increase
        _write(tmp_path, "noisy", seed, p + (0.03 if seed % 2 else -0.03))
    _write(tmp_path, "broken", 0, 0.0, status="failed")
    return tmp_path


def test_load_records_keeps_finished_runs_per_block(runs):
    df = load_records(runs)
    assert set(df["name"]) == {"base", "worse", "noisy"}
    assert len(df) == 3 * 4 * 2
    assert list(df[df["name"] == "base"]["seed"].unique()) == [0, 1, 2, 3]


def test_read_records_filters_by_status_in_file_order(runs):
    assert [r["run_id"] for r in read_records(runs, statuses=("failed",))] == ["broken-s0"]
    every = read_records(runs, statuses=None)
    assert len(every) == 13 and [r["run_id"] for r in every] == sorted(r["run_id"] for r in every)
    assert len(read_records(runs)) == 12


def test_seed_spread_and_tolerance(runs):
    df = load_records(runs)
    spread = seed_spread(df, "base").set_index("metric")
    assert spread.loc["pixel_error", "mean"] == pytest.approx(0.115)
    sd = spread.loc["pixel_error", "sd"]
    assert sd == pytest.approx(0.012909944, rel=1e-6)
    tol = seed_tolerances(df, "base")
    assert tol["pixel_error"] == pytest.approx(0.026)  # 2 sd = 0.02582, rounded up to two digits
    assert tol["pixel_error"] >= 2 * sd
    assert tol["v_rand"] == 0.0
    with pytest.raises(ValueError, match="no records"):
        seed_spread(df, "base", block="nowhere")


def test_paired_effects_use_seed_pairs(runs):
    eff = paired_effects(load_records(runs), "base").set_index(["name", "metric"])
    worse = eff.loc[("worse", "pixel_error")]
    assert worse["n_pairs"] == 4 and worse["mean_diff"] == pytest.approx(0.0215)
    assert worse["verdict"] == "hurts"  # unpaired, the seed spread (sd 0.013) would hide it
    assert eff.loc[("noisy", "pixel_error"), "verdict"] == "within seed noise"
    assert eff.loc[("worse", "v_rand"), "verdict"] == "within seed noise"


@pytest.mark.parametrize(
    "metric, diff, se, n, expected",
    [
        ("pixel_error", -0.01, 0.001, 3, "helps"),
        ("pixel_error", 0.01, 0.001, 3, "hurts"),
        ("v_rand", 0.01, 0.001, 3, "helps"),
        ("v_info", -0.01, 0.001, 3, "hurts"),
        ("rand_error", -0.01, 0.006, 3, "within seed noise"),
        ("rand_error", -0.01, 0.001, 2, "within seed noise"),
    ],
)
def test_verdict_rule(metric, diff, se, n, expected):
    assert verdict(metric, diff, se, n) == expected


def test_seed_study_kinds_give_every_table_the_same_tolerance(runs, tmp_path):
    from unet_repro.results import Stochastic
    from unet_repro.study.records import SEED_STUDY

    root = tmp_path / "checkout"
    (root / SEED_STUDY).mkdir(parents=True)
    for f in runs.glob("base-*.json"):
        (root / SEED_STUDY / f.name.replace("base", "ci")).write_text(f.read_text().replace('"base', '"ci'))
    kinds = seed_study_kinds(["pixel_error", "rand_error", "tile"], "ci", root=root)
    assert set(kinds) == {"pixel_error", "rand_error"}
    assert isinstance(kinds["pixel_error"], Stochastic) and kinds["pixel_error"].atol == pytest.approx(0.026)
    assert "4 seeds" in kinds["pixel_error"].why
    assert seed_study_kinds(["pixel_error"], "paper", root=root)["pixel_error"].atol == pytest.approx(0.026)
    assert "borrows" in seed_study_kinds(["pixel_error"], "paper", root=root)["pixel_error"].why
    # outside a checkout there is no seed study and nothing to compare with
    assert seed_study_kinds(["pixel_error"], "ci", root=tmp_path / "nowhere") == {"pixel_error": "measured"}


def test_study_cost_counts_resumed_and_threaded_runs(tmp_path):
    """Core-hours: the longer of wall and train + predict time (a resumed run), times threads."""
    runs = tmp_path / "runs"
    runs.mkdir()
    recs = {
        "plain": {
            "device": "cpu",
            "threads": 1,
            "wall_seconds": 3600.0,
            "train_seconds": 3000.0,
            "predict_seconds": 60.0,
        },
        "resumed": {
            "device": "cpu",
            "threads": 1,
            "wall_seconds": 600.0,
            "train_seconds": 3600.0,
            "predict_seconds": 0.0,
        },
        "threaded": {"device": "cpu", "threads": 2, "wall_seconds": 1800.0},
        "diverged": {"status": "diverged", "wall_seconds": 360.0, "train_seconds": None},
    }
    for name, rec in recs.items():
        (runs / f"{name}.json").write_text(json.dumps({"run_id": name, "status": "ok", **rec}))
    cost = study_cost([runs]).set_index("device")
    assert list(cost["study"]) == ["runs", "runs"]
    assert cost.loc["cpu", "runs"] == 3 and cost.loc["cpu", "core_hours"] == pytest.approx(3.0)
    assert cost.loc["not recorded", "runs"] == 1 and cost.loc["not recorded", "core_hours"] == pytest.approx(0.1)
