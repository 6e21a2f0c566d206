"""The sweep runner: grid validation before any run, one JSON per run, resume, failures, Dask."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from unet_repro.data.protocol import PROTOCOL, Protocol, check_training_slices
from unet_repro.results import code_commit
from unet_repro.study.grid import Grid, SweepError, load_grid
from unet_repro.study.sweep import pending, run_sweep

# Tiny runs: 2 channels, 188-px training tiles, 2 steps; the 572 evaluation tile keeps prediction cheap.
TINY = dict(base_channels=2, tile=188, eval_tile=572, iterations=2, checkpoint_every=0, threads=1)


def test_protocol_blocks_are_disjoint_and_cover_the_stack():
    train = PROTOCOL.choosing_train_slices()
    assert train == list(range(20))
    assert PROTOCOL.validation_slices == [20, 21, 22, 23, 24]
    assert PROTOCOL.test_slices == [25, 26, 27, 28, 29]
    assert PROTOCOL.final_train_slices() == list(range(25))
    assert Protocol(gap=(24,)).final_train_slices() == list(range(24))
    with pytest.raises(ValueError, match="overlap"):
        Protocol(validation=(20, 26))


@pytest.mark.parametrize(
    "slices, choosing, ok",
    [
        (range(20), True, True),
        ([3, 22], True, False),
        ([3, 22], False, True),
        ([27], False, False),
        ([30], True, False),
    ],
)
def test_check_training_slices(slices, choosing, ok):
    if ok:
        check_training_slices(slices, choosing=choosing)
    else:
        with pytest.raises(ValueError):
            check_training_slices(slices, choosing=choosing)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "typo", "learning_rate": 0.1}, r"grid entry 1 \('typo'\): unknown field\(s\) \['learning_rate'\]"),
        ({"name": "small", "tile": 100}, r"grid entry 1 \('small'\): .*100"),
        ({"name": "leak", "train_slices": [0, 1, 26]}, r"grid entry 1 \('leak'\): training slices \[26\]"),
        ({"name": "peek", "train_slices": [0, 21]}, r"grid entry 1 \('peek'\): training slices \[21\]"),
        ({"name": "baseline"}, r"grid entry 1 \('baseline'\): the name 'baseline' is used twice"),
        ({"name": "tta", "tta_modes": ["d8"]}, r"grid entry 1 \('tta'\): tta_modes"),
        ({"lr": 0.1}, r"grid entry 1: needs a 'name'"),
    ],
)
def test_bad_grid_fails_before_any_run(entry, message):
    with pytest.raises(SweepError, match=message):
        Grid(base=TINY, entries=[{"name": "baseline"}, entry])


def test_cli_bad_grid_is_one_line_exit_2(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[base]\ntile = 100\n[[config]]\nname = "x"\n')
    out = subprocess.run(
        [sys.executable, "-m", "unet_repro.study.sweep", str(grid), "--runs-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: grid entry 0 ('x')"), out.stderr
    assert not (tmp_path / "r").exists()


def test_load_grid_reads_toml(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(
        'seeds = [3, 4]\n[base]\nbase_channels = 2\n[[config]]\nname = "a"\n'
        '[[config]]\nname = "b"\naugment = false\nseeds = [5]\n'
    )
    grid = load_grid(path)
    assert [s.run_id for s in grid.specs] == ["a-s3", "a-s4", "b-s5"]
    assert grid.specs[2].config["augment"] is False and grid.specs[0].config["threads"] == 1
    assert list(grid.specs[0].config["train_slices"]) == PROTOCOL.choosing_train_slices()


def test_pending_runs_seed_by_seed_and_skips_finished(tmp_path):
    grid = Grid(base=TINY, entries=[{"name": "a"}, {"name": "b"}, {"name": "c", "seeds": [1]}], seeds=(0, 1))
    assert [s.run_id for s in pending(grid, tmp_path)] == ["a-s0", "b-s0", "a-s1", "b-s1", "c-s1"]
    record = {"status": "ok", "config": dict(grid.specs[0].config), "metrics": {"test": {"none": {}}}}
    (tmp_path / "a-s0.json").write_text(json.dumps(record))
    assert [s.run_id for s in pending(grid, tmp_path, only=["a"])] == ["a-s1"]


@pytest.mark.slow
def test_tiny_sweep_writes_records_resumes_and_records_failures(isbi, tmp_path):
    grid = Grid(
        base=TINY,
        entries=[
            {"name": "base", "tta_modes": ["none", "rot4"]},
            {"name": "explodes", "lr": 1e30, "seeds": [0]},
            {"name": "crashes", "loss_normalize": "bogus", "seeds": [0]},
        ],
        seeds=(0, 1),
    )
    runs, work = tmp_path / "runs", tmp_path / "work"
    recs = run_sweep(grid, runs, work, workers=2, progress=False)
    assert sorted(r["run_id"] for r in recs) == ["base-s0", "base-s1", "crashes-s0", "explodes-s0"]
    ok = json.loads((runs / "base-s0.json").read_text())
    assert ok["status"] == "ok" and ok["config"]["seed"] == 0 and ok["torch"]
    assert ok["commit"] == code_commit() and (ok["commit"] is None or len(ok["commit"].split("+")[0]) == 40)
    for block in ("validation", "test"):
        for mode in ("none", "rot4"):
            scores = ok["metrics"][block][mode]
            assert set(scores) == {"pixel_error", "warping_error", "rand_error", "v_rand", "v_info"}
            assert all(0.0 <= v <= 1.0 for v in scores.values())
    # two seeds give two different models
    other = json.loads((runs / "base-s1.json").read_text())
    assert other["metrics"]["test"]["none"] != ok["metrics"]["test"]["none"]
    bad = json.loads((runs / "explodes-s0.json").read_text())
    assert bad["status"] == "diverged" and "nan" in bad["error"]  # a result: this learning rate diverges
    assert (bad["device"], bad["threads"], bad["torch"], bad["commit"]) == (
        ok["device"],
        ok["threads"],
        ok["torch"],
        ok["commit"],
    )
    crash = json.loads((runs / "crashes-s0.json").read_text())
    assert crash["status"] == "failed" and "ValueError" in crash["error"] and "bogus" in crash["error"]
    # resume: finished (and diverged) runs are skipped, the failed one is retried (and fails again)
    again = run_sweep(grid, runs, work, workers=1, progress=False)
    assert [r["run_id"] for r in again] == ["crashes-s0"]
    # a record of another configuration under the same name is an error, not silently reused
    changed = Grid(base={**TINY, "iterations": 3}, entries=[{"name": "base"}], seeds=(0,))
    with pytest.raises(SweepError, match="another configuration"):
        run_sweep(changed, runs, work, progress=False)


@pytest.mark.slow
def test_sweep_records_the_heldout_curve_of_a_curve_grid(isbi, tmp_path):
    grid = Grid(base={**TINY, "checkpoint_every": 1}, entries=[{"name": "c"}], seeds=(0,), curve=True)
    (rec,) = run_sweep(grid, tmp_path / "runs", tmp_path / "work", workers=1, progress=False)
    curve = rec["heldout_curve"]
    assert (curve["block"], curve["slices"]) == ("validation", PROTOCOL.validation_slices)
    assert [r["step"] for r in curve["rows"]] == [1, 2]
    # the last point is the finished model on the validation block, scored as the record scores it
    for metric, value in rec["metrics"]["validation"]["none"].items():
        assert curve["rows"][-1][metric] == pytest.approx(value, abs=1e-7), metric
    plain = run_sweep(
        Grid(base=TINY, entries=[{"name": "p"}], seeds=(0,)), tmp_path / "runs", tmp_path / "w2", progress=False
    )
    assert "heldout_curve" not in plain[0]


@pytest.mark.slow
def test_sweep_on_a_dask_local_cluster(isbi, tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    grid = Grid(base=TINY, entries=[{"name": "base"}], seeds=(0,))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        recs = run_sweep(grid, tmp_path / "runs", tmp_path / "work", scheduler=cl.scheduler_address, progress=False)
    assert [r["status"] for r in recs] == ["ok"], recs
    # the same run locally gives the same record (CPU runs are deterministic)
    local = run_sweep(grid, tmp_path / "runs2", tmp_path / "work2", workers=1, progress=False)
    assert local[0]["metrics"] == recs[0]["metrics"]
