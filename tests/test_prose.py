"""Numbers in prose are computed, asserted or read from the table that keeps them, never typed twice.

Speed figures live in one place, the benchmark tables under ``results/benchmarks/`` (checked here); that the
README, the notebooks' markdown and the package's docstrings quote no ratio is a policy ``make lint`` checks
(``scripts/lint_prose.py``, tested here). Values the package derives from data (the gray-value ranges of the
augmentation) are checked against the data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import lint_prose  # noqa: E402  (scripts/lint_prose.py: the prose policy, run by make lint)


def test_the_speed_pattern_catches_typed_ratios():
    for typed in (
        "~40x faster than",
        "37-55x faster",
        "speed ratio (per-cell EDT / unet_repro): 48.8x",
        "the speed-up (about 40-50x; notebook 02 quotes it)",
    ):
        assert lint_prose.SPEEDUP.search(typed), typed
    for fine in ("a 3x3 grid", "572x572 tile", "drawn 5x longer", "faster than one distance transform per cell"):
        assert not lint_prose.SPEEDUP.search(fine), fine


def test_the_prose_lint_finds_each_breach(tmp_path):
    """make lint runs scripts/lint_prose.py; on a tree with one breach of each kind it reports all three."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "unet_repro").mkdir()
    (tmp_path / "README.md").write_text("Our metrics are 40x faster than Fiji.\n")
    (tmp_path / "notebooks" / "01_x.py").write_text("# %% [markdown]\n# about 12x faster\n\n# %%\nx = 1\n")
    (tmp_path / "unet_repro" / "m.py").write_text('"""See issue 20 and ../shared/spec."""\n')
    found = lint_prose.findings(tmp_path)
    assert len(found) == 4 and any("issue 20" in f for f in found) and any("outside" in f for f in found)
    assert lint_prose.main([str(tmp_path)]) == 1 and lint_prose.findings(ROOT) == []


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
    from unet_repro.loss import weights

    assert "R = 26.3 px for the paper's w0 = 10, sigma = 5" in " ".join(weights.__doc__.split())
    assert round(weights.cutoff_distance(10.0, 5.0, weights.TRUNCATION_TOL), 1) == 26.3


def test_augmenter_gray_ranges_are_measured_on_the_training_slices(isbi):
    """Augmenter's gray-value defaults equal gray_value_ranges on the training slices (never held-out ones)."""
    from unet_repro.augment.augmenter import Augmenter, gray_value_ranges
    from unet_repro.data.isbi2012 import split_train_heldout

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
