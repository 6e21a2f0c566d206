"""Results tables: writing, tolerance sidecars, and the comparison rules reproduce applies."""

from __future__ import annotations

import pandas as pd
import pytest

from unet_repro.results import Stochastic, compare_tables, default_results_dir, read_tolerances, write_table


def _tables(tmp_path, fresh_values, old_values, kinds):
    old = write_table(pd.DataFrame(old_values), "t", tmp_path / "old", kinds)
    new = write_table(pd.DataFrame(fresh_values), "t", tmp_path / "new", kinds)
    return new, old


def test_sidecar_round_trip(tmp_path):
    path = write_table(
        pd.DataFrame({"k": ["a"], "x": [1.0], "t": [2.0], "s": [0.5]}),
        "t",
        tmp_path,
        {"t": "measured", "s": Stochastic(0.01, "seed noise")},
    )
    assert path.name == "t.csv" and (tmp_path / "t.tolerances.csv").is_file()
    assert read_tolerances(path) == {"k": "exact", "x": "exact", "t": "measured", "s": Stochastic(0.01, "seed noise")}


def test_identical_tables_pass(tmp_path):
    vals = {"k": ["a", "b"], "x": [31030658, 3], "loss": [0.25, 0.5]}
    checks = compare_tables(*_tables(tmp_path, vals, vals, {"loss": Stochastic(0.01)}))
    assert checks and all(c.ok for c in checks)


def test_exact_mismatch_fails(tmp_path):
    new, old = _tables(tmp_path, {"k": ["a"], "x": [31030659]}, {"k": ["a"], "x": [31030658]}, {})
    bad = [c for c in compare_tables(new, old) if not c.ok]
    assert [(c.row, c.column, c.committed, c.fresh) for c in bad] == [("a", "x", "31030658", "31030659")]


@pytest.mark.parametrize("fresh,ok", [(0.254, True), (0.2601, False), (0.2399, False)])
def test_stochastic_tolerance(tmp_path, fresh, ok):
    new, old = _tables(tmp_path, {"k": ["a"], "v": [fresh]}, {"k": ["a"], "v": [0.25]}, {"v": Stochastic(0.01)})
    (check,) = [c for c in compare_tables(new, old) if c.column == "v"]
    assert check.ok is ok and check.kind == "stochastic"


def test_measured_is_reported_not_compared(tmp_path):
    new, old = _tables(tmp_path, {"k": ["a"], "s": [99.0]}, {"k": ["a"], "s": [1.0]}, {"s": "measured"})
    (check,) = [c for c in compare_tables(new, old) if c.column == "s"]
    assert check.ok and check.kind == "measured" and check.fresh == "99"


def test_committed_rules_win_over_fresh_rules(tmp_path):
    """A fresh run cannot loosen its own tolerance: the committed sidecar decides."""
    old = write_table(pd.DataFrame({"k": ["a"], "v": [0.25]}), "t", tmp_path / "old", {"v": Stochastic(0.001)})
    new = write_table(pd.DataFrame({"k": ["a"], "v": [0.3]}), "t", tmp_path / "new", {"v": Stochastic(1.0)})
    assert not all(c.ok for c in compare_tables(new, old))


def test_shape_changes_fail(tmp_path):
    new, old = _tables(tmp_path, {"k": ["a", "b"]}, {"k": ["a"]}, {})
    assert not any(c.ok for c in compare_tables(new, old))
    new, old = _tables(tmp_path, {"k": ["a"], "y": [1]}, {"k": ["a"], "x": [1]}, {})
    assert not any(c.ok for c in compare_tables(new, old))


def test_bad_kinds_are_refused(tmp_path):
    df = pd.DataFrame({"x": [1]})
    with pytest.raises(ValueError, match="not in the table"):
        write_table(df, "t", tmp_path, {"y": "exact"})
    with pytest.raises(ValueError, match="kind"):
        write_table(df, "t", tmp_path, {"x": "approx"})
    with pytest.raises(ValueError, match="tolerance"):
        write_table(df, "t", tmp_path, {"x": Stochastic(float("nan"))})


def test_default_results_dir(tmp_path, monkeypatch):
    assert default_results_dir("ci", tmp_path / "x") == tmp_path / "x"
    assert (tmp_path / "x" / "figures").is_dir()
    with pytest.raises(ValueError, match="profile"):
        default_results_dir("gpu")
    monkeypatch.chdir(tmp_path)
    assert default_results_dir("paper") == tmp_path / "results" / "paper"
