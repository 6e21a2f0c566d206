"""The ISBI 2012 challenge metrics, computed exactly as the challenge server did (Table 1 of the paper).

Table 1 of the U-Net paper reports three numbers from the ISBI 2012 EM segmentation challenge: warping
error 0.000353, Rand error 0.0382 and pixel error 0.0611 (section 3.3). The server computed them with
the Fiji "Trainable Weka Segmentation" metric classes (``trainableSegmentation.metrics``); the later
leaderboard replaced them with V_rand and V_info "after border thinning". This package computes all
five with the same conventions (summed up in ``tests/data/isbi2012_metrics/README.md``, which also says
where the expected values of the tests come from), one module per family:

- :mod:`._common`: the thresholds built by repeated double addition, input checks, the F-score curve,
  the one compiled 4-neighbour flood fill;
- :mod:`.pixel`: pixel error;
- :mod:`.warping`: simple points, the warping of Jain et al. (2010) with its visiting order, the
  classification of the remaining mismatches;
- :mod:`.watershed`: the watershed thinning of V_rand/V_info;
- :mod:`.rand`: the foreground-restricted Rand bookkeeping, V_rand, V_info.

Slices are scored on several threads (:func:`metric_threads`: the ``threads`` keyword of
:func:`evaluate`, else ``UNET_REPRO_METRIC_THREADS``, else one per core); the per-slice results are
added in slice order, so every number is the same to the last bit on 1 thread or many.

Why hand-written rather than taken from a library: no Python library gives these numbers.
``skimage.metrics.adapted_rand_error`` and ``variation_of_information`` count the proposal's membrane
pixels differently and know nothing of thresholds or thinning; no maintained library implements the
topology-preserving warping error at all. The sequential parts (the warping loop, the simple-point
test, the classification of mismatches, the Vincent-Soille watershed, component labelling) are loops
whose result depends on the visiting order, so they are compiled with numba (``@njit(cache=True)``);
the rest is NumPy/SciPy. This package imports no torch.

Inputs everywhere: ``prob_cell`` is a float map in [0, 1] with 1 = cell (the challenge's submission
format: 1 - membrane probability), ``label`` is 0 = membrane, >0 = cell; both (H, W) or (Z, H, W).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ._common import (
    THREADS_ENV,
    THRESHOLDS,
    WARPING_THRESHOLDS,
    FScoreCurve,
    challenge_thresholds,
    metric_threads,
    validate_inputs,
)
from .pixel import _pixel_curve, pixel_error, pixel_error_curve
from .rand import _rand_family, rand_error, rand_error_curve, v_info, v_info_curve, v_rand, v_rand_curve
from .simple_points import is_simple_point, simple_point_lut
from .warping import (
    HOLE_ADDITION,
    HOLE_DELETION,
    MERGE,
    MISMATCH_NAMES,
    OBJECT_ADDITION,
    OBJECT_DELETION,
    SPLIT,
    WARPING_RADIUS,
    WarpingCurve,
    WarpResult,
    _warping_curve,
    jain_warping_error,
    warp_label,
    warping_error,
    warping_error_curve,
)
from .watershed import thin_membranes

__all__ = [
    "HOLE_ADDITION",
    "HOLE_DELETION",
    "MERGE",
    "MISMATCH_NAMES",
    "OBJECT_ADDITION",
    "OBJECT_DELETION",
    "SPLIT",
    "THREADS_ENV",
    "THRESHOLDS",
    "WARPING_RADIUS",
    "WARPING_THRESHOLDS",
    "Evaluation",
    "FScoreCurve",
    "WarpResult",
    "WarpingCurve",
    "challenge_thresholds",
    "evaluate",
    "is_simple_point",
    "isbi2012_scores",
    "jain_warping_error",
    "metric_threads",
    "pixel_error",
    "pixel_error_curve",
    "rand_error",
    "rand_error_curve",
    "simple_point_lut",
    "thin_membranes",
    "v_info",
    "v_info_curve",
    "v_rand",
    "v_rand_curve",
    "validate_inputs",
    "warp_label",
    "warping_error",
    "warping_error_curve",
]


@dataclass
class Evaluation:
    """All five challenge metrics with their per-threshold curves."""

    pixel: FScoreCurve
    warping: WarpingCurve
    rand: FScoreCurve
    v_rand: FScoreCurve
    v_info: FScoreCurve

    def scores(self) -> dict[str, float]:
        """The five numbers: pixel_error, warping_error, rand_error, v_rand, v_info."""
        return {
            "pixel_error": 1.0 - self.pixel.best_fscore,
            "warping_error": self.warping.best_error,
            "rand_error": 1.0 - self.rand.best_fscore,
            "v_rand": self.v_rand.best_fscore,
            "v_info": self.v_info.best_fscore,
        }

    def best_thresholds(self) -> dict[str, float]:
        """The threshold at which each metric reached its best value."""
        return {
            "pixel_error": self.pixel.best_threshold,
            "warping_error": self.warping.best_threshold,
            "rand_error": self.rand.best_threshold,
            "v_rand": self.v_rand.best_threshold,
            "v_info": self.v_info.best_threshold,
        }

    def scores_at(self, thresholds: Mapping[str, float]) -> dict[str, float]:
        """The five numbers of :meth:`scores`, each read at a given threshold instead of its best one.

        The challenge server (and :meth:`scores`) takes every metric at its best threshold on the slices it
        scores (section 3.3, Table 1). Thresholds fixed beforehand, e.g. the best ones of another block,
        ``test.scores_at(validation.best_thresholds())``, score a block without choosing anything on it.

        Args:
            thresholds: metric name -> threshold, for exactly the five keys of :meth:`scores`. Each must be
                one of the thresholds its curve tried (:data:`THRESHOLDS`; :data:`WARPING_THRESHOLDS`, up to
                0.9, for the warping error), to within 1e-9, so ``0.3`` finds ``0.30000000000000004``.

        Returns:
            ``pixel_error``, ``warping_error``, ``rand_error``, ``v_rand``, ``v_info`` at those thresholds.

        Raises:
            ValueError: a metric missing or unknown, or a threshold its curve did not try.
        """
        curves: dict[str, FScoreCurve | WarpingCurve] = {
            "pixel_error": self.pixel,
            "warping_error": self.warping,
            "rand_error": self.rand,
            "v_rand": self.v_rand,
            "v_info": self.v_info,
        }
        if set(thresholds) != set(curves):
            raise ValueError(
                f"scores_at needs one threshold for each of {', '.join(curves)}; got {', '.join(thresholds) or 'none'} "
                "(pass e.g. another Evaluation's best_thresholds())"
            )
        out: dict[str, float] = {}
        for name, curve in curves.items():
            tried = np.asarray(curve.thresholds, dtype=np.float64)
            hits = np.flatnonzero(np.abs(tried - float(thresholds[name])) <= 1e-9)
            if hits.size == 0:
                raise ValueError(
                    f"{name} was not scored at threshold {thresholds[name]!r}; choose one of "
                    f"{', '.join(f'{t:.1f}' for t in tried)}"
                )
            i = int(hits[0])
            if isinstance(curve, WarpingCurve):
                out[name] = float(curve.error[i])
            else:
                f = float(curve.fscore[i])
                out[name] = 1.0 - f if name in ("pixel_error", "rand_error") else f
        return out


def evaluate(prob_cell: np.ndarray, label: np.ndarray, *, threads: int | None = None) -> Evaluation:
    """All five metrics with their per-threshold curves, checking the inputs once and sharing the
    thinning between V_rand and V_info.

    Args:
        prob_cell: probability of cell in [0, 1], (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell.
        threads: threads the slices run on (:func:`metric_threads`; None: ``UNET_REPRO_METRIC_THREADS``,
            else one per core). The results do not depend on it.

    Returns:
        :class:`Evaluation` (``.scores()`` gives the five numbers).
    """
    threads = metric_threads(threads)
    prob, lab = validate_inputs(prob_cell, label)
    fam = _rand_family(prob, lab, ("rand", "v_rand", "v_info"), threads)
    return Evaluation(
        pixel=_pixel_curve(prob, lab, threads),
        warping=_warping_curve(prob, lab, threads=threads),
        rand=fam["rand"],
        v_rand=fam["v_rand"],
        v_info=fam["v_info"],
    )


def isbi2012_scores(prob_cell: np.ndarray, label: np.ndarray, *, threads: int | None = None) -> dict[str, float]:
    """The five ISBI 2012 numbers: ``pixel_error``, ``warping_error``, ``rand_error``, ``v_rand``, ``v_info``.

    Args:
        prob_cell: probability of cell in [0, 1] (1 = cell), (H, W) or (Z, H, W).
        label: 0 = membrane, >0 = cell, same shape.
        threads: threads the slices run on, as in :func:`evaluate`.

    Returns:
        A dict with exactly those five keys.
    """
    return evaluate(prob_cell, label, threads=threads).scores()
