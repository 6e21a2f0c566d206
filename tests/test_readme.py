"""The README quotes the committed results tables (to the digits it prints) and lists every notebook.

Every number in the "ours" column of the README's paper-vs-ours table is parsed from the README and compared
with the table cell it comes from, formatted the way the README prints it (same decimals, same thousands
separators); a number that no check accounts for fails the test, so a new quote needs a source. The paper's
numbers are compared with the paper row of the same table.

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


def _paper_vs_ours() -> dict[str, dict[str, str]]:
    """The README's ``| quantity | paper | ours | produced by |`` table: row title -> its cells."""
    lines = _readme().splitlines()
    start = lines.index("| quantity | paper | ours | produced by |") + 2
    rows: dict[str, dict[str, str]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        title, paper, ours, produced = (c.strip() for c in line.strip().strip("|").split("|"))
        rows[title] = {"paper": paper, "ours": ours, "produced": produced}
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


@functools.lru_cache(maxsize=1)
def _sources() -> dict[str, list[float]]:
    """For each row title of the paper-vs-ours table, the values its "ours" cell quotes, in order, from the
    committed tables named in its "produced by" cell (and the all-cell baseline, computed from the data)."""
    arch, tiles = _table("01_architecture.csv"), _table("01_tile_sizes.csv")
    aug, train, ev = _table("03_augmentation.csv"), _table("04_training.csv"), _table("05_evaluation.csv")
    tile = tiles[tiles.input == 572].iloc[0]
    paper_aug = aug[aug.config.str.startswith("paper")].iloc[0]
    run = train[train.tta == "none"].iloc[0]
    ci = ev[ev.source.str.contains("profile ci")].iloc[0]
    convs = arch.layer.str.startswith(("conv", "upconv")).sum()
    from unet_repro.weights import TRUNCATION_TOL

    return {
        "convolutional layers / parameters": [convs, arch.params.sum()],
        "output of a 572x572 tile": [tile.output, tile.output, (tile.input - tile.output) / 2, tile.gflops],
        "weight map (eq. 2), w0 = 10, sigma = 5": [TRUNCATION_TOL],
        # its speed is not quoted: the README points to results/benchmarks/augment.csv (tests/test_prose.py)
        "elastic field: std at the 3x3 control points": [paper_aug.control_std_px, paper_aug.n_fields],
        "training": [run.train_minutes, run.base_channels, run.iterations],
        "pixel error (Table 1)": [ci.pixel_error, _all_cell_pixel_error(str(run.heldout_slices))],
        "warping error (Table 1)": [ci.warping_error],
        "Rand error (Table 1)": [ci.rand_error],
        "V_rand / V_info (later leaderboard)": [ci.v_rand, ci.v_info],
        "the five ISBI metrics, 30x512x512 stack": [],
    }


@pytest.mark.parametrize("title", list(_paper_vs_ours()))
def test_every_number_in_ours_comes_from_its_table(title):
    row = _paper_vs_ours()[title]
    sources = _sources()
    assert title in sources, f"README row {title!r}: no check says which table its numbers come from"
    quoted = [q for q in _numbers(row["ours"]) if (title, q) not in NO_TABLE]
    values = sources[title]
    assert len(quoted) == len(values), f"{title!r}: README quotes {quoted}, the checks know {len(values)} values"
    for q, v in zip(quoted, values, strict=False):
        assert q == _as_printed(q, float(v)), f"{title!r}: README says {q}, the table gives {v} ({_as_printed(q, v)})"
    for name in re.findall(r"results/(\d\d_\w+\.csv)", row["produced"]):
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
    """ "our `ci` model is a 16-channel network trained for 6 minutes" and the training row's recipe."""
    run = _table("04_training.csv").iloc[0]
    channels, minutes = re.search(r"(\d+)-channel network trained\s+for (\d+) minutes", _readme()).groups()
    assert int(channels) == run.base_channels and minutes == _as_printed(minutes, run.train_minutes)
    ours = _paper_vs_ours()["training"]["ours"]
    assert (run.optimizer == "adam") == ("Adam" in ours) and (not run.augment) == ("no augmentation" in ours)


def test_prose_quotes_the_ci_recipe_trials():
    """ "Adam at learning rate 3e-4, no augmentation) is the best of seven trials on the *validation* block"."""
    from unet_repro.config import profile_config

    trials, ci = _table("04_ci_recipe.csv"), profile_config("ci")
    words = {5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
    lr, n = re.search(
        r"Adam at learning rate (\S+), no augmentation\) is the best of\s+(\w+) trials", _readme()
    ).groups()
    assert float(lr) == ci.lr == trials.lr.iloc[0] and ci.optimizer == "adam" and not ci.augment
    assert n == words[len(trials)]


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
    """The README's "what matters" table equals ``ablations.readme_table`` of results/06_ablations.csv."""
    from unet_repro.ablations import README_MARKERS, readme_table

    text = _readme()
    start, end = README_MARKERS
    assert start in text and end in text, "README lacks the ablations table markers"
    block = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert block == readme_table(_table("06_ablations.csv")), "regenerate the README table from notebook 06's output"
