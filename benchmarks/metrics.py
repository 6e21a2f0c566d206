"""Speed of the five ISBI 2012 metrics on a 30 x 512 x 512 stack with a soft proposal.

``unet_repro.metrics.isbi2012_scores`` runs side by side with the previous implementation
(``benchmarks/metrics_baseline.py``: one labelling, one sort and one full watershed per threshold) in
one process, alternating which goes first, after checking that both give the same curves bit for bit;
wall-clock and CPU seconds (all threads) are recorded, the latter telling the work apart from the load.
The original Fiji classes take about 87 s for such a stack on this project's machine type (2 cores:
pixel 0.2 s, warping 24 s, Rand 25 s, V_rand 19 s, V_info 19 s, measured when the expected values of
``tests/data/isbi2012_metrics/`` were produced); the Java cannot run here, so that ratio is against the
quoted time. The target is at least 40x faster than the Java (<= 2.2 s). The slices run on
``--threads`` threads (default: ``UNET_REPRO_METRIC_THREADS``, else one per core; several counts are
timed side by side, each with both implementations); the results do not depend on the count. The
machine may be shared: the table records the thread count and the 1-minute load average of each run,
and ``--repeats`` gives the range.

The proposal is built from the real labels: Gaussian blur (sigma 1.5, ``mode="nearest"``) of the
binary labels plus seeded Gaussian noise (sd 0.05, clipped to [0, 1]), so that low and high thresholds
see many small components, the case that slows the Rand metrics down.

Writes ``results/benchmarks/metrics.csv`` (one row per run and thread count, then min/median/max rows
per thread count), the speed figure the README refers to.

Usage (from the checkout, with the data)::

    UNET_REPRO_DATA=/path/to/isbi2012 python benchmarks/metrics.py [--slices 30] [--repeats 5] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))

import metrics_baseline as B  # noqa: E402

from unet_repro import metrics as M  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "metrics.csv"
JAVA_SECONDS = 87.0  # all five metrics, 30 slices, Fiji Trainable_Segmentation classes, 2 cores
TARGET = 40.0


def soft_stack(labels: np.ndarray, sigma: float = 1.5, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """Blurred labels plus seeded noise, float32 in [0, 1] (1 = cell)."""
    rng = np.random.default_rng(seed)
    out = np.empty(labels.shape, np.float32)
    for k in range(labels.shape[0]):
        blurred = ndimage.gaussian_filter((labels[k] > 0).astype(np.float64), sigma, mode="nearest")
        out[k] = np.clip(blurred + rng.normal(0.0, noise, blurred.shape), 0.0, 1.0)
    return out


def baseline_scores(prob: np.ndarray, labels: np.ndarray, threads: int | None = None) -> tuple:
    """The previous implementation's curves: pixel, warping counts, Rand tp/fp/fn, V_rand, V_info."""
    p, lab = M.validate_inputs(prob, labels)
    return M.pixel_error_curve(p, lab), B.warping_counts(p, lab, threads), *B.rand_family(p, lab, threads)


def same_results(ev: M.Evaluation, base: tuple) -> bool:
    """Whether the package's curves equal the baseline's bit for bit."""
    pixel, warp, rand, vr, vi = base
    w = ev.warping
    ours_warp = np.stack(
        [w.mergers, w.splits, w.hole_additions, w.hole_deletions, w.object_additions, w.object_deletions, w.mismatches],
        axis=1,
    )
    pairs = [
        (ev.pixel.fscore, pixel.fscore),
        (ours_warp, warp),
        (np.stack([ev.rand.tp, ev.rand.fp, ev.rand.fn], axis=1), rand),
        (np.stack([ev.v_rand.precision, ev.v_rand.recall, ev.v_rand.fscore], axis=1), vr),
        (np.stack([ev.v_info.precision, ev.v_info.recall, ev.v_info.fscore], axis=1), vi),
    ]
    return all(np.array_equal(a, b, equal_nan=True) for a, b in pairs)


def run(n_slices: int, repeats: int, threads: list[int], verbose: bool = True) -> list[dict]:
    """Time the baseline and the package ``repeats`` times at each thread count, alternating the order."""
    from unet_repro.data.isbi2012 import load_isbi2012

    labels = load_isbi2012().train_labels[:n_slices]
    prob = soft_stack(labels)
    # compile (numba caches to disk; the first run of a fresh checkout compiles once)
    baseline_scores(prob[:1, :64, :64], labels[:1, :64, :64])
    base = baseline_scores(prob, labels, threads[0])
    # the package's curves at every thread count against the baseline's, bit for bit
    identical = all(same_results(M.evaluate(prob, labels, threads=n), base) for n in threads)
    if verbose:
        print(f"stack {labels.shape}, soft proposal (blur 1.5 + noise 0.05, seed 0), threads {threads}")
        print("scores:", {k: float(f"{v:.6g}") for k, v in M.isbi2012_scores(prob, labels).items()})
        print(f"package curves equal to the baseline's bit for bit at every thread count: {identical}")
        print(
            f"{'run':>4}{'threads':>8}{'load':>7}{'baseline s':>12}{'unet_repro s':>14}{'ratio':>8}{'vs java':>9}"
            f"{'cpu baseline s':>16}{'cpu unet_repro s':>18}"
        )
    java = JAVA_SECONDS * n_slices / 30.0
    rows = []
    for r in range(repeats):
        for n in threads if r % 2 == 0 else threads[::-1]:
            t, cpu = {}, {}
            for which in ("base", "ours") if r % 2 == 0 else ("ours", "base"):
                t0, c0 = time.perf_counter(), time.process_time()
                if which == "base":
                    baseline_scores(prob, labels, n)
                else:
                    M.isbi2012_scores(prob, labels, threads=n)
                t[which], cpu[which] = time.perf_counter() - t0, time.process_time() - c0
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            rows.append(
                {
                    "run": str(r + 1),
                    "threads": n,
                    "load_1min": load,
                    "t_java_s": java,
                    "t_baseline_s": t["base"],
                    "t_unet_repro_s": t["ours"],
                    "cpu_baseline_s": cpu["base"],
                    "cpu_unet_repro_s": cpu["ours"],
                    "identical": identical,
                }
            )
            if verbose:
                print(
                    f"{r + 1:>4}{n:>8}{load:>7.1f}{t['base']:>12.2f}{t['ours']:>14.2f}{t['base'] / t['ours']:>7.1f}x"
                    f"{java / t['ours']:>8.1f}x{cpu['base']:>16.2f}{cpu['ours']:>18.2f}"
                )
    return rows


def write_table(rows: list[dict], path: Path) -> pd.DataFrame:
    """One row per run and thread count, then the min, median and max over runs of each thread count;
    ratios against baseline and Java."""
    table = pd.DataFrame(rows).sort_values(["threads", "run"], key=_run_order, kind="stable", ignore_index=True)
    table["ratio_baseline"] = table["t_baseline_s"] / table["t_unet_repro_s"]
    table["ratio_java"] = table["t_java_s"] / table["t_unet_repro_s"]
    parts = [table]
    for n, group in table.groupby("threads", sort=True):
        num = group.drop(columns=["run", "threads", "identical"])
        summary = pd.DataFrame([num.min(), num.median(), num.max()])
        summary.insert(0, "threads", n)
        summary.insert(0, "run", ["min", "median", "max"])
        summary["identical"] = bool(table["identical"].all())
        parts.append(summary)
    table = pd.concat(parts, ignore_index=True)
    table["cpus"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, float_format="%.4g", lineterminator="\n")
    return table


def _run_order(col: pd.Series) -> pd.Series:
    """Sort key: runs by number (not as text), thread counts as they are."""
    return col.astype(int) if col.name == "run" else col


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=30, help="slices of the training stack (default 30)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of each implementation (default 5)")
    ap.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        help=f"thread counts to time (default: {M.THREADS_ENV}, else one per core: {M.metric_threads()})",
    )
    ap.add_argument(
        "--out", type=Path, default=OUT, help=f"the results table (default {OUT.relative_to(OUT.parents[2])})"
    )
    args = ap.parse_args(argv)
    if not 1 <= args.slices <= 30 or args.repeats < 1:
        print("error: --slices must lie in 1..30 and --repeats be >= 1", file=sys.stderr)
        return 2
    threads = list(dict.fromkeys(args.threads or [M.metric_threads()]))  # in order, once each
    if min(threads) < 1:
        print(f"error: --threads {' '.join(map(str, threads))}: every thread count must be >= 1", file=sys.stderr)
        return 2
    table = write_table(run(args.slices, args.repeats, threads), args.out)
    for n in sorted(set(threads)):
        mn, md, mx = (table[(table["run"] == k) & (table["threads"] == n)].iloc[0] for k in ("min", "median", "max"))
        print(
            f"unet_repro, {n} thread(s): {mn['t_unet_repro_s']:.2f}-{mx['t_unet_repro_s']:.2f} s "
            f"(median {md['t_unet_repro_s']:.2f} s, cpu {md['cpu_unet_repro_s']:.2f} s, load {md['load_1min']:.1f}), "
            f"{md['ratio_baseline']:.1f}x the baseline (median), {mn['ratio_java']:.0f}-{mx['ratio_java']:.0f}x the "
            f"Java (median {md['ratio_java']:.0f}x; target >= {TARGET:.0f}x)"
        )
    print("table:", args.out)
    return 0 if bool(table["identical"].all()) else 1


if __name__ == "__main__":
    sys.exit(main())
