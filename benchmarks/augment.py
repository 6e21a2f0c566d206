"""Speed of the elastic deformation (section 3.1) against the ``elasticdeform`` package, side by side.

Target: ``unet_repro.augment.elastic.elastic_deform`` on a 572x572 image + label at least 2x faster
than ``elasticdeform.deform_random_grid([image, label], sigma=10, points=3, order=[3, 0])`` on the CPU.
Methods run interleaved in one process (round robin, median of the rounds), so the ratio survives a
noisy shared machine. Also timed, for the record: the same baseline with mirrored borders, the
``scipy.ndimage.map_coordinates`` route (order 3 + order 0, mirrored), and the full training
:class:`~unet_repro.augment.augmenter.Augmenter` call with a weight map.

Usage::

    python benchmarks/augment.py [--size 572] [--rounds 30] [--threads 1]

The medians and ratios go to ``results/benchmarks/augment.csv`` (``--out`` to change; the committed copy
is the speed figure the README and notebook 03 refer to).

``elasticdeform`` is a benchmark-only dependency: ``pip install --no-binary elasticdeform elasticdeform``
(its PyPI wheel was built against NumPy 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "augment.csv"
BASELINE = "elasticdeform deform_random_grid (sigma=10, points=3, order=[3, 0])"
OURS = "unet_repro elastic_deform (torch bicubic + nearest)"


def _methods(size: int) -> dict[str, Callable[[], object]]:
    from scipy import ndimage

    from unet_repro.augment.augmenter import Augmenter
    from unet_repro.augment.elastic import coordinate_map, elastic_deform, elastic_displacement

    rng = np.random.default_rng(0)
    image = rng.random((size, size)).astype(np.float32)
    label = np.where(rng.random((size, size)) > 0.5, 255, 0).astype(np.uint8)
    weight = rng.uniform(1.0, 10.0, (size, size)).astype(np.float32)
    ours_rng = np.random.default_rng(1)
    aug = Augmenter()

    def scipy_route() -> object:
        coords = coordinate_map((size, size), elastic_displacement((size, size), ours_rng))
        return (
            ndimage.map_coordinates(image, coords, order=3, mode="mirror"),
            ndimage.map_coordinates(label, coords, order=0, mode="mirror"),
        )

    methods: dict[str, Callable[[], object]] = {
        OURS: lambda: elastic_deform(image, label, ours_rng),
        "scipy map_coordinates order 3 + 0, mirror": scipy_route,
        "unet_repro Augmenter (elastic+rot+shift+flip+gray, + weight)": lambda: aug(image, label, ours_rng, weight),
    }
    try:
        import elasticdeform
    except ImportError:
        print("elasticdeform is not installed: pip install --no-binary elasticdeform elasticdeform", file=sys.stderr)
        return methods
    np.random.seed(0)
    methods[BASELINE] = lambda: elasticdeform.deform_random_grid([image, label], sigma=10, points=3, order=[3, 0])
    methods["elasticdeform deform_random_grid, mode=mirror"] = lambda: elasticdeform.deform_random_grid(
        [image, label], sigma=10, points=3, order=[3, 0], mode="mirror"
    )
    return methods


def run(size: int = 572, rounds: int = 30, threads: int = 1) -> dict[str, float]:
    """Median milliseconds per call of each method, timed round robin.

    Args:
        size: side of the square image (the paper's input tile: 572).
        rounds: timed rounds (each method once per round, after two warm-up calls).
        threads: torch intra-op threads (1: a fair comparison with the single-threaded baseline).

    Returns:
        method name -> median ms.
    """
    import torch

    torch.set_num_threads(threads)
    methods = _methods(size)
    for f in methods.values():
        f()
        f()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(rounds):
        for name, f in methods.items():
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return {name: 1e3 * float(np.median(v)) for name, v in times.items()}


def write_table(ms: dict[str, float], path: Path, size: int, rounds: int, threads: int) -> Path:
    """One row per method: median ms and the speed-up of ``elastic_deform`` over it."""
    import pandas as pd

    table = pd.DataFrame({"method": list(ms), "ms_median": list(ms.values())})
    table["speedup_of_elastic_deform"] = table["ms_median"] / ms[OURS]
    table["size"], table["rounds"], table["torch_threads"] = size, rounds, threads
    table["cpus"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, float_format="%.4g", lineterminator="\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=572)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=OUT, help="the results table (default results/benchmarks/augment.csv)")
    args = ap.parse_args(argv)
    ms = run(args.size, args.rounds, args.threads)
    print(f"{args.size}x{args.size} image + label, torch threads {args.threads}, median of {args.rounds} rounds")
    for name, t in ms.items():
        print(f"  {t:8.2f} ms  {name}")
    print("table:", write_table(ms, args.out, args.size, args.rounds, args.threads))
    base, ours = BASELINE, OURS
    if base not in ms:
        print("no baseline: install elasticdeform to get the ratio")
        return 0
    ratio = ms[base] / ms[ours]
    print(
        f"speed-up of elastic_deform over elasticdeform: {ratio:.1f}x "
        f"(target >= 2x: {'met' if ratio >= 2 else 'NOT met'})"
    )
    mirror = "elasticdeform deform_random_grid, mode=mirror"
    print(f"  against elasticdeform with mirrored borders: {ms[mirror] / ms[ours]:.1f}x")
    print(f"  scipy route against elasticdeform: {ms[base] / ms['scipy map_coordinates order 3 + 0, mirror']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
