"""Notebook hygiene: paired with a py:percent script, no outputs, one cell tagged parameters with a profile.

The ``.py`` (py:percent) is the source; ``make sync`` writes it into the ``.ipynb``. ``jupytext.toml`` drops
jupytext's version stamp, so ``jupytext --sync`` on synced pairs changes nothing (checked here on a copy).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("01_")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean_and_parameterised(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "commit without outputs"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    names = {
        t.id for node in ast.walk(ast.parse(tagged[0].source)) if isinstance(node, ast.Assign) for t in node.targets
    }
    assert {"profile", "out_dir"} <= names
    assert 'profile = "ci"' in tagged[0].source


def _cells(nb) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_paired_with_its_script(path):
    """The .ipynb holds exactly the .py's cells (type, source, tags) and its Colab metadata: run `make sync`."""
    script = path.with_suffix(".py")
    assert script.is_file(), f"{script.name} missing: run jupytext --sync {path.name}"
    ipynb, py = jupytext.read(path), jupytext.read(script)
    assert _cells(ipynb) == _cells(py), f"{path.name} and {script.name} differ: run make sync"
    for key in ("accelerator", "colab"):
        assert ipynb.metadata.get(key) == py.metadata.get(key), f"{path.name}: notebook metadata {key!r}; run make sync"


def test_notebook_04_asks_colab_for_a_gpu():
    meta = jupytext.read(ROOT / "notebooks" / "04_isbi_training.py").metadata
    assert meta.get("accelerator") == "GPU" and meta.get("colab", {}).get("gpuType"), meta


def test_jupytext_sync_changes_nothing(tmp_path):
    """`jupytext --sync` (the repository's jupytext.toml, the .py newer) rewrites no file of a synced pair."""
    shutil.copy(ROOT / "jupytext.toml", tmp_path)
    (tmp_path / "notebooks").mkdir()
    for nb in NOTEBOOKS:
        for p in (nb, nb.with_suffix(".py")):
            shutil.copy(p, tmp_path / "notebooks" / p.name)
        os.utime(tmp_path / "notebooks" / nb.name, (1_000_000_000, 1_000_000_000))  # the .py is the source
    before = {p.name: p.read_bytes() for p in (tmp_path / "notebooks").iterdir()}
    jupytext_cli = Path(sys.executable).with_name("jupytext")
    subprocess.run(
        [str(jupytext_cli), "--sync", *sorted(str(p) for p in (tmp_path / "notebooks").glob("*.py"))],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    changed = sorted(p.name for p in (tmp_path / "notebooks").iterdir() if p.read_bytes() != before[p.name])
    assert not changed, f"jupytext --sync rewrites {changed}: run make sync and commit"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_colab_badge_and_install_cell(path):
    """The badge and install cell themselves are checked against pyproject.toml in tests/test_colab.py."""
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0].source
    assert f"/notebooks/{path.name})" in first and "colab.research.google.com/github/" in first
    assert any('"google.colab" in sys.modules' in c.source for c in nb.cells[:3])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_figures_are_saved_without_a_version_stamp(path):
    """Every figure goes through results.save_figure (no matplotlib version in the PNG)."""
    source = path.with_suffix(".py").read_text()
    assert ".savefig(" not in source, "save figures with unet_repro.results.save_figure"


def test_save_figure_leaves_out_the_matplotlib_version(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unet_repro.results import save_figure

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1])
    path = save_figure(fig, "x", tmp_path)
    plt.close(fig)
    data = path.read_bytes()
    assert path == tmp_path / "figures" / "x.png" and data.startswith(b"\x89PNG")
    assert b"Software" not in data and matplotlib.__version__.encode() not in data


def test_executed_notebooks_are_published_without_run_noise(tmp_path):
    """reproduce keeps outputs but drops timestamps and the checkout's absolute path."""
    from unet_repro.reproduce import publishable_notebook

    root = tmp_path / "checkout"
    cell = {
        "cell_type": "code",
        "execution_count": 1,
        "source": f'out_dir = "{root}/build/results"',
        "metadata": {
            "tags": ["injected-parameters"],
            "papermill": {"start_time": "2026-01-01T00:00:00"},
            "execution": {"iopub.execute_input": "2026-01-01T00:00:00"},
        },
        "outputs": [{"output_type": "stream", "name": "stdout", "text": f"wrote {root}/build/results/x.csv\n"}],
    }
    nb = {
        "cells": [cell],
        "metadata": {"papermill": {"duration": 1.0}, "kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    executed = tmp_path / "executed.ipynb"
    executed.write_text(json.dumps(nb))
    out = json.loads(publishable_notebook(executed, tmp_path / "pub" / "01_x.ipynb", root).read_text())
    assert "papermill" not in out["metadata"] and out["metadata"]["kernelspec"] == {"name": "python3"}
    assert out["cells"][0]["metadata"] == {"tags": ["injected-parameters"]}
    assert out["cells"][0]["outputs"][0]["text"] == "wrote build/results/x.csv\n"
    assert out["cells"][0]["source"] == 'out_dir = "build/results"'


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_reads_every_parameter(path):
    """papermill must parse each parameter line (a quote in a comment can hide one from it)."""
    import papermill as pm

    nb = nbformat.read(path, as_version=4)
    tagged = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    names = {t.id for node in ast.walk(ast.parse(tagged.source)) if isinstance(node, ast.Assign) for t in node.targets}
    assert names <= set(pm.inspect_notebook(str(path))), "papermill cannot parse some parameter lines"
