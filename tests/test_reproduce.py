"""The papermill reproduction: it must fail when a committed table is altered, and pass on main."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _reproduce(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unet_repro.reproduce", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=3000)


@pytest.fixture()
def copy_of_01(tmp_path):
    """Notebook 01 and its committed tables, copied into a scratch folder."""
    nb, res = tmp_path / "notebooks", tmp_path / "results"
    nb.mkdir()
    shutil.copy(ROOT / "notebooks" / "01_architecture_and_sizing.ipynb", nb)
    shutil.copytree(ROOT / "results", res, ignore=shutil.ignore_patterns("figures", "0[2-9]_*"))
    assert (res / "01_architecture.csv").is_file(), "results/01_architecture.csv must be committed"
    return tmp_path


@pytest.mark.slow
def test_reproduce_passes_on_a_faithful_copy(copy_of_01):
    t = copy_of_01
    proc = _reproduce("--only", "01", "--notebooks", str(t / "notebooks"), "--results", str(t / "results"),
                      "--build", str(t / "build"), "--no-write")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 0 failed" in proc.stdout


@pytest.mark.slow
def test_reproduce_fails_when_a_committed_table_is_altered(copy_of_01):
    t = copy_of_01
    table = t / "results" / "01_architecture.csv"
    text = table.read_text()
    assert ",570,64,640," in text  # enc1's first 3x3 convolution: 9 * 1 * 64 + 64 parameters
    table.write_text(text.replace(",570,64,640,", ",570,64,641,"))
    before = table.read_text()
    proc = _reproduce("--only", "01", "--notebooks", str(t / "notebooks"), "--results", str(t / "results"),
                      "--build", str(t / "build"))
    assert proc.returncode != 0
    assert "FAIL" in proc.stdout and "01_architecture" in proc.stdout and "641" in proc.stdout
    assert table.read_text() == before  # a failed run leaves the committed table alone


@pytest.mark.slow
def test_reproduce_names_the_failing_cell(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell('profile = "ci"\nout_dir = ""', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise RuntimeError('deliberate failure')"),
    ]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "07_broken.ipynb")
    proc = _reproduce("--notebooks", str(tmp_path / "notebooks"), "--results", str(tmp_path / "results"),
                      "--build", str(tmp_path / "build"))
    assert proc.returncode != 0
    assert "07_broken.ipynb: FAIL" in proc.stdout
    assert "RuntimeError: deliberate failure" in proc.stdout and "raise RuntimeError" in proc.stdout


@pytest.mark.slow
def test_reproduce_ci_profile_over_every_notebook(tmp_path):
    """What CI checks: every notebook on the ci profile agrees with the committed tables."""
    proc = _reproduce("--profile", "ci", "--build", str(tmp_path / "build"), "--no-write")
    print(proc.stdout[-20000:])
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    n = len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    assert f"{n} passed, 0 failed" in proc.stdout
    # The ci profile is a real result (issue: held-out pixel error <= 0.07; "all cell" scores 0.11 there),
    # checked on this fresh run, not only on the committed table.
    fresh = tmp_path / "build" / "results" / "04_training.csv"
    if fresh.is_file():
        import pandas as pd

        table = pd.read_csv(fresh)
        row = table[table.tta == "none"].iloc[0]
        assert row["profile"] == "ci" and row["pixel_error"] <= 0.07, row.to_dict()


def test_unknown_notebook_number_is_refused(tmp_path):
    proc = _reproduce("--only", "42")
    assert proc.returncode != 0 and "42" in proc.stderr
