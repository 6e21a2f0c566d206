"""Numbers in prose are computed, asserted or read from the table that keeps them, never typed twice.

Speed figures live in one place, the benchmark tables under ``results/benchmarks/``; the README, the
notebooks' markdown and the package's docstrings refer to those tables instead of quoting a ratio. Values
the package derives from data (the gray-value ranges of the augmentation) are checked against the data.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jupytext
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
PACKAGE = sorted((ROOT / "unet_repro").rglob("*.py"))
# a typed speed-up: "~40x faster", "37-55x", "48.8x" next to "faster", "speed" or "speed-up"
SPEEDUP = re.compile(
    r"(?:~|about |\b)\d+(?:\.\d+)?(?:\s*-\s*\d+(?:\.\d+)?)?x\b(?=[^.|\n]{0,40}(?:faster|speed))"
    r"|(?:faster|speed-up|speed ratio)[^.|\n]{0,40}\b\d+(?:\.\d+)?x\b",
    re.IGNORECASE,
)


def _markdown(path: Path) -> str:
    return "\n".join(c.source for c in jupytext.read(path).cells if c.cell_type == "markdown")


def _docstrings(path: Path) -> str:
    tree = ast.parse(path.read_text())
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return "\n".join(ast.get_docstring(n) or "" for n in nodes)


def test_the_speed_pattern_catches_typed_ratios():
    for typed in (
        "~40x faster than",
        "37-55x faster",
        "speed ratio (per-cell EDT / unet_repro): 48.8x",
        "the speed-up (about 40-50x; notebook 02 quotes it)",
    ):
        assert SPEEDUP.search(typed), typed
    for fine in ("a 3x3 grid", "572x572 tile", "drawn 5x longer", "faster than one distance transform per cell"):
        assert not SPEEDUP.search(fine), fine


def test_readme_quotes_no_speed_ratio():
    readme = (ROOT / "README.md").read_text()
    assert not SPEEDUP.findall(readme), "README: refer to results/benchmarks/*.csv instead of typing a speed-up"


@pytest.mark.parametrize("path", NOTEBOOK_SOURCES, ids=lambda p: p.name)
def test_notebook_markdown_quotes_no_speed_ratio(path):
    found = SPEEDUP.findall(_markdown(path))
    assert not found, f"{path.name}: typed speed-up(s) {found}; print it or read results/benchmarks/"


@pytest.mark.parametrize("path", PACKAGE, ids=lambda p: str(p.relative_to(ROOT)))
def test_package_docstrings_cite_what_a_reader_can_open(path):
    """No typed speed-up, no file outside the repository, no issue number."""
    text = _docstrings(path)
    assert not SPEEDUP.findall(text), f"{path.name}: typed speed-up; refer to results/benchmarks/"
    assert "shared/" not in text and "../shared" not in text, f"{path.name} cites a file outside the repository"
    assert not re.search(r"\bissues? #?\d+", text, re.IGNORECASE), f"{path.name} cites an issue number"


def test_weight_map_benchmark_table():
    """results/benchmarks/weight_maps.csv (written by benchmarks/weight_maps.py) holds the speed figure."""
    table = pd.read_csv(ROOT / "results" / "benchmarks" / "weight_maps.csv", dtype={"slice": str})
    total = table[table["slice"] == "total"].iloc[0]
    assert len(table) == 31, "all 30 slices and a total row"
    assert total.t_per_cell_edt_s / total.t_unet_repro_s == pytest.approx(total.speed_ratio, rel=1e-3)
    assert total.speed_ratio >= 20 and total.max_abs_diff < 1e-4


def test_augment_benchmark_table():
    table = pd.read_csv(ROOT / "results" / "benchmarks" / "augment.csv").set_index("method")
    ours = table.loc["unet_repro elastic_deform (torch bicubic + nearest)"]
    base = table.loc["elasticdeform deform_random_grid (sigma=10, points=3, order=[3, 0])"]
    assert ours.speedup_of_elastic_deform == 1
    assert base.ms_median / ours.ms_median == pytest.approx(base.speedup_of_elastic_deform, rel=1e-3)
    assert base.speedup_of_elastic_deform >= 2


def test_cutoff_radius_in_the_weights_docstring():
    from unet_repro import weights

    assert "R = 26.3 px for the paper's w0 = 10, sigma = 5" in " ".join(weights.__doc__.split())
    assert round(weights.cutoff_distance(10.0, 5.0, weights.TRUNCATION_TOL), 1) == 26.3


def test_augmenter_gray_ranges_are_measured_on_the_training_slices(isbi):
    """Augmenter's gray-value defaults equal gray_value_ranges on the training slices (never held-out ones)."""
    from unet_repro.augment import Augmenter, gray_value_ranges
    from unet_repro.data import split_train_heldout

    train_idx, held_idx = split_train_heldout(isbi.train_images.shape[0])
    assert not set(train_idx) & set(held_idx)
    measured = gray_value_ranges(isbi.train_images[train_idx])
    default = Augmenter()
    defaults = (default.brightness, default.contrast, default.gamma)
    assert defaults == (measured.brightness, measured.contrast, measured.gamma)
    # the measurement is what the rounding claims: each bound within half a step of the measured spread
    b = max(-measured.mean_offset[0], measured.mean_offset[1])
    c = max(1 / measured.std_factor[0], measured.std_factor[1])
    assert abs(measured.brightness[1] - b) <= 0.025 and abs(measured.contrast[1] - c) <= 0.025
