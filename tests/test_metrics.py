"""ISBI 2012 metrics against the values printed by the original Fiji classes, plus conventions.

Expected numbers come from ``shared/spec/isbi2012-metrics/vectors/expected.json`` (the Java output),
never from this implementation.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy import ndimage

from unet_repro import metrics as M

TOL = 1e-9


@pytest.fixture(scope="module")
def expected(spec_dir):
    return json.loads((spec_dir / "vectors" / "expected.json").read_text())


@pytest.fixture(scope="module")
def cases(expected, spec_dir):
    out = {}
    for case in expected["cases"]:
        z = np.load(spec_dir / "vectors" / f"{case['name']}.npz")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # syn_inverted warns on purpose
            ev = M.evaluate(z["proposal"], z["label"])
        out[case["name"]] = (case, z["proposal"], z["label"], ev)
    return out


def _names(spec_dir_path=None):
    from tests.conftest import SHARED_SPEC

    return [c["name"] for c in json.loads((SHARED_SPEC / "vectors" / "expected.json").read_text())["cases"]]


NAMES = _names()


@pytest.mark.parametrize("name", NAMES)
def test_final_scores_match_java(cases, name):
    case, _, _, ev = cases[name]
    scores = ev.scores()
    assert set(scores) == {"pixel_error", "warping_error", "rand_error", "v_rand", "v_info"}
    for key, value in scores.items():
        assert abs(value - case[key]) <= TOL, f"{name} {key}: expected {case[key]!r}, got {value!r}"
    assert ev.warping.best_pixels == case["warping_error_pixels"]


@pytest.mark.parametrize("name", NAMES)
def test_per_threshold_curves_match_java(cases, name):
    case, _, _, ev = cases[name]
    pt = case["per_threshold"]
    assert list(ev.pixel.thresholds) == pt["thresholds"]
    np.testing.assert_allclose(ev.pixel.fscore, pt["pixel_fscore"], rtol=0, atol=TOL)
    np.testing.assert_allclose(ev.rand.fscore, pt["rand_fscore"], rtol=0, atol=TOL)
    np.testing.assert_allclose(ev.v_rand.fscore, pt["v_rand"], rtol=0, atol=TOL)
    np.testing.assert_allclose(ev.v_info.fscore, pt["v_info"], rtol=0, atol=TOL)
    assert ev.warping.splits.tolist() == pt["warping_splits"]
    assert ev.warping.mergers.tolist() == pt["warping_mergers"]


@pytest.mark.parametrize("name", ["syn_merge", "syn_split", "syn_soft_blur1"])
def test_single_metric_functions_agree_with_evaluate(cases, name):
    case, prob, lab, _ = cases[name]
    assert abs(M.pixel_error(prob, lab) - case["pixel_error"]) <= TOL
    assert abs(M.warping_error(prob, lab) - case["warping_error"]) <= TOL
    assert abs(M.rand_error(prob, lab) - case["rand_error"]) <= TOL
    assert abs(M.v_rand(prob, lab) - case["v_rand"]) <= TOL
    assert abs(M.v_info(prob, lab) - case["v_info"]) <= TOL
    assert M.isbi2012_scores(prob, lab).keys() == {"pixel_error", "warping_error", "rand_error", "v_rand", "v_info"}


def test_thresholds_are_the_java_doubles(expected):
    assert list(M.THRESHOLDS) == expected["cases"][0]["per_threshold"]["thresholds"]
    assert len(M.WARPING_THRESHOLDS) == 10 and M.WARPING_THRESHOLDS[-1] == 0.8999999999999999
    assert M.THRESHOLDS[3] == 0.30000000000000004 and M.THRESHOLDS[3] != 0.3
    assert list(M.THRESHOLDS) != np.arange(0, 1.01, 0.1).tolist()  # arange gives other doubles
    with pytest.raises(ValueError):
        M.challenge_thresholds(1.5)


def test_threshold_comparison_is_in_double_precision():
    # float32(0.1) = 0.10000000149 > 0.1 (double) -> cell at th = 0.1; a float32 comparison would say no
    lab = np.full((8, 8), 255, np.uint8)
    lab[:, 4] = 0
    prob = np.where(lab > 0, 1.0, 0.0).astype(np.float32)
    prob[0, 4] = np.float32(0.1)
    curve = M.pixel_error_curve(prob, lab)
    assert curve.fp[1] == 1  # threshold 0.1: the membrane pixel at 0.1f counts as cell
    assert curve.fp[2] == 0


def test_simple_point_table_matches_java(expected):
    assert np.array_equal(M.simple_point_lut(), np.array(expected["simple_point_lut"]["simple"], np.uint8))


def test_simple_point_examples():
    # end of a line of cells: removing it keeps one object -> simple
    assert M.is_simple_point(np.array([[0, 0, 0], [0, 1, 1], [0, 0, 0]]))
    # middle of a one-pixel bridge: removing it splits the object -> not simple
    assert not M.is_simple_point(np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]]))
    # isolated cell: removing it deletes an object -> not simple
    assert not M.is_simple_point(np.zeros((3, 3)))
    # membrane pixel surrounded by cells: turning it to cell fills a hole -> not simple
    assert not M.is_simple_point(np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]]))
    # diagonal-only cell contact is not 4-connected: two cell components -> not simple
    assert not M.is_simple_point(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]]))
    with pytest.raises(ValueError):
        M.is_simple_point(np.zeros((2, 3)))


def test_lut_is_symmetric_under_the_square_symmetries():
    lut = M.simple_point_lut()
    for code in range(512):
        patch = np.array([(code >> k) & 1 for k in range(9)]).reshape(3, 3)
        for t in (np.rot90(patch), np.fliplr(patch), patch.T):
            c2 = int(sum(int(v) << k for k, v in enumerate(t.ravel())))
            assert lut[code] == lut[c2]
        assert lut[code] == lut[code ^ 16]  # the centre is ignored


def _voronoi_label(size=64, n=12, seed=3):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, size, (n, 2))
    yy, xx = np.mgrid[:size, :size]
    d = (yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2
    owner = d.argmin(-1)
    edge = np.zeros((size, size), bool)
    edge[:-1] |= owner[:-1] != owner[1:]
    edge[:, :-1] |= owner[:, :-1] != owner[:, 1:]
    return np.where(edge, 0, 255).astype(np.uint8)


def test_boundary_shift_costs_pixel_error_but_no_warping_error():
    lab = _voronoi_label()
    shifted = np.roll(lab, 1, axis=1)
    shifted[:, 0] = lab[:, 0]
    prob = (shifted > 0).astype(np.float32)
    assert M.pixel_error(prob, lab) > 0.01
    assert M.warping_error(prob, lab) == 0.0


def test_perfect_prediction_scores_perfectly_and_inverted_warns():
    lab = _voronoi_label()
    prob = (lab > 0).astype(np.float32)
    s = M.isbi2012_scores(prob, lab)
    # the original's floating point gives 1 - 2e-16 style values here (syn_identical: V_rand 1.0000000000000002)
    assert s["pixel_error"] == 0.0 and s["warping_error"] == 0.0 and abs(s["rand_error"]) < 1e-12
    assert abs(s["v_rand"] - 1.0) < 1e-12 and abs(s["v_info"] - 1.0) < 1e-12
    with pytest.warns(UserWarning, match="inverted"):
        inv = M.pixel_error(1.0 - prob, lab)
    assert inv == 1.0


def test_label_value_and_binary_proposal_encodings_are_equivalent():
    lab = _voronoi_label()
    rng = np.random.default_rng(0)
    prob = np.clip(ndimage.gaussian_filter((lab > 0).astype(float), 1.0) + rng.normal(0, 0.05, lab.shape), 0, 1)
    a = M.isbi2012_scores(prob.astype(np.float32), lab)
    b = M.isbi2012_scores(prob.astype(np.float32), (lab > 0).astype(np.int64))  # 0/1 labels
    assert a == b
    binary = (prob > 0.5)
    s255 = M.isbi2012_scores((binary * 255).astype(np.uint8), lab)  # binary segmentation 0/255
    s01 = M.isbi2012_scores(binary.astype(np.float32), lab)
    assert s255 == s01


def test_stack_equals_slices_combined(cases):
    # warping pixels add up over slices; the 3-slice vector is slices identical, merge, split
    _, prob, lab, ev = cases["syn_stack3"]
    total = 0
    for k in range(3):
        total += M.warping_error_curve(prob[k], lab[k]).best_pixels
    assert ev.warping.best_pixels == total == 10


def test_transposing_both_inputs_changes_nothing_for_rand_and_pixel():
    lab = _voronoi_label(seed=5)
    prob = ndimage.gaussian_filter((lab > 0).astype(float), 1.2).astype(np.float32)
    a, b = M.evaluate(prob, lab), M.evaluate(prob.T.copy(), lab.T.copy())
    np.testing.assert_allclose(a.pixel.fscore, b.pixel.fscore, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.rand.fscore, b.rand.fscore, rtol=0, atol=1e-12)


def test_warp_label_classifies_a_merge_gap():
    lab = _voronoi_label()
    prob = (lab > 0).astype(np.float32)
    # open the membrane between two cells over its whole length: a merge that warping cannot undo
    comps, _ = ndimage.label(lab > 0, structure=ndimage.generate_binary_structure(2, 1))
    a_, b_ = 1, 2
    touch = (ndimage.binary_dilation(comps == a_) & ndimage.binary_dilation(comps == b_)) & (lab == 0)
    prob[touch] = 1.0
    res = M.warp_label(prob, lab, 0.5)
    assert res.counts["merge"] > 0
    assert res.warped.shape == lab.shape and set(np.unique(res.warped)) <= {0, 1}
    assert ((res.classes != 0) == (res.warped != (prob > 0.5))).all()  # classified = remaining mismatches
    assert M.jain_warping_error(prob, lab, 0.5) >= res.counts["merge"] / lab.size


def test_thin_membranes_gives_one_pixel_lines():
    lab = _voronoi_label()
    thick = ndimage.binary_erosion(lab > 0, iterations=2)  # membranes 5 px wide
    ws = M.thin_membranes(thick.astype(np.float32), 0.5)
    assert ws.shape == lab.shape
    assert (ws > 0).sum() > thick.sum()  # membranes were given to the cells
    n_cells = ndimage.label(thick, structure=ndimage.generate_binary_structure(2, 1))[1]
    assert len(np.unique(ws[ws > 0])) == n_cells


@pytest.mark.parametrize(
    "prob, lab, match",
    [
        (np.full((4, 4), 1.5, np.float32), np.full((4, 4), 255, np.uint8), "outside \\[0, 1\\]"),
        (np.full((4, 4), np.nan, np.float32), np.full((4, 4), 255, np.uint8), "NaN"),
        (np.arange(16, dtype=np.uint8).reshape(4, 4), np.full((4, 4), 255, np.uint8), "ambiguous"),
        (np.zeros((4, 4), np.float32), np.zeros((4, 5), np.uint8), "shape"),
        (np.zeros((4, 4), np.float32), np.arange(16, dtype=np.uint8).reshape(4, 4), "not binary"),
        (np.zeros(4, np.float32), np.zeros(4, np.uint8), "2D"),
        (np.zeros((4, 4), np.float32), np.array([[1, 2] * 2] * 4, np.uint8), "not binary"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(prob, lab, match):
    with pytest.raises(ValueError, match=match):
        M.isbi2012_scores(prob, lab)


def test_real_labels_against_themselves(isbi):
    lab = isbi.train_labels[:2]
    s = M.isbi2012_scores((lab > 0).astype(np.float32), lab)
    assert s["pixel_error"] == 0.0 and s["warping_error"] == 0.0 and abs(s["rand_error"]) < 1e-12
