"""The metrics on several threads: the same numbers to the last bit as one slice after the other.

``unet_repro.metrics`` scores the slices of a stack on :func:`unet_repro.metrics.metric_threads` threads
and adds the per-slice results in slice order (``unet_repro/metrics/_common.py``); these tests hold it to
that and check how the thread count is chosen.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy import ndimage

from unet_repro import metrics as M
from unet_repro.metrics._common import _map_slices


def _soft_stack(slices: int = 6, size: int = 96, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Voronoi cells with one-pixel membranes, and a blurred, noisy proposal (many small components at the
    low and high thresholds, so the per-slice Rand/V_info sums carry many digits)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels, probs = [], []
    for _ in range(slices):
        pts = rng.uniform(0, size, (int(rng.integers(8, 20)), 2))
        owner = ((yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2).argmin(-1)
        edge = np.zeros((size, size), bool)
        edge[:-1] |= owner[:-1] != owner[1:]
        edge[:, :-1] |= owner[:, :-1] != owner[:, 1:]
        label = np.where(edge, 0, 255).astype(np.uint8)
        blurred = ndimage.gaussian_filter((label > 0).astype(np.float64), 1.2, mode="nearest")
        probs.append(np.clip(blurred + rng.normal(0.0, 0.08, blurred.shape), 0.0, 1.0).astype(np.float32))
        labels.append(label)
    return np.stack(probs), np.stack(labels)


def _curves(ev: M.Evaluation) -> dict[str, np.ndarray]:
    """Every per-threshold array of an evaluation, by name."""
    out = {}
    for name in ("pixel", "rand", "v_rand", "v_info"):
        curve = getattr(ev, name)
        for f in ("fscore", "precision", "recall", "tp", "fp", "fn"):
            if getattr(curve, f) is not None:
                out[f"{name}.{f}"] = np.asarray(getattr(curve, f))
    for f in (
        "splits",
        "mergers",
        "hole_additions",
        "hole_deletions",
        "object_additions",
        "object_deletions",
        "mismatches",
        "error",
    ):
        out[f"warping.{f}"] = np.asarray(getattr(ev.warping, f))
    return out


def test_one_and_two_threads_give_identical_curves():
    prob, lab = _soft_stack()
    one, two = M.evaluate(prob, lab, threads=1), M.evaluate(prob, lab, threads=2)
    a, b = _curves(one), _curves(two)
    assert a.keys() == b.keys() and len(a) == 26
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name], equal_nan=True), name
    assert one.scores() == two.scores() and one.best_thresholds() == two.best_thresholds()
    # the stack is not trivial: every metric has something to count
    assert all(0 < v < 1 for v in one.scores().values())


def test_thread_count_comes_from_keyword_then_environment(monkeypatch):
    monkeypatch.delenv(M.THREADS_ENV, raising=False)
    assert M.metric_threads() >= 1
    monkeypatch.setenv(M.THREADS_ENV, "3")
    assert M.metric_threads() == 3
    assert M.metric_threads(1) == 1  # the keyword wins
    main = threading.get_ident()
    # 1 thread: the slices run one after the other in the calling thread; more: on worker threads
    assert set(_map_slices(lambda k: threading.get_ident(), 4, threads=1)) == {main}
    assert main not in set(_map_slices(lambda k: threading.get_ident(), 4, threads=2))
    assert _map_slices(lambda k: k * k, 7, threads=3) == [0, 1, 4, 9, 16, 25, 36]  # in slice order


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_thread_count_in_the_environment_is_named(monkeypatch, value):
    monkeypatch.setenv(M.THREADS_ENV, value)
    with pytest.raises(ValueError, match=M.THREADS_ENV):
        M.evaluate(np.ones((2, 8, 8), np.float32), np.full((2, 8, 8), 255, np.uint8))


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_bad_thread_keyword_is_rejected(value):
    with pytest.raises(ValueError, match="threads"):
        M.isbi2012_scores(np.ones((8, 8), np.float32), np.full((8, 8), 255, np.uint8), threads=value)
