"""The held-out learning curve (``train(curve=True)``, ``unet_repro.training.curve``): same weights, rows, resume."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from configs import tiny_config

from unet_repro.data.isbi2012 import IsbiData
from unet_repro.inference.tiling import predict_stack
from unet_repro.metrics import isbi2012_scores
from unet_repro.training import loop as T
from unet_repro.training.curve import CURVE_COLUMNS


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # weight-map cache goes to tmp


@pytest.fixture
def small(isbi) -> IsbiData:
    """The stack cut to 128 x 128 slices, so that scoring the held-out block takes well under a second."""
    return dataclasses.replace(
        isbi,
        train_images=np.ascontiguousarray(isbi.train_images[:, :128, :128]),
        train_labels=np.ascontiguousarray(isbi.train_labels[:, :128, :128]),
    )


def _cfg(**kw):
    return tiny_config(checkpoint_every=2, tta="none", **kw)


def test_curve_leaves_the_weights_alone_and_scores_each_checkpoint(small, tmp_path):
    plain = T.train(_cfg(), tmp_path / "plain", isbi=small, progress=False, device="cpu", evaluate=False)
    with_curve = T.train(_cfg(), tmp_path / "curve", isbi=small, progress=False, device="cpu", curve=True)
    for k, v in plain.model.state_dict().items():
        assert torch.equal(v, with_curve.model.state_dict()[k]), k
    curve = pd.read_csv(tmp_path / "curve" / "curve.csv")
    assert tuple(curve.columns) == CURVE_COLUMNS
    assert curve["step"].tolist() == [2, 4, 6]
    # the last row is the finished model's one-pass scores on the held-out slices 25-29
    expected = isbi2012_scores(
        predict_stack(with_curve.model.eval(), small.train_images[25:30], tile=252), small.train_labels[25:30]
    )
    for metric in CURVE_COLUMNS[1:-1]:
        assert curve[metric].iloc[-1] == pytest.approx(expected[metric], abs=1e-7), metric
    assert not (tmp_path / "plain" / "curve.csv").exists()


def test_curve_of_a_resumed_run_equals_the_uninterrupted_one(small, tmp_path):
    T.train(_cfg(), tmp_path / "whole", isbi=small, progress=False, device="cpu", evaluate=False, curve=True)
    T.train(_cfg(), tmp_path / "cut", isbi=small, progress=False, device="cpu", stop_after=4, curve=True)
    rows = (tmp_path / "cut" / "curve.csv").read_text().splitlines()
    # interrupted after the checkpoint of step 4 but before its row, with a stray row past the checkpoint
    (tmp_path / "cut" / "curve.csv").write_text("\n".join([*rows[:-1], "6,0.5,0.5,0.5,0.5,0.5,1.0"]) + "\n")
    T.train(_cfg(), tmp_path / "cut", isbi=small, progress=False, device="cpu", evaluate=False, resume=True, curve=True)
    whole = pd.read_csv(tmp_path / "whole" / "curve.csv").drop(columns="seconds")
    cut = pd.read_csv(tmp_path / "cut" / "curve.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(whole, cut)
