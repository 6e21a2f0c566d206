"""Tests of unet_repro.augment.augmenter: the elastic deformation and augmentation of section 3.1."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from unet_repro.augment.augmenter import Augmenter, AugmentParams, gray_value
from unet_repro.augment.elastic import coordinate_map, elastic_deform, elastic_displacement
from unet_repro.augment.resampling import resample


def _blobs(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A label image of smooth blobs (values 0, 3, 7), like cells separated by membranes."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.normal(size=shape), 6)
    out = np.zeros(shape, dtype=np.uint8)
    out[noise > 0.01] = 3
    out[noise > 0.03] = 7
    return out


# ------------------------------------------------------------------------------------ the field


def _applied_displacement_at_centre(deform, n_draws: int, size: int = 101) -> np.ndarray:
    """(n_draws, 2) displacements that ``deform(image, rng, weight)`` applies at the centre control point.

    The weight map (bilinear: exact on a linear ramp) holds the row index, then the column index, so the
    deformed map at the centre reads the source coordinate ``centre + d``; the same seed deforms both ramps.
    """
    rows, cols = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32), indexing="ij")
    c = (size - 1) // 2
    out = np.empty((n_draws, 2))
    for i in range(n_draws):
        for axis, ramp in enumerate((rows, cols)):
            moved = deform(np.zeros_like(ramp), np.random.default_rng(i), ramp)
            out[i, axis] = moved[c, c] - c
    return out


@pytest.mark.parametrize("entry", ["Augmenter", "elastic_deform"])
def test_applied_displacement_std_at_control_points_is_sigma(entry):
    """Section 3.1: displacements ~ N(0, 10^2) at the 3x3 control points, measured on what the deformation
    does to an image (the centre control point, where mirroring plays no part), not on the random draws."""
    # the training augmenter's own defaults with every other transform switched off, or the plain function
    aug = Augmenter(p_rotate=0.0, p_shift=0.0, p_flip_rows=0.0, p_flip_cols=0.0, p_gray=0.0)

    def deform(image: np.ndarray, rng: np.random.Generator, weight: np.ndarray) -> np.ndarray:
        if entry == "Augmenter":
            return aug(image, None, rng, weight)[2]
        return elastic_deform(image, None, rng, weight=weight)[2]

    d = _applied_displacement_at_centre(deform, 600)
    sigma = 10.0
    se = sigma / math.sqrt(2 * d.size)  # standard error of a standard deviation from d.size normals
    assert abs(d.std() - sigma) < 4 * se, f"applied displacement std {d.std():.3f} vs {sigma} (SE {se:.3f})"
    assert abs(d.mean()) < 4 * sigma / math.sqrt(d.size)
    assert abs(np.corrcoef(d[:, 0], d[:, 1])[0, 1]) < 4 / math.sqrt(len(d))  # rows and columns independent


def test_field_passes_through_the_drawn_controls():
    """Corners and centre carry exactly the drawn displacements (rows component first, row-major)."""
    shape, sigma = (57, 81), 7.5
    field = elastic_displacement(shape, np.random.default_rng(5), grid=3, sigma=sigma)
    expected = np.random.default_rng(5).normal(size=(2, 3, 3)) * sigma
    got = field[:, [0, 28, 56]][:, :, [0, 40, 80]]
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_field_is_the_bicubic_spline_of_the_grid():
    """The separable field equals the 2-D cubic-spline interpolation of the control grid."""
    shape, g = (50, 70), 4
    field = elastic_displacement(shape, np.random.default_rng(2), grid=g, sigma=10.0)
    controls = np.random.default_rng(2).normal(size=(2, g, g)) * 10.0
    t = np.stack(np.meshgrid(np.linspace(0, g - 1, shape[0]), np.linspace(0, g - 1, shape[1]), indexing="ij"))
    for a in range(2):
        ref = ndimage.map_coordinates(controls[a], t, order=3, mode="mirror")
        np.testing.assert_allclose(field[a], ref, atol=1e-9)


def test_field_is_smooth():
    """A 3x3 grid over 572 px: neighbouring pixels' displacements differ by far less than a pixel."""
    field = elastic_displacement((572, 572), np.random.default_rng(3))
    step = max(np.abs(np.diff(field, axis=1)).max(), np.abs(np.diff(field, axis=2)).max())
    assert step < 0.5


def test_field_matches_elasticdeform():
    """Same control displacements -> the same per-pixel field as the elasticdeform package."""
    elasticdeform = pytest.importorskip(
        "elasticdeform",
        reason="elasticdeform (the augmentation benchmark's baseline) is not installed; `make benchmarks` installs it",
    )
    h, w = 60, 90
    controls = np.random.default_rng(4).normal(size=(2, 3, 3)) * 4.0
    yy, xx = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
    # deforming a coordinate ramp with linear interpolation reads the field back (where it stays inside)
    dy = elasticdeform.deform_grid(yy, controls, order=1, mode="nearest") - yy
    dx = elasticdeform.deform_grid(xx, controls, order=1, mode="nearest") - xx
    field = elastic_displacement((h, w), np.random.default_rng(4), sigma=4.0)
    inner = (slice(15, -15), slice(15, -15))
    np.testing.assert_allclose(field[0][inner], dy[inner], atol=1e-6)
    np.testing.assert_allclose(field[1][inner], dx[inner], atol=1e-6)


# ------------------------------------------------------------------------------------ resampling


def _mirror(i: np.ndarray, n: int) -> np.ndarray:
    i = np.abs(i)
    i = i % (2 * n - 2)
    return np.where(i > n - 1, 2 * n - 2 - i, i)


def _keys_reference(image: np.ndarray, coords: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution with mirrored borders, written out tap by tap."""

    def kernel(s: np.ndarray) -> np.ndarray:
        s = np.abs(s)
        return np.where(
            s <= 1,
            (a + 2) * s**3 - (a + 3) * s**2 + 1,
            np.where(s < 2, a * s**3 - 5 * a * s**2 + 8 * a * s - 4 * a, 0.0),
        )

    y, x = coords
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    out = np.zeros(y.shape)
    h, w = image.shape
    for dy in range(-1, 3):
        for dx in range(-1, 3):
            wy, wx = kernel(y - (y0 + dy)), kernel(x - (x0 + dx))
            out += wy * wx * image[_mirror(y0 + dy, h), _mirror(x0 + dx, w)]
    return out


def test_image_resampling_is_mirrored_bicubic():
    rng = np.random.default_rng(6)
    image = rng.random((23, 31)).astype(np.float32)
    coords = np.stack([rng.uniform(-8, 30, (17, 19)), rng.uniform(-8, 38, (17, 19))])
    out, _, _ = resample(image, coords)
    np.testing.assert_allclose(out, _keys_reference(image.astype(float), coords), atol=2e-4)


def test_label_and_weight_resampling_match_scipy_mirror():
    rng = np.random.default_rng(7)
    image = rng.random((40, 52)).astype(np.float32)
    label = rng.integers(0, 5, (40, 52)).astype(np.int16)
    weight = rng.uniform(1, 10, (40, 52)).astype(np.float32)
    coords = np.stack([rng.uniform(-15, 54, (30, 33)), rng.uniform(-15, 66, (30, 33))])
    _, lab, wt = resample(image, coords, label, weight)
    np.testing.assert_array_equal(lab, ndimage.map_coordinates(label, coords, order=0, mode="mirror"))
    np.testing.assert_allclose(
        wt, ndimage.map_coordinates(weight.astype(float), coords, order=1, mode="mirror"), atol=1e-4
    )
    assert wt.min() >= weight.min() and wt.max() <= weight.max()


# ------------------------------------------------------------------------------------ elastic_deform


def test_identity_when_sigma_is_zero():
    image = np.random.default_rng(8).random((64, 48)).astype(np.float32)
    label = _blobs((64, 48))
    out, lab = elastic_deform(image, label, np.random.default_rng(0), sigma=0.0)
    np.testing.assert_allclose(out, image, atol=1e-5)
    np.testing.assert_array_equal(lab, label)


@pytest.mark.parametrize("dtype,values", [(np.uint8, [0, 255]), (np.int64, [-3, 2**40, 17]), (bool, [False, True])])
def test_labels_keep_their_value_set(dtype, values):
    rng = np.random.default_rng(9)
    label = np.asarray(values, dtype=dtype)[rng.integers(0, len(values), (80, 70))]
    image = rng.random((80, 70)).astype(np.float32)
    _, lab = elastic_deform(image, label, np.random.default_rng(1), sigma=25.0)
    assert lab.dtype == label.dtype
    assert set(np.unique(lab)) <= set(np.unique(label))
    assert not np.array_equal(lab, label)  # it did deform


def test_label_follows_the_image():
    """Image = label as float: after one field deforms both, the image rounds to the label almost everywhere
    (and a label deformed with another field does not)."""
    label = (_blobs((120, 100), seed=3) > 0).astype(np.uint8)
    image = label.astype(np.float32)
    out, lab = elastic_deform(image, label, np.random.default_rng(11), sigma=12.0)
    _, other = elastic_deform(image, label, np.random.default_rng(12), sigma=12.0)
    assert np.mean(np.abs(out - lab) < 0.5) > 0.98
    assert np.mean(np.abs(out - other) < 0.5) < 0.9
    assert np.mean(lab != label) > 0.05  # and the deformation moved things


def test_constant_image_stays_constant():
    image = np.full((90, 70), 0.37, dtype=np.float32)
    out, _ = elastic_deform(image, None, np.random.default_rng(12), sigma=30.0)
    np.testing.assert_allclose(out, 0.37, atol=1e-5)
    geo = Augmenter(p_gray=0.0)
    out2, _, _ = geo(image, None, np.random.default_rng(13))
    np.testing.assert_allclose(out2, 0.37, atol=1e-5)


def test_determinism_per_seed():
    rng = np.random.default_rng(14)
    image, label = rng.random((100, 100)).astype(np.float32), _blobs((100, 100))
    weight = rng.uniform(1, 5, (100, 100)).astype(np.float32)
    a = elastic_deform(image, label, np.random.default_rng(3))
    b = elastic_deform(image, label, np.random.default_rng(3))
    c = elastic_deform(image, label, np.random.default_rng(4))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    aug = Augmenter()
    x = aug(image, label, np.random.default_rng(7), weight)
    y = aug(image, label, np.random.default_rng(7), weight)
    for u, v in zip(x, y, strict=False):
        np.testing.assert_array_equal(u, v)


def test_non_square_shapes():
    rng = np.random.default_rng(15)
    shape = (61, 143)
    image, label = rng.random(shape).astype(np.float32), _blobs(shape)
    weight = np.ones(shape, dtype=np.float32)
    assert elastic_displacement(shape, rng).shape == (2, *shape)
    out, lab = elastic_deform(image, label, rng)
    assert out.shape == shape and lab.shape == shape and out.dtype == np.float32
    out, lab, wt = Augmenter()(image, label, rng, weight)
    assert out.shape == lab.shape == wt.shape == shape
    out, lab, wt = elastic_deform(image, label, rng, weight=weight)
    assert wt.shape == shape


# ------------------------------------------------------------------------------------ geometry


def test_rotation_by_90_degrees_is_rot90():
    image = np.random.default_rng(16).random((33, 33)).astype(np.float32)
    label = _blobs((33, 33))
    out, lab, _ = resample(image, coordinate_map((33, 33), rotation_deg=90.0), label)
    np.testing.assert_allclose(out, np.rot90(image), atol=1e-4)
    np.testing.assert_array_equal(lab, np.rot90(label))


def test_flips_and_integer_shift():
    image = np.random.default_rng(17).random((30, 40)).astype(np.float32)
    out, _, _ = resample(image, coordinate_map((30, 40), flip_rows=True))
    np.testing.assert_allclose(out, image[::-1], atol=1e-4)
    out, _, _ = resample(image, coordinate_map((30, 40), flip_cols=True))
    np.testing.assert_allclose(out, image[:, ::-1], atol=1e-4)
    out, _, _ = resample(image, coordinate_map((30, 40), shift=(3.0, -5.0)))
    np.testing.assert_allclose(out[3:, :-5], image[:-3, 5:], atol=1e-4)
    # and the border is mirrored: row 0 of the output shows input row 3 (3 rows above row 0, reflected)
    np.testing.assert_allclose(out[0, :-5], image[3, 5:], atol=1e-4)


def test_any_rotation_keeps_mirrored_content():
    """A 45-degree rotation of a constant-plus-ramp image has no holes (mirrored, not zero-filled) corners."""
    image = np.full((64, 64), 0.5, dtype=np.float32)
    out, _, _ = resample(image, coordinate_map((64, 64), rotation_deg=45.0))
    np.testing.assert_allclose(out, 0.5, atol=1e-5)


# ------------------------------------------------------------------------------------ the pipeline


def test_none_is_identity_and_copies():
    rng = np.random.default_rng(18)
    image, label = rng.random((50, 50)).astype(np.float32), _blobs((50, 50))
    weight = rng.uniform(1, 3, (50, 50)).astype(np.float32)
    out, lab, wt = Augmenter.none()(image, label, rng, weight)
    np.testing.assert_array_equal(out, image)
    np.testing.assert_array_equal(lab, label)
    np.testing.assert_array_equal(wt, weight)
    assert out is not image and lab is not label and wt is not weight


def test_gray_values_change_the_image_only():
    rng = np.random.default_rng(19)
    image, label = rng.random((50, 50)).astype(np.float32), _blobs((50, 50))
    weight = rng.uniform(1, 3, (50, 50)).astype(np.float32)
    gray_only = Augmenter(p_elastic=0.0, p_rotate=0.0, p_shift=0.0, p_flip_rows=0.0, p_flip_cols=0.0)
    out, lab, wt = gray_only(image, label, np.random.default_rng(2), weight)
    assert not np.allclose(out, image)
    np.testing.assert_array_equal(lab, label)
    np.testing.assert_array_equal(wt, weight)


def test_gray_value_components():
    image = np.linspace(0.1, 0.9, 400, dtype=np.float32).reshape(20, 20)
    g = gray_value(image, gamma=2.0)
    assert math.isclose(g.min(), 0.1, abs_tol=1e-6) and math.isclose(g.max(), 0.9, abs_tol=1e-6)
    assert g.mean() < image.mean()  # gamma > 1 darkens the mid-tones
    c = gray_value(image, contrast=1.2)
    assert math.isclose(c.std(), 1.2 * image.std(), rel_tol=1e-4)
    assert math.isclose(c.mean(), image.mean(), abs_tol=1e-5)
    b = gray_value(image, brightness=0.05)
    np.testing.assert_allclose(b, image + 0.05, atol=1e-6)


def test_parameter_ranges_and_stream():
    aug = Augmenter()
    draws = [aug.sample(np.random.default_rng(s)) for s in range(400)]
    rot = np.array([d.rotation_deg for d in draws])
    assert rot.min() < -150 and rot.max() > 150 and np.all(np.abs(rot) <= 180)
    shifts = np.array([d.shift for d in draws])
    assert np.all(np.abs(shifts) <= 16) and np.abs(shifts).max() > 14
    assert 0.35 < np.mean([d.flip_rows for d in draws]) < 0.65
    for name, lo, hi in (("brightness", -0.1, 0.1), ("contrast", 0.8, 1.25), ("gamma", 0.8, 1.25)):
        v = np.array([getattr(d, name) for d in draws])
        assert v.min() >= lo and v.max() <= hi and v.max() - v.min() > 0.5 * (hi - lo)
    # the probabilities change which draws are used, never the stream: same controls without flips
    a = Augmenter().sample(np.random.default_rng(3))
    b = Augmenter(p_flip_rows=0.0, p_gray=0.0).sample(np.random.default_rng(3))
    np.testing.assert_array_equal(a.controls, b.controls)
    assert a.rotation_deg == b.rotation_deg and not b.flip_rows


def test_apply_uses_one_combined_map():
    """Rotate 90 then flip rows in one map equals the two exact array operations."""
    image = np.random.default_rng(20).random((25, 25)).astype(np.float32)
    params = AugmentParams(None, 90.0, (0.0, 0.0), True, False, 0.0, 1.0, 1.0)
    out, _, _ = Augmenter().apply(params, image)
    # source = c + F R (p - c): flip applied to the rotated coordinates -> rot90 of the row-flipped input
    np.testing.assert_allclose(out, np.rot90(image[::-1]), atol=1e-4)


# ------------------------------------------------------------------------------------ bad input


def test_bad_input_gives_clear_errors():
    rng = np.random.default_rng(0)
    image = np.zeros((20, 20), np.float32)
    with pytest.raises(ValueError, match="label shape"):
        elastic_deform(image, np.zeros((20, 21), np.uint8), rng)
    with pytest.raises(TypeError, match="integer"):
        elastic_deform(image, np.zeros((20, 20), np.float32), rng)
    with pytest.raises(ValueError, match="sigma"):
        elastic_deform(image, None, rng, sigma=-1.0)
    with pytest.raises(ValueError, match="grid"):
        elastic_displacement((20, 20), rng, grid=1)
    bad = image.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        elastic_deform(bad, None, rng)
    with pytest.raises(ValueError, match="NaN"):
        Augmenter()(bad, None, rng)
    with pytest.raises(TypeError, match="Generator"):
        elastic_deform(image, None, 0)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="2-D"):
        elastic_deform(np.zeros((2, 20, 20), np.float32), None, rng)
    with pytest.raises(ValueError, match="weight shape"):
        Augmenter()(image, None, rng, np.ones((19, 20), np.float32))
    with pytest.raises(ValueError, match="probability"):
        Augmenter(p_gray=1.5)


def test_fast_path_equals_the_explicit_map():
    """Augmenter.apply (normalised float32 map built in one product) == resample(coordinate_map(field))."""
    rng = np.random.default_rng(21)
    shape = (70, 90)
    image, label = rng.random(shape).astype(np.float32), _blobs(shape)
    controls = rng.normal(size=(2, 3, 3)) * 10.0
    params = AugmentParams(controls, 37.0, (4.5, -2.25), True, True, 0.0, 1.0, 1.0)
    fast, fast_lab, _ = Augmenter().apply(params, image, label)
    from unet_repro.augment.elastic import _field_from_controls

    coords = coordinate_map(shape, _field_from_controls(controls, shape), 37.0, (4.5, -2.25), True, True)
    slow, slow_lab, _ = resample(image, coords, label)
    np.testing.assert_allclose(fast, slow, atol=1e-4)
    assert np.mean(fast_lab != slow_lab) < 1e-3  # float32 vs float64 coordinates: ties may round apart
    # and elastic_deform draws exactly the field of elastic_displacement
    a, _ = elastic_deform(image, None, np.random.default_rng(5))
    ref, _, _ = resample(image, coordinate_map(shape, elastic_displacement(shape, np.random.default_rng(5))))
    np.testing.assert_allclose(a, ref, atol=1e-4)


def test_interpolate_controls_and_positions():
    from unet_repro.augment.elastic import control_positions, interpolate_controls

    rows, cols = control_positions((572, 400))
    np.testing.assert_allclose(rows, [0, 285.5, 571])
    np.testing.assert_allclose(cols, [0, 199.5, 399])
    controls = np.random.default_rng(22).normal(size=(2, 3, 3))
    field = interpolate_controls(controls, (31, 41))
    np.testing.assert_allclose(field[:, [0, 15, 30]][:, :, [0, 20, 40]], controls, atol=1e-12)
    with pytest.raises(ValueError, match="controls"):
        interpolate_controls(np.zeros((2, 3)), (10, 10))


def test_jacobian_determinant():
    from unet_repro.augment.elastic import jacobian_determinant

    np.testing.assert_allclose(jacobian_determinant(np.zeros((2, 8, 9))), 1.0)
    r, c = np.meshgrid(np.arange(8.0), np.arange(9.0), indexing="ij")
    # d = (0.5 r, -0.2 c): the map scales rows by 1.5 and columns by 0.8 -> det 1.2
    np.testing.assert_allclose(jacobian_determinant(np.stack([0.5 * r, -0.2 * c])), 1.2)
    # d = (-2 r, 0): rows flipped and stretched -> det -1, a fold
    assert (jacobian_determinant(np.stack([-2.0 * r, 0 * c])) < 0).all()


def test_label_topology_counts_merges_splits_and_vanishing():
    from unet_repro.augment.elastic import label_topology

    ids = np.zeros((20, 30), dtype=np.int32)
    ids[2:8, 2:8] = 1
    ids[2:8, 10:16] = 2
    ids[12:18, 5:25] = 3
    ids[10:11, 27:28] = 4  # a tiny cell near the right edge
    after = ids.copy()
    after[2:8, 8:10] = 1  # membrane between 1 and 2 is lost: merge
    after[12:18, 14:16] = 0  # region 3 cut in two: split
    after[10, 27] = 0  # region 4 disappears
    got = label_topology(ids, after)
    assert got == {"before": 4, "after": 3, "merged": 1, "split": 1, "vanished": 1}
    # with a margin of 3 px the edge cell (4) no longer counts
    assert label_topology(ids, after, margin=3)["vanished"] == 0
