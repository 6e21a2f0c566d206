"""Speed of the eq. 2 weight maps: unet_repro.loss.weights against the per-cell distance-transform method.

Both methods run side by side in one process on the real ISBI 2012 training labels (so machine noise hits
both), alternating which goes first, and the script prints the ratio of their total times and the largest
difference between their maps, and writes them to ``results/benchmarks/weight_maps.csv`` (one row per
slice and a total row; the committed copy is the speed figure the README and notebook 02 refer to). The
target is a ratio >= 20 at a difference < 1e-4.

The baseline is the straightforward method as usually written (one full-image
``scipy.ndimage.distance_transform_edt`` per cell), given its best form: a running first/second minimum
instead of sorting a K x H x W stack, so the ratio is not inflated by a weak baseline. It lives in the
package (``unet_repro.loss.weights.per_cell_weight_map``), where notebook 02 checks the fast map against it too.

Usage (from the checkout, with the data)::

    UNET_REPRO_DATA=/path/to/isbi2012 python benchmarks/weight_maps.py --slices 0,10,20,29 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from unet_repro.loss import weights as W
from unet_repro.loss.cells import label_cells

OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "weight_maps.csv"


def run(slices: list[int], repeats: int = 1, w0: float = 10.0, sigma: float = 5.0, verbose: bool = True) -> dict:
    """Time both methods on the given ISBI training slices.

    Returns:
        ``{"slices", "cells", "t_baseline", "t_fast" (seconds per slice, best of ``repeats``),
        "ratio" (total baseline / total fast), "max_abs_diff"}``.
    """
    from unet_repro.data.isbi2012 import load_isbi2012

    labels = load_isbi2012().train_labels
    cw = W.class_balance(labels)
    W.border_weight_map(labels[0][:64, :64], class_weights=cw)  # compile / load the numba kernel first
    rows = {"slices": [], "cells": [], "t_baseline": [], "t_fast": []}
    max_diff = 0.0
    for n, z in enumerate(slices):
        tb, tf = [], []
        for r in range(repeats):
            order = ("base", "fast") if (n + r) % 2 == 0 else ("fast", "base")
            for which in order:
                t0 = time.perf_counter()
                if which == "base":
                    ref = W.per_cell_weight_map(labels[z], w0, sigma, cw)
                    tb.append(time.perf_counter() - t0)
                else:
                    got = W.border_weight_map(labels[z], w0, sigma, cw)
                    tf.append(time.perf_counter() - t0)
        diff = float(np.abs(got.astype(np.float64) - ref).max())
        max_diff = max(max_diff, diff)
        k = label_cells(labels[z])[1]
        rows["slices"].append(int(z))
        rows["cells"].append(int(k))
        rows["t_baseline"].append(min(tb))
        rows["t_fast"].append(min(tf))
        if verbose:
            print(
                f"slice {z:2d}: {k:3d} cells  per-cell EDT {min(tb) * 1e3:7.1f} ms  "
                f"unet_repro {min(tf) * 1e3:6.1f} ms  ratio {min(tb) / min(tf):5.1f}  max|diff| {diff:.2e}"
            )
    ratio = sum(rows["t_baseline"]) / sum(rows["t_fast"])
    result = dict(rows, ratio=ratio, max_abs_diff=max_diff)
    if verbose:
        print(
            f"total: per-cell EDT {sum(rows['t_baseline']):.2f} s, unet_repro {sum(rows['t_fast']):.3f} s "
            f"over {len(slices)} slices"
        )
        print(f"speed ratio (per-cell EDT / unet_repro): {ratio:.1f}x  (target >= 20x)")
        print(f"max |unet_repro - per-cell EDT| over all pixels: {max_diff:.2e}  (target < 1e-4)")
    return result


def write_table(result: dict, path: Path, repeats: int) -> Path:
    """One row per slice and a total row: seconds of each method, their ratio, the largest difference."""
    import pandas as pd

    table = pd.DataFrame(
        {
            "slice": [str(z) for z in result["slices"]],
            "cells": result["cells"],
            "t_per_cell_edt_s": result["t_baseline"],
            "t_unet_repro_s": result["t_fast"],
        }
    )
    total = {
        "slice": "total",
        "cells": int(table["cells"].sum()),
        "t_per_cell_edt_s": table["t_per_cell_edt_s"].sum(),
        "t_unet_repro_s": table["t_unet_repro_s"].sum(),
    }
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    table["speed_ratio"] = table["t_per_cell_edt_s"] / table["t_unet_repro_s"]
    table["max_abs_diff"] = result["max_abs_diff"]
    table["repeats"] = repeats
    table["cpus"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, float_format="%.4g", lineterminator="\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", default="all", help="comma-separated slice indices, or 'all' (default)")
    ap.add_argument("--repeats", type=int, default=1, help="timings per slice and method (best is kept)")
    ap.add_argument("--json", default="", help="also write the result to this JSON file")
    ap.add_argument(
        "--out", type=Path, default=OUT, help="the results table (default results/benchmarks/weight_maps.csv)"
    )
    args = ap.parse_args(argv)
    slices = list(range(30)) if args.slices == "all" else [int(s) for s in args.slices.split(",")]
    result = run(slices, args.repeats)
    print("table:", write_table(result, args.out, args.repeats))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0 if result["max_abs_diff"] < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
