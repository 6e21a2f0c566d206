"""'My prediction is blank': the warning predict and evaluate print, and when they print it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile

from unet_repro.metrics.diagnose import CAUSES, blank_warning


@pytest.mark.parametrize(
    ("prob", "needle"),
    [
        (np.full((2, 32, 32), 0.62, np.float32), "P(cell) spans only 0.000"),  # constant
        (np.linspace(0.0, 0.4, 2048, dtype=np.float32).reshape(2, 32, 32), "0.0% of the pixels are cell"),
        (np.linspace(0.6, 1.0, 1024, dtype=np.float32).reshape(32, 32), "100.0% of the pixels are cell"),
    ],
)
def test_a_blank_map_gets_one_line_naming_the_causes(prob, needle):
    warning = blank_warning(prob)
    assert warning is not None and needle in warning and "\n" not in warning
    assert all(cause in warning for cause in CAUSES)


def test_a_map_with_both_classes_gets_none_and_the_input_range_is_quoted():
    prob = np.zeros((32, 32), np.float32)
    prob[:, :20] = 0.9
    assert blank_warning(prob) is None
    image = np.full((32, 32), 7, np.uint8)
    image[0, 0] = 9
    assert "grey values span 7..9" in blank_warning(np.full((32, 32), 0.5), image)


def test_predict_warns_when_an_untrained_model_gives_a_blank_map(tmp_path):
    """A model that learned nothing (here: never trained) on a uniform image predicts one value everywhere."""
    import torch

    from unet_repro.model.files import save_model
    from unet_repro.model.unet import UNet

    torch.manual_seed(0)
    save_model(UNet(base_channels=2, depth=4), tmp_path / "model.pt")
    tifffile.imwrite(tmp_path / "x.tif", np.full((1, 200, 200), 128, np.uint8))
    args = ["--model", "model.pt", "--input", "x.tif", "--output", "p.tif", "--no-progress", "--device", "cpu"]
    proc = subprocess.run(
        [sys.executable, "-m", "unet_repro.inference.command", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "the prediction is nearly blank" in proc.stderr and "label polarity" in proc.stderr
    assert "grey values span 128..128" in proc.stderr


def test_evaluate_warns_on_an_all_cell_proposal(tmp_path, capsys):
    from unet_repro.metrics.command import main

    lab = np.full((1, 64, 64), 255, np.uint8)
    lab[:, 30:33, :] = 0
    tifffile.imwrite(tmp_path / "l.tif", lab)
    tifffile.imwrite(tmp_path / "p.tif", np.ones((1, 64, 64), np.float32))
    assert main(["--proposal", str(tmp_path / "p.tif"), "--labels", str(tmp_path / "l.tif")]) == 0
    assert "the prediction is nearly blank (P(cell) spans only 0.000)" in capsys.readouterr().err
