"""The README quotes the committed results tables (to the digits it prints) and lists every notebook.

Every number in the "ours" columns (one per profile: ``ci`` from results/, ``cpu`` from results/cpu/) of the
README's paper-vs-ours table is parsed from the README and compared with the table cell it comes from,
formatted the way the README prints it (same decimals, same thousands separators); a number that no check
accounts for fails the test, so a new quote needs a source. The paper's numbers are compared with the paper
row of the same table.

The tables are read as committed (``git show HEAD:results/...``) when the checkout is a git repository, so
that a ``make reproduce`` on another machine, which rewrites results/ within the tolerances, does not make
the README "wrong"; the README quotes the runs of this project's machine type.
"""

from __future__ import annotations

import functools
import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _readme() -> str:
    """The README's text (read on first use, never at import time)."""
    return (ROOT / "README.md").read_text()


NUMBER = re.compile(r"\d[\d,]*\d(?:\.\d+)?(?:e-?\d+)?|\d(?:\.\d+)?(?:e-?\d+)?")

# Quotes with no committed table behind them (yet): measured speeds printed by benchmarks/, the machine
# description, and tolerances stated by the tests that check them. Each is (row title, number).
NO_TABLE = {
    ("training", "2"): "the machine (2 CPU cores)",
    ("the five ISBI metrics, 30x512x512 stack", "1e-9"): "tolerance of tests/test_metrics.py on the test vectors",
}


def _table(name: str) -> pd.DataFrame:
    proc = subprocess.run(
        ["git", "show", f"HEAD:results/{name}"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if proc.returncode == 0:
        return pd.read_csv(io.StringIO(proc.stdout))
    return pd.read_csv(ROOT / "results" / name)


HEADER = "| quantity | paper | ours: `ci` | ours: `cpu` | produced by |"
PROFILES = ("ci", "cpu")  # the README's "ours" columns


def _profile_table(profile: str, name: str) -> pd.DataFrame:
    """A committed table of ``profile``'s run: ``results/`` for ci, ``results/<profile>/`` for the others."""
    return _table(name if profile == "ci" else f"{profile}/{name}")


def _paper_vs_ours() -> dict[str, dict[str, str]]:
    """The README's paper-vs-ours table (:data:`HEADER`): row title -> its cells (paper, ci, cpu, produced)."""
    lines = _readme().splitlines()
    start = lines.index(HEADER) + 2
    rows: dict[str, dict[str, str]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        title, paper, ci, cpu, produced = (c.strip() for c in line.strip().strip("|").split("|"))
        rows[title] = {"paper": paper, "ci": ci, "cpu": cpu, "produced": produced}
    return rows


def _numbers(cell: str) -> list[str]:
    """The numbers of a README cell as printed, leaving out code spans (`isbi2012_scores`, profile names)."""
    return NUMBER.findall(re.sub(r"`[^`]*`", "", cell))


def _as_printed(quoted: str, value: float) -> str:
    """``value`` formatted the way ``quoted`` is: same decimals, thousands separators or exponent."""
    if "e" in quoted:
        return quoted if float(quoted) == value else f"{value:g}"
    if "," in quoted:
        return f"{round(value):,}"
    decimals = len(quoted.split(".")[1]) if "." in quoted else 0
    return f"{value:.{decimals}f}"


def _all_cell_pixel_error(heldout: str) -> float:
    """Pixel error of predicting "cell" everywhere on the held-out block ("25-29" in 04_training.csv)."""
    from unet_repro.data import load_isbi2012
    from unet_repro.metrics import pixel_error

    lo, hi = (int(v) for v in heldout.split("-"))
    labels = load_isbi2012().train_labels[lo : hi + 1]
    return float(pixel_error(np.ones(labels.shape, np.float32), labels))


@functools.cache
def _sources(profile: str) -> dict[str, list[float]]:
    """For each row title of the paper-vs-ours table, the values its ``profile`` column quotes, in order,
    from the committed tables named in its "produced by" cell (``results/`` for ci, ``results/cpu/`` for
    cpu; and the all-cell baseline, computed from the data)."""
    train, ev = _profile_table(profile, "04_training.csv"), _profile_table(profile, "05_evaluation.csv")
    run = train[train.tta == "none"].iloc[0]
    ours = ev[ev.source.str.contains(f"profile {profile}")].iloc[0]
    trained = {
        "training": [run.train_minutes, run.base_channels, run.iterations],
        "pixel error (Table 1)": [ours.pixel_error],
        "warping error (Table 1)": [ours.warping_error],
        "Rand error (Table 1)": [ours.rand_error],
        "V_rand / V_info (later leaderboard)": [ours.v_rand, ours.v_info],
    }
    if profile != "ci":  # the rows that do not depend on the profile say "same as `ci`"
        return {**dict.fromkeys(_sources("ci"), []), **trained}
    arch, tiles, aug = _table("01_architecture.csv"), _table("01_tile_sizes.csv"), _table("03_augmentation.csv")
    tile = tiles[tiles.input == 572].iloc[0]
    paper_aug = aug[aug.config.str.startswith("paper")].iloc[0]
    convs = arch.layer.str.startswith(("conv", "upconv")).sum()
    from unet_repro.weights import TRUNCATION_TOL

    return {
        "convolutional layers / parameters": [convs, arch.params.sum()],
        "output of a 572x572 tile": [tile.output, tile.output, (tile.input - tile.output) / 2, tile.gflops],
        "weight map (eq. 2), w0 = 10, sigma = 5": [TRUNCATION_TOL],
        # its speed is not quoted: the README points to results/benchmarks/augment.csv (tests/test_prose.py)
        "elastic field: std at the 3x3 control points": [paper_aug.control_std_px, paper_aug.n_fields],
        **trained,
        "pixel error (Table 1)": [ours.pixel_error, _all_cell_pixel_error(str(run.heldout_slices))],
        "the five ISBI metrics, 30x512x512 stack": [],
    }


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("title", list(_paper_vs_ours()))
def test_every_number_in_ours_comes_from_its_table(title, profile):
    row = _paper_vs_ours()[title]
    sources = _sources(profile)
    assert title in sources, f"README row {title!r}: no check says which table its numbers come from"
    quoted = [q for q in _numbers(row[profile]) if (title, q) not in NO_TABLE]
    values = sources[title]
    where = f"{title!r} ({profile})"
    assert len(quoted) == len(values), f"{where}: README quotes {quoted}, the checks know {len(values)} values"
    for q, v in zip(quoted, values, strict=False):
        assert q == _as_printed(q, float(v)), f"{where}: README says {q}, the table gives {v} ({_as_printed(q, v)})"
    for name in re.findall(r"results/((?:cpu/)?\d\d_\w+\.csv)", row["produced"]):
        assert (ROOT / "results" / name).is_file(), f"{title!r} names results/{name}, which does not exist"


def test_paper_numbers_and_claims_match_the_evaluation_table():
    rows, ev = _paper_vs_ours(), _table("05_evaluation.csv")
    paper = ev[ev.source.str.startswith("paper")].iloc[0]
    ci = ev[ev.source.str.contains("profile ci")].iloc[0]
    for title, column in [
        ("pixel error (Table 1)", "pixel_error"),
        ("warping error (Table 1)", "warping_error"),
        ("Rand error (Table 1)", "rand_error"),
    ]:
        (quoted,) = _numbers(rows[title]["paper"])
        assert quoted == _as_printed(quoted, float(paper[column])), (title, quoted, paper[column])
    if "reaches the paper's pixel error" in _readme():
        assert ci.pixel_error <= paper.pixel_error


def test_prose_quotes_the_training_table():
    """ "our `ci` model is a 16-channel network trained for 6 minutes, our `cpu` model a 32-channel network
    trained for 47 minutes" and the training rows' recipes."""
    quotes = re.findall(r"`(\w+)` model (?:is )?a (\d+)-channel network\s+trained\s+for (\d+) minutes", _readme())
    assert [q[0] for q in quotes] == list(PROFILES), quotes
    runs = {p: _profile_table(p, "04_training.csv").iloc[0] for p in PROFILES}
    for profile, channels, minutes in quotes:
        run = runs[profile]
        assert int(channels) == run.base_channels and minutes == _as_printed(minutes, run.train_minutes)
    ci, cpu = runs["ci"], runs["cpu"]
    ours = _paper_vs_ours()["training"]
    assert (ci.optimizer == "adam") == ("Adam" in ours["ci"]) and (not ci.augment) == ("no augmentation" in ours["ci"])
    assert (cpu.optimizer == "adam") == ("Adam" in ours["cpu"])
    assert (cpu.augment == "elastic_only") == ("elastic" in ours["cpu"])


def test_prose_compares_the_cpu_and_ci_models():
    """ "its Rand error is less than a third of the `ci` model's, while its warping error stays where the `ci`
    model's is" (held-out block; results/05_evaluation.csv and results/cpu/05_evaluation.csv)."""
    ci, cpu = (_profile_table(p, "05_evaluation.csv") for p in PROFILES)
    ci, cpu = (t[t.source.str.startswith("this reproduction")].iloc[0] for t in (ci, cpu))
    prose = " ".join(_readme().split())
    assert "its Rand error is less than a third of the `ci` model's" in prose
    assert cpu.rand_error < ci.rand_error / 3
    assert "its warping error stays where the `ci` model's is" in prose
    assert _as_printed("0.00182", cpu.warping_error) == _as_printed("0.00182", ci.warping_error)


def test_prose_quotes_the_ci_recipe_trials():
    """ "Adam at learning rate 3e-4, no augmentation) is the best of seven trials on the *validation* block"."""
    from unet_repro.config import profile_config

    trials, ci = _table("04_ci_recipe.csv"), profile_config("ci")
    words = {5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
    lr, n = re.search(
        r"Adam at learning rate (\S+), no augmentation\) is the best\s+of\s+(\w+) trials", _readme()
    ).groups()
    assert float(lr) == ci.lr == trials.lr.iloc[0] and ci.optimizer == "adam" and not ci.augment
    assert n == words[len(trials)]


def test_prose_quotes_the_fixed_threshold_table():
    """ "each reported metric takes its best threshold ... on the block it is scored on" and "the `ci` model's test
    pixel error is 0.0610 and its Rand error 0.327 (0.0610 and 0.315 at the test block's own best thresholds"
    quote results/04_fixed_thresholds.csv (notebook 04)."""
    table = _table("04_fixed_thresholds.csv")
    best = table[table.thresholds_from.str.startswith("test")].iloc[0]
    fixed = table[table.thresholds_from.str.startswith("validation")].iloc[0]
    prose = " ".join(_readme().split())
    assert "each reported metric takes its best threshold (of 0.0, 0.1, ..., 1.0) on the block it is scored on" in prose
    found = re.search(
        r"the `ci` model's test pixel error is (\S+) and its Rand error (\S+) \((\S+) and (\S+) at the test block's "
        r"own best thresholds",
        prose,
    )
    assert found, "the README should quote the ci model's test scores at thresholds fixed on the validation block"
    values = [fixed.pixel_error, fixed.rand_error, best.pixel_error, best.rand_error]
    for quoted, value in zip(found.groups(), values, strict=True):
        assert quoted == _as_printed(quoted, float(value)), f"README says {quoted}, the table gives {value}"


def test_notebook_table_quotes_the_architecture_table():
    arch = _table("01_architecture.csv")
    convs = int(arch.layer.str.startswith(("conv", "upconv")).sum())
    assert f"{convs} layers, {int(arch['params'].sum()):,} parameters" in _readme()


def _pyproject_version() -> str:
    return re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


def test_readme_lists_every_notebook_with_a_colab_link():
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f"(notebooks/{nb.name})" in _readme(), nb.name
        # the address and the release tag come from pyproject.toml (tests/test_colab.py checks them in full)
        assert (
            f"colab.research.google.com/github/unet-repro/unet-repro/blob/v{_pyproject_version()}/notebooks/{nb.name}"
            in _readme()
        )


def test_seed_spread_quoted_in_prose_matches_the_seed_study_table():
    """The README's sentence on how Rand and pixel error move with the seed quotes results/04_seed_study.csv."""
    spread = _table("04_seed_study.csv").set_index("metric")
    text = _readme()
    n = int(spread["n_seeds"].min())
    for metric, fmt in (("rand_error", "{:.3f}"), ("pixel_error", "{:.4f}")):
        lo, hi = fmt.format(spread.loc[metric, "min"]), fmt.format(spread.loc[metric, "max"])
        assert f"{lo} to {hi}" in text, f"README should quote the {metric} range {lo} to {hi} over the seeds"
    assert f"over the {n} seeds of the `ci` seed study" in text


def test_what_matters_table_is_generated_from_the_study():
    """The README's exploratory table equals ``ablations.readme_table`` of results/06_ablations.csv."""
    from unet_repro.ablations import README_MARKERS, readme_table

    text = _readme()
    start, end = README_MARKERS
    assert start in text and end in text, "README lacks the ablations table markers"
    block = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert block == readme_table(_table("06_ablations.csv")), "regenerate the README table from notebook 06's output"


@pytest.mark.parametrize("markers", ["ledger", "cost"])
def test_ledger_and_cost_blocks_are_generated_from_the_results(markers):
    """The README's claims ledger and study-cost sentence equal what ``python -m unet_repro.ledger`` writes
    from the committed tables (notebooks 01, 05 and 06)."""
    from unet_repro import ledger as L

    text = _readme()
    start, end = L.LEDGER_MARKERS if markers == "ledger" else L.COST_MARKERS
    assert start in text and end in text, f"README lacks the {markers} markers"
    block = text.split(start, 1)[1].split(end, 1)[0].strip()
    tables = ("06_primary.csv", "01_architecture.csv", "05_evaluation.csv")
    expected = (
        L.ledger_markdown(L.claims_ledger(*(_table(t) for t in tables)))
        if markers == "ledger"
        else L.cost_sentence(_table("06_cost.csv"))
    )
    assert block == expected, "regenerate the README with python -m unet_repro.ledger"
