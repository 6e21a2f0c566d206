"""Notebook hygiene: paired with a py:percent script, no outputs, one cell tagged parameters with a profile."""

from __future__ import annotations

import ast
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
    names = {t.id for node in ast.walk(ast.parse(tagged[0].source)) if isinstance(node, ast.Assign) for t in node.targets}
    assert {"profile", "out_dir"} <= names
    assert 'profile = "ci"' in tagged[0].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_paired_with_its_script(path):
    script = path.with_suffix(".py")
    assert script.is_file(), f"{script.name} missing: run jupytext --sync {path.name}"
    a = [(c.cell_type, c.source.strip()) for c in nbformat.read(path, as_version=4).cells]
    b = [(c.cell_type, c.source.strip()) for c in jupytext.read(script).cells]
    assert a == b, f"{path.name} and {script.name} differ: run jupytext --sync"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_colab_badge_and_install_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert f"colab.research.google.com/github/unet-repro/unet-repro/blob/main/notebooks/{path.name}" in nb.cells[0].source
    assert any('"google.colab" in sys.modules' in c.source for c in nb.cells[:3])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_reads_every_parameter(path):
    """papermill must parse each parameter line (a quote in a comment can hide one from it)."""
    import papermill as pm

    nb = nbformat.read(path, as_version=4)
    tagged = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    names = {t.id for node in ast.walk(ast.parse(tagged.source)) if isinstance(node, ast.Assign) for t in node.targets}
    assert names <= set(pm.inspect_notebook(str(path))), "papermill cannot parse some parameter lines"
