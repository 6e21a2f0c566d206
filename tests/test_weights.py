"""Tests of unet_repro.loss.weights: eq. 2 of the paper, exactly, against slow references written here."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from unet_repro.loss import weights as W
from unet_repro.loss.cells import label_cells
from unet_repro.loss.distance import border_distances

ACC = 1e-4  # the accuracy the issue promises, "within 1e-4 of the exact value everywhere"


# ------------------------------------------------------------------------------------- references
def cells_of(label: np.ndarray) -> tuple[np.ndarray, int]:
    """Cells of a binary label: 4-connected components of label > 0 (the documented convention)."""
    four = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    return ndi.label(label > 0, structure=four)


def reference_map(cells: np.ndarray, k: int, w0: float, sigma: float, cw: tuple[float, float]) -> np.ndarray:
    """The straightforward per-cell method: one full-image EDT per cell, the two smallest per pixel."""
    d1 = np.full(cells.shape, np.inf)
    d2 = np.full(cells.shape, np.inf)
    for i in range(1, k + 1):
        d = ndi.distance_transform_edt(cells != i)
        d2 = np.where(d < d1, d1, np.minimum(d, d2))  # the old first becomes second, or d competes for it
        d1 = np.minimum(d1, d)
    bg = cells == 0
    out = np.where(bg, cw[0], cw[1]).astype(np.float64)
    if k >= 2:
        out[bg] += w0 * np.exp(-((d1 + d2)[bg] ** 2) / (2 * sigma**2))
    return out


def brute_force_map(cells: np.ndarray, w0: float, sigma: float, cw: tuple[float, float]) -> np.ndarray:
    """Eq. 2 from all pixel pairs (no distance transform at all): for tiny images only."""
    h, w = cells.shape
    yy, xx = np.mgrid[:h, :w]
    pts = np.stack([yy.ravel(), xx.ravel()], 1).astype(float)
    ids = [i for i in np.unique(cells) if i != 0]
    per_cell = []
    for i in ids:
        cp = pts[cells.ravel() == i]
        dist = np.sqrt(((pts[:, None, :] - cp[None, :, :]) ** 2).sum(-1)).min(1)
        per_cell.append(dist)
    bg = (cells == 0).ravel()
    out = np.where(bg, cw[0], cw[1]).astype(np.float64)
    if len(ids) >= 2:
        d = np.sort(np.stack(per_cell), axis=0)
        s = d[0] + d[1]
        out[bg] += w0 * np.exp(-(s[bg] ** 2) / (2 * sigma**2))
    return out.reshape(h, w)


def random_instances(rng: np.random.Generator, h: int, w: int, n: int, gap_prob: float = 0.3) -> np.ndarray:
    """Random Voronoi instances with some pixels turned to background (gaps, holes, touching cells)."""
    seeds = np.stack([rng.integers(0, h, n), rng.integers(0, w, n)], 1)
    yy, xx = np.mgrid[:h, :w]
    d = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
    lab = d.argmin(-1) + 1
    # background on Voronoi boundaries (thin membranes) and at random spots
    edge = np.zeros((h, w), bool)
    edge[1:, :] |= lab[1:, :] != lab[:-1, :]
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    lab[edge & (rng.random((h, w)) < 0.8)] = 0
    lab[rng.random((h, w)) < gap_prob * 0.1] = 0
    values = rng.permutation(np.arange(1, n + 1) * 7)  # non-consecutive ids
    return np.where(lab > 0, values[np.maximum(lab - 1, 0)], 0).astype(np.int32)


# --------------------------------------------------------------------------------- exactness, ISBI
def _check_isbi_slice(label: np.ndarray) -> None:
    cells, k = cells_of(label)
    assert 80 <= k <= 160, k  # the "about 100-140 cells": the data we believe we test on
    cw = W.class_balance(label)
    ref = reference_map(cells, k, 10.0, 5.0, cw)
    got = W.border_weight_map(label)
    assert got.dtype == np.float32 and got.shape == label.shape
    err = np.abs(got.astype(np.float64) - ref).max()
    assert err < ACC, f"max |fast - reference| = {err}"
    # the border term is really there (a test that cannot pass with w = w_c alone)
    assert (ref - np.where(label == 0, cw[0], cw[1])).max() > 5


@pytest.mark.parametrize("z", [0, 17])
def test_isbi_slices_match_per_cell_reference(isbi, z):
    _check_isbi_slice(isbi.train_labels[z])


@pytest.mark.slow
def test_all_isbi_slices_match_per_cell_reference(isbi):
    for z in range(isbi.train_labels.shape[0]):
        _check_isbi_slice(isbi.train_labels[z])


def test_isbi_d1_is_the_background_distance_transform(isbi):
    """d1 for membrane pixels is the plain EDT to the nearest cell pixel (an independent single EDT)."""
    label = isbi.train_labels[5]
    cells, k = label_cells(label)
    d1, d2 = border_distances(cells, k, max_distance=None)
    bg = label == 0
    expected = ndi.distance_transform_edt(bg)
    np.testing.assert_array_equal(d1[bg], expected[bg])
    assert np.all(d2[bg] >= d1[bg])


def test_wider_sigma_and_other_w0_match_reference(isbi):
    label = isbi.train_labels[9][:200, :256]
    cells, k = cells_of(label)
    for w0, sigma in [(3.0, 9.0), (25.0, 2.0)]:
        ref = reference_map(cells, k, w0, sigma, (1.0, 1.0))
        got = W.border_weight_map(label, w0=w0, sigma=sigma, class_weights=(1.0, 1.0))
        assert np.abs(got - ref).max() < ACC, (w0, sigma)


# ------------------------------------------------------------------------- exactness, synthetic
@pytest.mark.parametrize("seed", range(6))
def test_random_instances_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(20, 45)), int(rng.integers(20, 45))
    lab = random_instances(rng, h, w, int(rng.integers(3, 12)))
    cells = label_cells(lab, instances=True)[0]
    sigma = float(rng.choice([2.0, 5.0, 12.0]))  # 12: the cut-off radius exceeds the image
    cw = (1.7, 0.6)
    got = W.border_weight_map(lab, w0=10.0, sigma=sigma, class_weights=cw, instances=True)
    exp = brute_force_map(cells, 10.0, sigma, cw)
    assert np.abs(got - exp).max() < ACC


@pytest.mark.parametrize("seed", range(4))
def test_package_per_cell_reference_matches_brute_force(seed):
    """W.per_cell_weight_map (notebook 02's and the benchmark's reference) is eq. 2 exactly, cut-off or not."""
    rng = np.random.default_rng(100 + seed)
    h, w = int(rng.integers(20, 45)), int(rng.integers(20, 45))
    lab = random_instances(rng, h, w, int(rng.integers(3, 12)))
    cells = label_cells(lab, instances=True)[0]
    sigma = float(rng.choice([2.0, 5.0, 12.0]))
    got = W.per_cell_weight_map(lab, w0=10.0, sigma=sigma, class_weights=(1.7, 0.6), instances=True)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, brute_force_map(cells, 10.0, sigma, (1.7, 0.6)), rtol=0, atol=1e-9)


def test_package_per_cell_reference_on_an_isbi_slice(isbi):
    label = isbi.train_labels[3]
    cells, k = cells_of(label)
    cw = W.class_balance(label)
    ref = W.per_cell_weight_map(label)  # the slice's own balance, as border_weight_map defaults to
    np.testing.assert_allclose(ref, reference_map(cells, k, 10.0, 5.0, cw), rtol=0, atol=1e-12)
    assert np.abs(W.border_weight_map(label).astype(np.float64) - ref).max() < ACC


def test_instance_ids_are_cells_even_when_touching():
    """Two instances that touch are two cells (a binary reading would merge them into one)."""
    lab = np.zeros((20, 30), np.uint16)
    lab[2:18, 2:15] = 3
    lab[2:18, 15:28] = 9
    got = W.border_weight_map(lab, class_weights=(1.0, 1.0))
    # just above the contact: d1 = 1 (to id 3 below), d2 = sqrt(2) (to id 9, diagonally)
    assert np.isclose(got[1, 14], 1 + 10 * np.exp(-((1 + np.sqrt(2)) ** 2) / 50), atol=1e-5)
    binary = W.border_weight_map((lab > 0).astype(np.uint8), class_weights=(1.0, 1.0))
    assert np.allclose(binary, 1.0)  # one cell only: no border term


def test_two_point_cells_analytic():
    """Two one-pixel cells p, q: d1 + d2 = |x - p| + |x - q| at every background pixel."""
    h, w = 41, 53
    p, q = (12, 10), (25, 40)
    lab = np.zeros((h, w), np.uint8)
    lab[p] = lab[q] = 1
    yy, xx = np.mgrid[:h, :w]
    s = np.hypot(yy - p[0], xx - p[1]) + np.hypot(yy - q[0], xx - q[1])
    w0, sigma = 10.0, 8.0
    exp = 2.0 + w0 * np.exp(-(s**2) / (2 * sigma**2))
    exp[p] = exp[q] = 0.5
    got = W.border_weight_map(lab, w0, sigma, class_weights=(2.0, 0.5))
    assert np.abs(got - exp).max() < ACC
    # the maximum of the border term is on the segment pq, where d1 + d2 = |p - q|; it is not cut off
    assert got.max() > 2.0 + w0 * np.exp(-(np.hypot(13, 30) ** 2) / (2 * sigma**2)) - 1e-4


def test_strips_gap_analytic():
    """Two full-height strips with a gap of g columns: d1 + d2 = g + 1 on every gap pixel."""
    for g in (1, 3, 8):
        lab = np.zeros((30, 40), np.uint8)
        lab[:, :10] = 255
        lab[:, 10 + g :] = 255
        cw = W.class_balance(lab)
        assert np.isclose(cw[0], lab.size / (2 * 30 * g)) and np.isclose(cw[1], lab.size / (2 * 30 * (40 - g)))
        got = W.border_weight_map(lab)
        expected_gap = cw[0] + 10.0 * np.exp(-((g + 1) ** 2) / 50.0)
        assert np.allclose(got[:, 10 : 10 + g], expected_gap, atol=1e-5)
        assert np.allclose(got[:, :10], cw[1]) and np.allclose(got[:, 10 + g :], cw[1])


def test_transpose_symmetry(isbi):
    label = isbi.train_labels[3][100:300, 50:330]
    a = W.border_weight_map(label)
    b = W.border_weight_map(np.ascontiguousarray(label.T))
    np.testing.assert_array_equal(a.T, b)


def test_truncation_never_overestimates_and_cutoff_formula():
    r = W.cutoff_distance(10.0, 5.0)
    assert np.isclose(10.0 * np.exp(-(r**2) / 50.0), W.TRUNCATION_TOL)
    assert W.cutoff_distance(1e-6, 5.0) == 0.0


# ------------------------------------------------------------------------------------ class balance
def test_class_balance_counts():
    lab = np.zeros((10, 10), np.uint8)
    lab[:, :8] = 255  # 80 cell, 20 membrane
    wm, wc = W.class_balance(lab)
    assert np.isclose(wm, 100 / 40) and np.isclose(wc, 100 / 160)
    assert np.isclose(20 * wm, 80 * wc)  # both classes carry half the total weight


def test_class_balance_stack_is_pooled_not_averaged():
    a = np.zeros((10, 10), np.uint8)
    a[:, :8] = 1  # 20 membrane
    b = np.zeros((10, 10), np.uint8)
    b[:, :5] = 1  # 50 membrane
    wm, wc = W.class_balance(np.stack([a, b]))
    assert np.isclose(wm, 200 / (2 * 70)) and np.isclose(wc, 200 / (2 * 130))


def test_isbi_stack_balance(isbi):
    wm, wc = W.class_balance(isbi.train_labels)
    frac = (isbi.train_labels == 0).mean()
    assert np.isclose(wm, 1 / (2 * frac)) and 0.15 < frac < 0.3


# -------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((0, 5), np.uint8), "empty"),
        (np.zeros(10, np.uint8), "2D"),
        (np.zeros((2, 2, 2, 2), np.uint8), "2D"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.ones((4, 4), np.float32), "float"),
        (-np.ones((4, 4), np.int32), "negative"),
        (np.array([["a", "b"], ["c", "d"]]), "dtype"),
    ],
)
def test_bad_labels_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        W.border_weight_map(bad, class_weights=(1.0, 1.0))


def test_grey_image_is_not_an_instance_image(isbi):
    with pytest.raises(ValueError, match="not an instance image"):
        W.border_weight_map(isbi.train_images[0])


def test_interpolated_binary_label_is_rejected(isbi):
    lab = isbi.train_labels[0][:128, :128].astype(np.float64)
    blurred = ndi.uniform_filter(lab, 3).round().astype(np.uint8)  # like a resized 0/255 label
    with pytest.raises(ValueError, match="not an instance image"):
        W.border_weight_map(blurred, class_weights=(1.0, 1.0))
    # thresholding, as the message suggests, gives a valid binary label
    assert W.border_weight_map((blurred > 127).astype(np.uint8), class_weights=(1.0, 1.0)).shape == (128, 128)


def test_all_cell_and_all_background():
    cell = np.full((16, 16), 255, np.uint8)
    with pytest.raises(ValueError, match="no membrane"):
        W.border_weight_map(cell)  # its own class balance is undefined
    assert np.all(W.border_weight_map(cell, class_weights=(2.0, 0.6)) == np.float32(0.6))
    bg = np.zeros((16, 16), np.uint8)
    with pytest.raises(ValueError, match="no cell"):
        W.class_balance(bg)
    assert np.all(W.border_weight_map(bg, class_weights=(2.0, 0.6)) == np.float32(2.0))


def test_single_cell_has_no_border_term():
    lab = np.zeros((20, 20), np.uint8)
    lab[5:15, 5:15] = 1
    got = W.border_weight_map(lab, class_weights=(1.0, 1.0))
    assert np.all(got == 1.0)


@pytest.mark.parametrize(
    "kw",
    [
        dict(w0=-1.0),
        dict(sigma=0.0),
        dict(sigma=float("nan")),
        dict(class_weights=(1.0,)),
        dict(class_weights=(1.0, float("inf"))),
    ],
)
def test_bad_parameters_raise(kw):
    lab = np.zeros((8, 8), np.uint8)
    lab[:, :3] = lab[:, 5:] = 1
    args = dict(class_weights=(1.0, 1.0)) | kw
    with pytest.raises(ValueError):
        W.border_weight_map(lab, **args)


# ------------------------------------------------------------------------------ stacks and caching
def test_weight_maps_stack_and_cache(isbi, tmp_path, monkeypatch):
    labels = isbi.train_labels[:3, :96, :128]
    cw = W.class_balance(labels)
    maps = W.weight_maps(labels, cache_dir=tmp_path)
    assert maps.shape == labels.shape and maps.dtype == np.float32
    for z in range(3):
        np.testing.assert_array_equal(maps[z], W.border_weight_map(labels[z], class_weights=cw))
    files = list(tmp_path.glob("weight_maps_*.npy"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))

    def boom(*a, **k):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(W, "border_weight_map", boom)
    np.testing.assert_array_equal(W.weight_maps(labels, cache_dir=tmp_path), maps)  # a hit: loaded
    changed = labels.copy()
    changed[0, 0, 0] ^= 255
    with pytest.raises(AssertionError, match="recomputed"):
        W.weight_maps(changed, cache_dir=tmp_path)  # a different label is a miss
    with pytest.raises(AssertionError, match="recomputed"):
        W.weight_maps(labels, sigma=4.0, cache_dir=tmp_path)  # so is a different parameter


def test_weight_maps_handles_all_cell_slice_with_stack_balance():
    stack = np.full((2, 12, 12), 255, np.uint8)
    stack[0, :, 5] = 0
    maps = W.weight_maps(stack)
    wm, wc = W.class_balance(stack)
    assert np.all(maps[1] == np.float32(wc))
    assert np.all(maps[0][:, 5] > wm)  # the membrane between two cells carries the border term


# ---------------------------------------------------------------------------- separation borders
def test_separation_borders_straight_contact():
    lab = np.zeros((12, 20), np.int32)
    lab[2:10, 2:10] = 1
    lab[2:10, 10:18] = 2
    for width in (2, 4):
        out = W.separation_borders(lab, width=width)
        half = width // 2
        assert np.all(out[2:10, 10 - half : 10 + half] == 0)  # the gap
        assert np.all(out[2:10, 2 : 10 - half] == 1) and np.all(out[2:10, 10 + half : 18] == 2)
        assert np.all(out[lab == 0] == 0)  # nothing added
    # the gap makes the binary label two cells, with a border term of d1 + d2 = width + 1
    binary = (W.separation_borders(lab, 2) > 0).astype(np.uint8)
    wmap = W.border_weight_map(binary, class_weights=(1.0, 1.0))
    assert np.allclose(wmap[5, 9:11], 1 + 10 * np.exp(-(3**2) / 50), atol=1e-5)


def test_separation_borders_keeps_isolated_cells_and_diagonal_contact():
    lab = np.zeros((10, 10), np.int32)
    lab[1:4, 1:4] = 1
    lab[4:7, 4:7] = 2  # touches 1 only at a corner
    lab[8:10, 8:10] = 3
    np.testing.assert_array_equal(W.separation_borders(lab, 2), lab)


@pytest.mark.parametrize("width", [0, 1, 3, 2.0, True])
def test_separation_borders_bad_width(width):
    with pytest.raises(ValueError, match="even integer"):
        W.separation_borders(np.ones((4, 4), np.int32), width=width)
