"""Notebook 06's study: the ablation fields of TrainConfig, the aggregation of records, and the committed evidence.

The committed table ``results/06_ablations.csv`` is recomputed here from the committed run records; the
cheapest committed run is trained again from its configuration and must land within the ci seed study's
tolerances of its record (exactly, on the machine type that made it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from unet_repro.inference.tiling import seam_report
from unet_repro.model.sizing import UNetConfig
from unet_repro.model.unet import UNet
from unet_repro.study import ablations as A
from unet_repro.study import recipe as R
from unet_repro.study.grid import Grid
from unet_repro.study.records import METRICS, SEED_STUDY, load_records, seed_tolerances
from unet_repro.training.checkpoint import saved_config
from unet_repro.training.config import TrainConfig
from unet_repro.training.pipeline import TileSource
from unet_repro.training.tiles import TileSampler

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "results" / "06_ablations" / "runs"


# --- the fields the ablations change ---------------------------------------------------------------------


def test_augmentation_halves_switch_off_exactly_one_part():
    full, none = TrainConfig().augmenter(), TrainConfig(augment=False).augmenter()
    no_el, el_only = TrainConfig(augment="no_elastic").augmenter(), TrainConfig(augment="elastic_only").augmenter()
    assert full.p_elastic == 1.0 and none.p_elastic == 0.0 and none.p_rotate == 0.0
    assert no_el.p_elastic == 0.0 and no_el.p_rotate == full.p_rotate and no_el.p_gray == full.p_gray
    assert el_only.p_elastic == 1.0 and el_only.sigma == full.sigma
    assert (el_only.p_rotate, el_only.p_shift, el_only.p_flip_rows, el_only.p_flip_cols, el_only.p_gray) == (0,) * 5


def test_the_halves_draw_the_same_random_numbers_as_the_whole(isbi):
    """Seed-matched runs see the same tile positions: every variant advances the generator alike."""
    img = np.asarray(isbi.train_images[0][:188, :188], np.float32) / 255
    lab = (np.asarray(isbi.train_labels[0][:188, :188]) > 127).astype(np.int64)
    states = []
    for mode in (True, "no_elastic", "elastic_only"):
        rng = np.random.default_rng(3)
        TrainConfig(augment=mode).augmenter()(img, lab, rng)
        states.append(rng.bit_generator.state["state"]["state"])
    assert len(set(states)) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"augment": "elastic"}, "augment must be"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"padding": "full"}, "padding must be"),
        ({"upsampling": "nearest"}, "upsampling must be"),
        ({"padding": "same", "tile": 572}, "not valid for a depth-4 U-Net with 'same' padding"),
    ],
)
def test_bad_ablation_fields_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields)


def test_model_config_carries_the_architecture_fields():
    m = TrainConfig(padding="same", tile=384, upsampling="bilinear", batch_norm=True).model_config()
    assert (m.padding, m.upsampling, m.batch_norm) == ("same", "bilinear", True)


def test_a_batch_stacks_consecutive_tiles():
    rng = np.random.default_rng(0)
    images = rng.random((2, 120, 120), dtype=np.float32)
    labels = (rng.random((2, 120, 120)) > 0.5).astype(np.int64)
    weights = np.ones_like(images)
    sampler = TileSampler(images, labels, weights, 108, depth=2)
    aug = TrainConfig(augment=False).augmenter()
    single = list(TileSource(sampler, aug, np.random.default_rng(1), "cpu", 6))
    batched = list(TileSource(sampler, aug, np.random.default_rng(1), "cpu", 2, batch_size=3))
    assert [tuple(b.x.shape) for b in batched] == [(3, 1, 108, 108)] * 2
    assert torch.equal(batched[1].x, torch.cat([s.x for s in single[3:]]))
    assert torch.equal(batched[1].target, torch.cat([s.target for s in single[3:]]))
    assert batched[1].rng_state == single[5].rng_state  # a checkpoint after the step resumes after its last tile


def test_same_padding_tiles_are_their_own_output_window():
    images = np.zeros((1, 100, 100), np.float32)
    sampler = TileSampler(images, np.zeros((1, 100, 100), np.int64), None, 64, depth=2, padding="same")
    assert (sampler.out, sampler.border) == (64, 0)


def test_seam_report_is_zero_for_one_piece_and_refuses_valid_models():
    torch.manual_seed(0)
    model = UNet(UNetConfig(base_channels=2, depth=2, padding="same"))
    stack = (np.random.default_rng(0).random((1, 64, 64)) * 255).astype(np.uint8)
    whole = seam_report(model, stack, tile=64)
    assert whole["max_abs_diff"] == 0.0 and np.isnan(whole["mean_abs_diff_near_seams"])
    cut = seam_report(model, stack, tile=32)
    assert cut["mean_abs_diff_near_seams"] > cut["mean_abs_diff_elsewhere"] >= 0.0
    with pytest.raises(ValueError, match="same-padded"):
        seam_report(UNet(UNetConfig(base_channels=2, depth=2)), stack, tile=32)


# --- aggregation, on hand-made records -------------------------------------------------------------------


def _record(folder: Path, name: str, seed: int, pixel: float, tta: dict | None = None, lr: float = 0.01) -> None:
    scores = dict.fromkeys(METRICS, 0.5)
    scores["pixel_error"] = pixel
    test = {"none": scores, **(tta or {})}
    rec = {
        "run_id": f"{name}-s{seed}",
        "name": name,
        "seed": seed,
        "status": "ok",
        "config": {"optimizer": "sgd", "lr": lr},
        "metrics": {"test": test, "validation": {"none": {**scores, "pixel_error": pixel + lr}}},
        "train_seconds": 60.0,
        "loss_curve": [[10, 0.9], [20, 0.8]],
    }
    (folder / f"{name}-s{seed}.json").write_text(json.dumps(rec))


@pytest.fixture()
def study(tmp_path):
    for seed, p in enumerate([0.10, 0.12, 0.11]):
        d4 = {"d4": {**dict.fromkeys(METRICS, 0.5), "pixel_error": p - 0.01}}
        _record(tmp_path, "baseline", seed, p, tta=d4)
        _record(tmp_path, "no_augmentation", seed, p + 0.02 + 0.001 * seed)
        _record(tmp_path, "no_dropout", seed, p + (0.03 if seed % 2 else -0.03))
    return tmp_path


def test_ablation_table_pairs_by_seed_with_intervals_and_no_verdicts(study):
    table = A.ablation_table(study).set_index(["name", "metric"])
    assert "verdict" not in table.columns  # exploratory: intervals only
    row = table.loc[("no_augmentation", "pixel_error")]
    assert row["mean_diff"] == pytest.approx(0.021)
    half = 4.302652729911275 * 0.001 / np.sqrt(3)  # t(0.975, 2) x SE of the differences 0.020, 0.021, 0.022
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(0.021 - half), pytest.approx(0.021 + half))
    assert table.loc[("no_dropout", "pixel_error"), "ci_low"] < 0 < table.loc[("no_dropout", "pixel_error"), "ci_high"]
    assert table.loc[("tta_d4", "pixel_error"), "ci_high"] < 0  # the baseline's own models, averaged
    assert table.loc[("no_augmentation", "pixel_error"), "train_minutes"] == 1.0
    assert np.isnan(table.loc[("tta_d4", "pixel_error"), "train_minutes"])
    assert list(dict.fromkeys(table.index.get_level_values(0))) == ["no_augmentation", "no_dropout", "tta_d4"]
    chosen = A.ablation_table(study, block="test", verdicts=True).set_index(["name", "metric"])
    assert chosen.loc[("no_augmentation", "pixel_error"), "verdict"] == "hurts"  # the recipe's choosing rule


def test_scarcity_without_augmentation_pairs_with_augmentation_on_the_same_slices(tmp_path):
    for seed, p in enumerate([0.10, 0.12, 0.11]):
        _record(tmp_path, "baseline", seed, p)
        _record(tmp_path, "slices_8", seed, p + 0.05)
        _record(tmp_path, "slices_8_no_augmentation", seed, p + 0.06 + 0.001 * seed)
    table = A.ablation_table(tmp_path).set_index(["name", "metric"])
    row = table.loc[("slices_8_no_augmentation", "pixel_error")]
    assert row["reference"] == "slices_8" and row["mean_diff"] == pytest.approx(0.011) and row["ci_low"] > 0
    assert table.loc[("slices_8", "pixel_error"), "reference"] == "baseline"


def test_long_runs_pair_with_the_long_baseline_and_are_set_beside_the_short_ones(tmp_path):
    for seed, p in enumerate([0.10, 0.12, 0.11]):
        _record(tmp_path, "baseline", seed, p)
        _record(tmp_path, "no_augmentation", seed, p - 0.02 - 0.001 * seed)  # helps at 1000 steps
        _record(tmp_path, "long_baseline", seed, p - 0.03)
        _record(tmp_path, "long_no_augmentation", seed, p - 0.01 + 0.001 * seed)  # hurts against long_baseline
    table = A.ablation_table(tmp_path)
    rows = table.set_index(["name", "metric"])
    assert rows.loc[("long_no_augmentation", "pixel_error"), "reference"] == "long_baseline"
    assert rows.loc[("long_no_augmentation", "pixel_error"), "mean_diff"] == pytest.approx(0.021)
    assert rows.loc[("long_baseline", "pixel_error"), "reference"] == "baseline"
    length = A.length_table(table).set_index(["name", "metric"])
    assert list(length.index.get_level_values(0).unique()) == ["no_augmentation"]  # no long w0 = 0 runs here
    px = length.loc[("no_augmentation", "pixel_error")]
    assert px["mean_diff_short"] == pytest.approx(-0.021) and px["mean_diff_long"] == pytest.approx(0.021)
    assert px["ci_high_short"] < 0 < px["ci_low_long"] and px["n_pairs_short"] == px["n_pairs_long"] == 3
    assert "verdict_short" not in length.columns
    assert A.length_table(table[~table["name"].str.startswith("long_")]).empty


def test_learning_rate_is_chosen_on_validation_not_test(tmp_path):
    _record(tmp_path, "lr_a", 0, pixel=0.05, lr=0.1)  # best test, validation 0.15
    _record(tmp_path, "lr_b", 0, pixel=0.09, lr=0.001)  # worse test, validation 0.091
    assert R.choose_learning_rate(tmp_path, "sgd").lr == 0.001
    with pytest.raises(ValueError, match="adam"):
        R.choose_learning_rate(tmp_path, "adam")


def test_validation_trials_rank_by_validation_pixel_error_then_rand(tmp_path):
    _record(tmp_path, "a", 0, pixel=0.05, lr=0.1)  # validation pixel 0.15
    _record(tmp_path, "b", 0, pixel=0.09, lr=0.001)  # 0.091
    _record(tmp_path, "c", 0, pixel=0.08, lr=0.01)  # the same validation pixel error; Rand breaks the tie
    rec = json.loads((tmp_path / "c-s0.json").read_text())
    rec["metrics"]["validation"]["none"].update(pixel_error=0.09 + 0.001, rand_error=0.1)
    (tmp_path / "c-s0.json").write_text(json.dumps(rec))
    trials = R.validation_trials(tmp_path, fields=("lr",))
    assert list(trials["name"]) == ["c", "b", "a"] and list(trials.columns[:3]) == ["name", "lr", "n_seeds"]
    assert trials["pixel_error"].iloc[0] == pytest.approx(0.091)
    assert list(R.validation_trials(tmp_path, fields=("lr",), names=["a", "b"])["name"]) == ["b", "a"]
    with pytest.raises(ValueError, match="no validation records"):
        R.validation_trials(tmp_path / "absent")


def _validation_record(folder: Path, name: str, seed: int, **val: float) -> None:
    scores = {**dict.fromkeys(METRICS, 0.5), "pixel_error": 0.10 + 0.001 * seed, **val}
    none = {"none": scores}
    rec = {"run_id": f"{name}-s{seed}", "name": name, "seed": seed, "status": "ok", "config": {}}
    rec["metrics"] = {"validation": none, "test": {"none": dict.fromkeys(METRICS, 0.5)}}
    if name == "baseline":  # test-time averaging of the baseline's own models
        rec["metrics"]["validation"].update(
            rot4={**scores, "pixel_error": scores["pixel_error"] - 0.002},
            d4={**scores, "pixel_error": scores["pixel_error"] - 0.003 - 0.0001 * seed},
        )
    (folder / f"{name}-s{seed}.json").write_text(json.dumps(rec))


def test_recipe_takes_what_helps_on_validation_and_hurts_nothing(tmp_path):
    grid = Grid(
        base={"base_channels": 4, "iterations": 10},
        entries=[
            {"name": "baseline"},
            {"name": "adam", "optimizer": "adam"},
            {"name": "bilinear", "upsampling": "bilinear"},
            {"name": "no_dropout", "dropout": 0.0},
            {"name": "slices_3", "train_slices": [0, 1, 2]},
        ],
    )
    for seed in range(3):
        base = 0.10 + 0.001 * seed
        _validation_record(tmp_path, "baseline", seed)
        _validation_record(tmp_path, "adam", seed, pixel_error=base - 0.01 - 0.0002 * seed)  # helps
        _validation_record(
            tmp_path, "bilinear", seed, pixel_error=base - 0.02 - 0.0002 * seed, rand_error=0.6 + 0.001 * seed
        )
        _validation_record(tmp_path, "no_dropout", seed, pixel_error=base + 0.0005 * (-1) ** seed)  # noise
        _validation_record(tmp_path, "slices_3", seed, pixel_error=base - 0.05 - 0.0002 * seed)  # data: never
    choice = R.recipe_from_validation(tmp_path, grid).set_index("name")
    assert choice.loc["adam", "taken"] and choice.loc["adam", "fields"] == {"optimizer": "adam"}
    assert not choice.loc["bilinear", "taken"] and choice.loc["bilinear", "why"] == "hurts rand_error"
    assert not choice.loc["no_dropout", "taken"] and choice.loc["no_dropout", "why"] == "does not help pixel_error"
    assert choice.loc["tta_d4", "taken"] and not choice.loc["tta_rot4", "taken"]
    assert choice.loc["tta_rot4", "why"] == "helps less than tta_d4, which sets tta too"
    assert "slices_3" not in choice.index
    assert R.recipe_overrides(choice.reset_index()) == {"optimizer": "adam", "tta": "d4"}
    # records of seeds outside the grid (a later study sharing the folder) do not move the choice
    for seed in range(5, 10):
        _validation_record(tmp_path, "baseline", seed)
        _validation_record(tmp_path, "no_dropout", seed, pixel_error=0.05)  # would help, by far
    again = R.recipe_from_validation(tmp_path, grid).set_index("name")
    assert not again.loc["no_dropout", "taken"] and again.loc["adam", "taken"]
    with pytest.raises(ValueError, match="not an entry"):
        R.change_fields(grid, "batch_norm")


def test_loss_curves_come_from_the_records(study):
    curves = A.loss_curves(study, ["baseline"])
    assert len(curves) == 6 and set(curves.columns) == {"name", "seed", "step", "loss"}


# --- the committed evidence -----------------------------------------------------------------------------

needs_records = pytest.mark.skipif(not RUNS.is_dir(), reason="no committed study records in this checkout")


@needs_records
def test_committed_table_is_the_aggregate_of_the_committed_records(tmp_path):
    committed = pd.read_csv(ROOT / "results" / "06_ablations.csv")
    fresh = A.ablation_table(RUNS)
    fresh.to_csv(buf := tmp_path / "06_ablations.csv", index=False, float_format="%.10g")
    assert pd.read_csv(buf).equals(committed), "results/06_ablations.csv differs from its records: run notebook 06"


def test_committed_ci_recipe_trials_are_the_validation_ranking_of_their_records(tmp_path):
    """results/04_ci_recipe.csv (notebook 04) ranks the trials of studies/ci_recipe.toml on validation, and the
    ci profile is the first: the profile's recipe comes from validation, not from the test block."""
    from unet_repro.study.grid import load_grid
    from unet_repro.training.config import profile_config

    runs = ROOT / "results" / "04_ci_recipe" / "runs"
    grid = load_grid(ROOT / "studies" / "ci_recipe.toml")
    assert sorted(p.stem for p in runs.glob("*.json")) == sorted(s.run_id for s in grid.specs)
    fields = ("optimizer", "lr", "augment", "iterations", "base_channels")
    R.validation_trials(runs, fields=fields).to_csv(buf := tmp_path / "t.csv", index=False, float_format="%.10g")
    committed = pd.read_csv(ROOT / "results" / "04_ci_recipe.csv")
    assert pd.read_csv(buf).equals(committed), "results/04_ci_recipe.csv differs from its records: run notebook 04"
    ci, best = profile_config("ci"), committed.iloc[0]
    assert tuple(best[f] for f in fields) == tuple(getattr(ci, f) for f in fields)


@needs_records
def test_every_committed_record_holds_what_the_study_needs():
    for path in sorted(RUNS.glob("*.json")):
        rec = json.loads(path.read_text())
        assert rec["run_id"] == path.stem and rec["status"] in ("ok", "diverged"), path.name
        if rec["status"] == "ok":
            assert rec["config"]["train_slices"] == list(range(20)) or max(rec["config"]["train_slices"]) < 20
            assert set(rec["metrics"]["test"]["none"]) == set(METRICS), path.name


def _cost(config: dict) -> int:
    """Convolution work of a run, up to a constant: steps x tiles x pixels x channels squared (fields a record
    predates take their defaults)."""
    c = saved_config(config)
    return c["iterations"] * c["batch_size"] * c["tile"] ** 2 * c["base_channels"] ** 2


def _cheapest_record() -> dict:
    recs = [json.loads(p.read_text()) for p in sorted(RUNS.glob("*.json"))]
    ok = [r for r in recs if r["status"] == "ok" and r["device"] == "cpu"]
    return min(ok, key=lambda r: (_cost(r["config"]), r["run_id"]))


@needs_records
@pytest.mark.slow
def test_the_cheapest_committed_run_reruns_within_the_seed_study(isbi, tmp_path):
    """CI reruns one run of the study from its record's configuration and compares all five metrics."""
    from unet_repro.study.grid import RunSpec
    from unet_repro.study.sweep import run_one

    rec = _cheapest_record()
    spec = RunSpec(rec["name"], rec["seed"], rec["config"], ("none",), rec["phase"])
    fresh = run_one(spec, tmp_path)
    assert fresh["status"] == "ok", fresh.get("error")
    tol = seed_tolerances(load_records(ROOT / SEED_STUDY), "ci")
    for block, modes in fresh["metrics"].items():
        for m in METRICS:
            got, want = modes["none"][m], rec["metrics"][block]["none"][m]
            assert abs(got - want) <= tol[m], f"{rec['run_id']} {block} {m}: {got} vs recorded {want} (tol {tol[m]})"


def test_readme_block_rewrites_only_what_lies_between_its_markers(study, tmp_path):
    """``python -m unet_repro.readme`` writes each block with ``results.write_between``."""
    from unet_repro.results import write_between

    table = A.readme_table(A.ablation_table(study))
    readme = tmp_path / "README.md"
    start, end = A.README_MARKERS
    readme.write_text(f"intro\n{start}\nold table\n{end}\noutro\n")
    assert write_between(readme, A.README_MARKERS, table) and not write_between(readme, A.README_MARKERS, table)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old table" not in text
    assert table in text and "+0.0210 [" in text
    (tmp_path / "bare.md").write_text("no markers")
    with pytest.raises(ValueError, match="lacks the lines"):
        write_between(tmp_path / "bare.md", A.README_MARKERS, table)


def test_readme_row_of_a_change_with_one_seed_pair_says_so():
    """One seed pair has no interval: the row says so instead of printing "nan"."""
    rows = pd.DataFrame(
        {
            "name": "no_dropout",
            "change": "no drop-out",
            "claim": "paper 3.1",
            "reference": "baseline",
            "metric": list(METRICS),
            "mean_diff": 0.001,
            "ci_low": float("nan"),
            "ci_high": float("nan"),
            "n_pairs": 1,
        }
    )
    row = next(line for line in A.readme_table(rows).splitlines() if "`no_dropout`" in line)
    assert "+0.0010 (one pair: no interval)" in row and "| 1 |" in row and "nan" not in row
