"""The README quotes the committed results tables (to the digits it prints) and lists every notebook.

The tables are read as committed (``git show HEAD:results/...``) when the checkout is a git repository, so
that a ``make reproduce`` on another machine, which rewrites results/ within the tolerances, does not make
the README "wrong"; the README quotes the runs of this project's machine type.
"""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _table(name: str) -> pd.DataFrame:
    proc = subprocess.run(["git", "show", f"HEAD:results/{name}"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode == 0:
        return pd.read_csv(io.StringIO(proc.stdout))
    return pd.read_csv(ROOT / "results" / name)


def _ours(row_title: str) -> list[float]:
    """The numbers in the "ours" cell of the README's paper-vs-ours row that starts with ``row_title``."""
    line = next(ln for ln in README.splitlines() if ln.startswith(f"| {row_title} |"))
    ours = line.split("|")[3]
    return [float(x) for x in re.findall(r"\d+\.\d+", ours.split("(")[0])]


def _close(quoted: float, table: pd.DataFrame, column: str, row: int) -> bool:
    """``quoted`` is the table's value rounded to the digits the README prints."""
    value = float(table[column].iloc[row])
    return abs(quoted - value) <= 0.5 * 10 ** -(len(repr(quoted).split(".")[1])) + 1e-12


def test_readme_quotes_the_evaluation_table():
    table = _table("05_evaluation.csv")
    assert "profile ci" in table["source"].iloc[1]
    for title, column in [("pixel error (Table 1)", "pixel_error"), ("warping error (Table 1)", "warping_error"),
                          ("Rand error (Table 1)", "rand_error")]:
        (quoted,) = _ours(title)
        assert _close(quoted, table, column, 1), (title, quoted)
        paper = table[column].iloc[0]
        assert f"| {title} | {paper:g} |" in README
    v_rand, v_info = _ours("V_rand / V_info (later leaderboard)")
    assert _close(v_rand, table, "v_rand", 1) and _close(v_info, table, "v_info", 1)


def test_readme_quotes_the_architecture_and_training_tables():
    arch = _table("01_architecture.csv")
    assert f"23 / {int(arch['params'].sum()):,}" in README
    train = _table("04_training.csv").iloc[0]
    assert f"profile `ci` ({int(train['base_channels'])} channels, {int(train['iterations'])} steps" in README


def test_readme_lists_every_notebook_with_a_colab_link():
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f"(notebooks/{nb.name})" in README, nb.name
        assert f"colab.research.google.com/github/unet-repro/unet-repro/blob/main/notebooks/{nb.name}" in README
