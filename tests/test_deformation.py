"""Tests of unet_repro.augment.deformation: what the elastic deformation of section 3.1 does to training tiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from unet_repro.augment.deformation import (
    DeformationStats,
    deformation_statistics,
    rigid_shift_change,
    table_kinds,
    training_tile,
)
from unet_repro.augment.elastic import elastic_displacement
from unet_repro.results import Stochastic


def _stack(n: int = 3, size: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grey images and Voronoi-like labels with membranes 2 px wide (0 membrane, 255 cell)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = []
    for _ in range(n):
        seeds = rng.uniform(0, size, (12, 2))
        d = np.sort((yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2, axis=-1)
        labels.append(np.where(np.sqrt(d[..., 1]) - np.sqrt(d[..., 0]) > 2.0, 255, 0).astype(np.uint8))
    images = rng.integers(0, 256, (n, size, size)).astype(np.uint8)
    return images, np.asarray(labels)


def test_training_tile_mirrors_the_slice():
    images, labels = _stack(1, 96)
    img, lab = training_tile(images[0], labels[0], tile=128)
    assert img.shape == lab.shape == (128, 128) and img.dtype == np.float32
    np.testing.assert_array_equal(lab[16:112, 16:112], labels[0])
    np.testing.assert_allclose(img[16:112, 16:112], images[0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(lab[15], lab[17])  # reflected about the slice's first row
    np.testing.assert_array_equal(lab[:, 112], lab[:, 110])
    for bad in (127, 90):
        with pytest.raises(ValueError, match="tile"):
            training_tile(images[0], labels[0], tile=bad)


def test_no_deformation_changes_nothing():
    images, labels = _stack()
    s = deformation_statistics(images, labels, "none", sigma=0.0, n_fields=3, n_tiles=3, tile=128, out=64, margin=8)
    r = s.row
    assert (r["control_std_px"], r["pixel_rms_px"], r["max_step_px"], r["min_jacobian_det"]) == (0, 0, 0, 1)
    assert r["label_changed_frac"] == 0 and r["cells_before"] == r["cells_after"] > 0
    assert r["merged_per_tile"] == r["split_per_tile"] == r["vanished_per_tile"] == 0
    assert list(s.per_tile.columns) == ["before", "after", "merged", "split", "vanished", "changed"]


def test_statistics_of_a_setting_follow_its_draws():
    images, labels = _stack()
    kw = dict(n_fields=4, n_tiles=2, tile=128, out=64, margin=8, seed=7)
    s10 = deformation_statistics(images, labels, "a", sigma=10.0, **kw)
    s20 = deformation_statistics(images, labels, "b", sigma=20.0, **kw)
    # the fields come first from the seeded generator, before any tile
    rng = np.random.default_rng(7)
    fields = [elastic_displacement((128, 128), rng) for _ in range(4)]
    rms = np.sqrt(np.mean([(f**2).mean() for f in fields]))
    assert s10.row["pixel_rms_px"] == pytest.approx(rms, rel=1e-12)
    # one seed for every setting: sigma 20 fields are the sigma 10 ones doubled
    assert s20.row["pixel_rms_px"] == pytest.approx(2 * s10.row["pixel_rms_px"], rel=1e-12)
    assert s20.row["control_std_px"] == pytest.approx(2 * s10.row["control_std_px"], rel=1e-9)
    assert 0 < s10.row["min_jacobian_det"] < 1 and s10.row["label_changed_frac"] > 0


def test_rigid_shift_change_of_stripes():
    """Stripes 4 px wide, period 8: a shift by dx columns changes |dx| / 4 of the pixels (|dx| <= 4)."""
    labels = np.broadcast_to(np.where(np.arange(96) % 8 < 4, 255, 0), (2, 96, 96))
    got = rigid_shift_change(labels, [0, 2, 4], window=64)
    # 8 directions: dx = round(s cos a) for a = 0, 45, ..., 315 degrees
    dx = {s: [round(s * np.cos(a)) for a in np.arange(8) * np.pi / 4] for s in (2, 4)}
    expected = [0.0] + [np.mean([min(abs(x), 4) / 4 for x in dx[s]]) for s in (2, 4)]
    np.testing.assert_allclose(got, expected)
    assert got[2] == pytest.approx(0.625)
    with pytest.raises(ValueError, match="shifts"):
        rigid_shift_change(labels, [17], window=64)


def test_table_kinds_floors_and_scales():
    tiles = pd.DataFrame({c: [1.0, 1.0] for c in ["before", "after", "merged", "split", "vanished", "changed"]})
    row = {"n_fields": 400, "n_tiles": 2, "sigma_px": 20.0, "grid": 3}
    kinds = table_kinds([DeformationStats(row, tiles, 0.001), DeformationStats(row | {"sigma_px": 10.0}, tiles, 0.0)])
    assert kinds["merged_per_tile"] == Stochastic(0.25, "4 SE (at least 0.25) of a mean count over 2 tiles")
    assert kinds["label_changed_frac"].atol == 1e-3  # no spread between tiles: the floor
    assert kinds["control_std_px"].atol == round(4 * 20.0 / np.sqrt(2 * 7200), 2)  # the largest sigma counts
    assert kinds["max_step_px"].atol == 0.004 and kinds["speedup"] == "measured"
