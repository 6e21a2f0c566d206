"""The command line ``python -m unet_repro.evaluate``: values from the Java vectors, errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from unet_repro.metrics.command import main

VECTORS = Path(__file__).resolve().parent / "data" / "isbi2012_metrics"


@pytest.fixture(scope="module")
def merge_case():
    z = np.load(VECTORS / "syn_merge.npz")
    case = next(c for c in json.loads((VECTORS / "expected.json").read_text())["cases"] if c["name"] == "syn_merge")
    return z["proposal"], z["label"], case


def test_json_output_matches_java(tmp_path, merge_case, capsys):
    prob, lab, case = merge_case
    tifffile.imwrite(tmp_path / "p.tif", prob)
    tifffile.imwrite(tmp_path / "l.tif", lab)
    assert main(["--proposal", str(tmp_path / "p.tif"), "--labels", str(tmp_path / "l.tif"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("pixel_error", "warping_error", "rand_error", "v_rand", "v_info"):
        assert abs(out[key] - case[key]) <= 1e-9
    assert out["warping_error_pixels"] == case["warping_error_pixels"]
    assert set(out["best_thresholds"]) == {"pixel_error", "warping_error", "rand_error", "v_rand", "v_info"}


def test_table_output_and_module_entry_point(tmp_path, merge_case):
    prob, lab, case = merge_case
    tifffile.imwrite(tmp_path / "p.tif", prob)
    tifffile.imwrite(tmp_path / "l.tif", lab)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "unet_repro.metrics.command",
            "--proposal",
            str(tmp_path / "p.tif"),
            "--labels",
            str(tmp_path / "l.tif"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    line = next(row for row in run.stdout.splitlines() if row.startswith("warping_error"))
    assert abs(float(line.split()[1]) - case["warping_error"]) <= 1e-9


def test_bad_input_exit_code_and_message(tmp_path, merge_case, capsys):
    prob, lab, _ = merge_case
    tifffile.imwrite(tmp_path / "p.tif", prob * 2)  # outside [0, 1]
    tifffile.imwrite(tmp_path / "l.tif", lab)
    assert main(["--proposal", str(tmp_path / "p.tif"), "--labels", str(tmp_path / "l.tif")]) == 2
    assert "outside [0, 1]" in capsys.readouterr().err
    assert main(["--proposal", str(tmp_path / "missing.tif"), "--labels", str(tmp_path / "l.tif")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_inverted_proposal_warns_on_stderr(tmp_path, merge_case, capsys):
    prob, lab, _ = merge_case
    tifffile.imwrite(tmp_path / "p.tif", (1.0 - prob).astype(np.float32))
    tifffile.imwrite(tmp_path / "l.tif", lab)
    assert main(["--proposal", str(tmp_path / "p.tif"), "--labels", str(tmp_path / "l.tif"), "--json"]) == 0
    cap = capsys.readouterr()
    assert "inverted" in cap.err
    assert json.loads(cap.out)["pixel_error"] == 1.0
