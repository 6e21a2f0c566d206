"""The GPU check of the ``paper`` profile in one run: throughput, training, test-block prediction, results.

Run by ``benchmarks/gpu_paper.sh`` (which installs the project first); each stage prints its time.

1. ``benchmarks/train_throughput.py`` on the paper profile (mixed precision as the profile says, and fp32
   for the record): steps/s, TFLOP/s, the ratio against a bare loop, the estimated Colab T4 time.
2. The number of steps that fit the training budget (``--train-minutes``) at the measured speed: the
   profile's full schedule (20,000 steps) when it fits, else a shorter run *with its own full cosine
   schedule* (the output says so). ``train(max_minutes=...)`` stops cleanly if the estimate was wrong.
3. Training (section 3 of the paper: SGD, momentum 0.99, one 572x572 tile per step, augmentation) into
   ``build/runs/paper`` with the held-out evaluation (slices 25-29, test-time averaging over the 8
   symmetries, section 3.3's averaging of rotated inputs).
4. The test block (30 slices) predicted with the same test-time averaging: ``test_prob.tif``.
5. ``results/paper/gpu_run.csv`` (GPU, times, steps, held-out pixel error) and, when papermill is there,
   notebooks 04 and 05 executed with ``profile="paper"`` (tables and figures into ``results/paper/``,
   executed notebooks into ``results/paper/notebooks/``).
6. Everything copied under ``--export`` (``$OUT`` on the lent machine): ``results_paper.tgz`` (results/paper
   and the run's small files) and ``test_prob_f16.tif``. Model weights stay in the run folder (too large).

``--dry-run``: the same stages on the CPU with a tiny network, tile and step count (a couple of minutes),
to catch mistakes before a GPU session.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {msg}", flush=True)


def _bench(device: str, amp: str, workers: int, dry: bool, out_csv: Path, steps: int = 40, rounds: int = 3) -> dict:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import train_throughput as tt

    argv = [
        "--device",
        device,
        "--amp",
        amp,
        "--workers",
        str(workers),
        "--out",
        str(out_csv),
        "--note",
        "gpu_paper.py" + (" --dry-run" if dry else ""),
    ]
    argv += ["--quick", "--steps", "3", "--rounds", "1"] if dry else ["--steps", str(steps), "--rounds", str(rounds)]
    args = tt._parse(argv)
    row = tt.run(args)
    new = not out_csv.is_file()
    with open(out_csv, "a", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(row), lineterminator="\n")
        if new:
            wr.writeheader()
        wr.writerow(row)
    say(
        f"throughput amp={amp}: {row['project_steps_per_s']} steps/s, {row['project_tflops']} TFLOP/s, "
        f"ratio_vs_bare={row['ratio_vs_bare']}, paper schedule here {row['paper_full_schedule_minutes_here']} min, "
        f"Colab T4 estimate {row['t4_paper_full_schedule_hours_est']} h"
    )
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/gpu_paper.py", description=__doc__.split("\n")[0])
    p.add_argument("--dry-run", action="store_true", help="tiny settings on the CPU (checks the script)")
    p.add_argument("--train-minutes", type=float, default=4.0, help="training budget (default 4)")
    p.add_argument("--workers", type=int, default=None, help="tile threads (default: CPU cores - 2, at most 12)")
    p.add_argument(
        "--results",
        type=Path,
        default=None,
        help="results folder (default results/paper; build/gpu_paper_dry_run/results with --dry-run)",
    )
    p.add_argument(
        "--export",
        type=Path,
        default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None,
        help="folder to copy the results into (default: $OUT when set)",
    )
    p.add_argument("--no-notebooks", action="store_true")
    args = p.parse_args(argv)
    if args.train_minutes <= 0:
        p.error(f"--train-minutes must be > 0, got {args.train_minutes}")

    import torch

    from unet_repro.data import isbi2012 as data_mod
    from unet_repro.device import resolve_amp
    from unet_repro.inference.tiling import predict_stack
    from unet_repro.model.files import load_model
    from unet_repro.results import run_dir
    from unet_repro.training.config import profile_config
    from unet_repro.training.loop import train

    dry = args.dry_run
    device = "cpu" if dry else "cuda"
    if not dry and not torch.cuda.is_available():
        print("gpu_paper: no CUDA device (torch.cuda.is_available() is False); use --dry-run on a CPU", file=sys.stderr)
        return 2
    workers = args.workers if args.workers is not None else (0 if dry else max(1, min(12, (os.cpu_count() or 4) - 2)))
    res = args.results or (ROOT / "build" / "gpu_paper_dry_run" / "results" if dry else ROOT / "results" / "paper")
    (res / "figures").mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "cpu (dry run)"
    paper = profile_config("paper")
    tiny = dict(base_channels=4, tile=188, eval_tile=572, train_slices=(0, 1, 2), checkpoint_every=3) if dry else {}
    say(
        f"device {gpu}, torch {torch.__version__}, amp {paper.amp} -> {resolve_amp(paper.amp, device)[0]}, "
        f"tile workers {workers}"
    )

    # 1. throughput
    bench_csv = res / "train_throughput.csv"
    row = _bench(device, str(paper.amp), workers, dry, bench_csv)
    if paper.amp not in ("off", False):
        _bench(device, "off", workers, dry, bench_csv, steps=20, rounds=2)

    # 2. steps that fit the budget
    full_min = float(row["paper_full_schedule_minutes_here"])
    if dry:
        iterations = 6
    else:
        fit = int(args.train_minutes * 60 * float(row["project_steps_per_s"]) * 0.9)
        iterations = min(paper.iterations, max(2 * paper.warmup, fit))
    if iterations < paper.iterations:
        say(
            f"the full schedule ({paper.iterations} steps) needs about {full_min:.1f} min here, more than the "
            f"{args.train_minutes:g}-minute budget: training {iterations} steps with their own cosine schedule"
        )
    else:
        say(f"the full schedule ({paper.iterations} steps, about {full_min:.1f} min here) fits the budget")
    cfg = profile_config("paper", iterations=iterations, **tiny)

    # 3. training + held-out evaluation
    # a dry run keeps its tiny network out of the paper profile's run folder (notebook 04 would find it)
    run = ROOT / "build" / "gpu_paper_dry_run" / "run" if dry else run_dir("paper")
    isbi = data_mod.load_isbi2012(download=False)
    t = time.perf_counter()
    result = train(
        cfg,
        run,
        resume=True,
        isbi=isbi,
        device=device,
        progress=False,
        workers=workers,
        max_minutes=args.train_minutes * 1.25 + 0.5,
    )
    train_wall = time.perf_counter() - t
    summary = json.loads((run / "metrics.json").read_text())
    say(
        f"trained {len(result.log)} steps in {result.seconds:.1f} s "
        f"({result.seconds_per_iteration * 1e3:.2f} ms/step); "
        f"held-out pixel error {summary['heldout_pixel_error']:.4f} (tta {cfg.tta})"
    )

    # 4. the test block with test-time averaging
    import tifffile

    model = load_model(run / "model.pt", device)
    test = isbi.test_images[:2] if dry else isbi.test_images
    t = time.perf_counter()
    prob = predict_stack(model, test, tile=cfg.eval_tile, tta=cfg.tta, amp=cfg.amp)
    test_seconds = time.perf_counter() - t
    tifffile.imwrite(run / "test_prob.tif", prob.astype(np.float32), photometric="minisblack")
    say(f"predicted the test block {prob.shape} in {test_seconds:.1f} s (tta {cfg.tta}) -> {run / 'test_prob.tif'}")

    # 5. the run's table
    s_per_step = result.seconds_per_iteration
    table = {
        "gpu": gpu,
        "torch": torch.__version__,
        "amp": cfg.amp,
        "amp_dtype": str(resolve_amp(cfg.amp, device)[0]),
        "iterations_done": len(result.log),
        "iterations_profile": paper.iterations,
        "full_schedule": len(result.log) >= paper.iterations,
        "seconds_per_iteration": round(s_per_step, 5),
        "train_minutes": round(result.seconds / 60, 2),
        "train_wall_minutes": round(train_wall / 60, 2),
        "full_schedule_minutes_est": round(paper.iterations * s_per_step / 60, 2),
        "heldout_pixel_error": round(summary["heldout_pixel_error"], 5),
        "tta": cfg.tta,
        "heldout_predict_seconds": round(summary["predict_seconds"], 2),
        "test_predict_seconds": round(test_seconds, 2),
        "test_slices": int(prob.shape[0]),
        "t4_full_schedule_hours_est": row["t4_paper_full_schedule_hours_est"],
        "throughput_ratio_vs_bare": row["ratio_vs_bare"],
        "stopped_by_time_budget": summary.get("stopped_by_time_budget", False),
        "dry_run": dry,
    }
    with open(res / "gpu_run.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(table), lineterminator="\n")
        wr.writeheader()
        wr.writerow(table)
    say("results/paper/gpu_run.csv: " + json.dumps(table))

    # notebooks 04 and 05
    if args.no_notebooks or dry:
        say(
            "notebooks 04 and 05 not executed ("
            + ("--dry-run: they would train the full paper network on the CPU" if dry else "--no-notebooks")
            + ")"
        )
    else:
        try:
            import papermill  # noqa: F401

            from unet_repro.reproduce import run_notebook
        except ImportError as exc:
            say(
                f"notebooks 04 and 05 not executed: {exc} (carry papermill and ipykernel as wheels, "
                "see benchmarks/gpu_paper.sh)"
            )
        else:
            nb_out = res / "notebooks"
            nb_out.mkdir(exist_ok=True)
            for nb in sorted((ROOT / "notebooks").glob("0[45]_*.ipynb")):
                t = time.perf_counter()
                err = run_notebook(
                    nb, nb_out / nb.name, {"profile": "paper", "out_dir": str(res.resolve()), "iterations": iterations}
                )
                say(f"{nb.name}: {'ok' if not err else 'FAILED: ' + err} in {time.perf_counter() - t:.0f} s")

    # 6. export
    if args.export:
        args.export.mkdir(parents=True, exist_ok=True)
        with tarfile.open(args.export / "results_paper.tgz", "w:gz") as tar:
            tar.add(res, arcname="results/paper")
            for name in ("log.csv", "metrics.json", "heldout_prob.tif"):
                if (run / name).is_file():
                    tar.add(run / name, arcname=f"build/runs/paper/{name}")
        tifffile.imwrite(
            args.export / "test_prob_f16.tif", prob.astype(np.float16), photometric="minisblack", compression="zlib"
        )
        shutil.copy(res / "gpu_run.csv", args.export / "gpu_run.csv")
        say(
            f"exported to {args.export}: "
            + ", ".join(f"{f.name} ({f.stat().st_size / 2**20:.1f} MiB)" for f in sorted(args.export.iterdir()))
        )
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
