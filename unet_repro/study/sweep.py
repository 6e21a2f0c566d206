"""A grid of training runs x seeds, each an independent job that leaves one small JSON behind.

``python -m unet_repro.sweep GRID.toml`` trains every (configuration, seed) of the grid that has no
finished record under ``--runs-dir`` yet, evaluates it on the validation and test blocks of
:mod:`unet_repro.data.protocol` with all five ISBI 2012 metrics, and writes ``<name>-s<seed>.json``: the full
configuration, the metrics, time per step, device, torch version and the commit of the code that trained
it. Runs are started seed by seed (every entry's seed 3 before any seed 4), so a sweep stopped early leaves
complete pairs. Records already on disk are skipped, so an interrupted sweep resumes where it stopped (and a
run's own checkpoints under ``--work-dir`` let a half-finished run resume too). A run that crashes is recorded
as failed with its error, and the others go on; the next invocation retries it. A run whose loss becomes NaN
or infinite is a
result, not a crash: it is recorded as ``diverged`` and not retried.

Where the runs execute (no scheduler of our own):

- locally (default): a :class:`concurrent.futures.ProcessPoolExecutor` sized to the cores, each run
  single-threaded unless the grid sets ``threads``;
- on a Dask cluster: ``--scheduler tcp://HOST:8786`` sends each run to ``dask.distributed`` workers
  (``dask-jobqueue`` starts such a cluster on Slurm or PBS). Workers need the package and the data
  (``$UNET_REPRO_DATA`` or their user cache); records are written by the submitting process.

The grid file and its checks are :mod:`unet_repro.study.grid`.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..data.protocol import PROTOCOL
from ..results import code_commit
from .grid import Grid, RunSpec, SweepError, load_grid

# Re-exported: the grid (unet_repro.study.grid) is read through this module by notebooks and tests.
__all__ = [
    "pending",
    "run_one",
    "run_sweep",
    "record_path",
    "main",
]


def record_path(runs_dir: str | Path, spec: RunSpec) -> Path:
    return Path(runs_dir) / f"{spec.run_id}.json"


def _jsonable(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def _finished(runs_dir: Path, spec: RunSpec) -> bool:
    """True when a record of this exact run is on disk; a record of another configuration is an error."""
    path = record_path(runs_dir, spec)
    if not path.is_file():
        return False
    from ..training.checkpoint import saved_config

    rec = json.loads(path.read_text())
    if saved_config(rec.get("config", {})) != saved_config(_jsonable(spec.config)):
        raise SweepError(
            f"{path} holds another configuration of {spec.run_id!r}; rename the grid entry or delete the stale record"
        )
    if rec.get("status") == "diverged":
        return True
    return rec.get("status") == "ok" and set(spec.tta_modes) <= set(rec.get("metrics", {}).get("test", {}))


def _device_name(device: Any) -> str:
    import platform

    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def run_one(spec: RunSpec, work_dir: str | Path, device: str = "cpu") -> dict[str, Any]:
    """Train one run (resuming from its checkpoint), evaluate both blocks, return its record.

    Never raises for a failing run: the record then has ``status = "failed"`` and the error.
    """
    started = time.time()
    record: dict[str, Any] = {
        "run_id": spec.run_id,
        "name": spec.name,
        "seed": spec.seed,
        "config": _jsonable(spec.config),
        "tta_modes": list(spec.tta_modes),
        "phase": spec.phase,
        "commit": code_commit(),
    }
    try:
        import numpy as np
        import torch

        from ..data import isbi2012 as data_mod
        from ..device import resolve_device
        from ..inference.tiling import predict_stack
        from ..metrics import isbi2012_scores
        from ..model.files import config_dict
        from ..training.config import TrainConfig
        from ..training.loop import train

        cfg = TrainConfig(**spec.config)
        record["config"] = config_dict(cfg)  # every field, defaults included
        dev = resolve_device(device)
        # where it ran, before it runs: a diverged or crashed run's record names its device too
        record.update(device=str(dev), device_name=_device_name(dev), torch=torch.__version__, threads=cfg.threads)
        isbi = data_mod.load_isbi2012()
        curve_slices = PROTOCOL.validation_slices if spec.phase == "choosing" else PROTOCOL.test_slices
        result = train(
            cfg,
            Path(work_dir) / spec.run_id,
            resume=True,
            isbi=isbi,
            device=str(dev),
            progress=False,
            evaluate=False,
            curve=list(curve_slices) if spec.curve else False,
        )
        if spec.curve:  # the held-out learning curve (unet_repro.training.curve), in the record
            rows = [{k: v for k, v in r.items() if k != "seconds"} for r in result.curve]
            block = "validation" if spec.phase == "choosing" else "test"
            record["heldout_curve"] = {"block": block, "slices": list(curve_slices), "rows": rows}
        blocks = {"test": PROTOCOL.test_slices}
        if spec.phase == "choosing":  # a final run trained on the validation block: no validation score
            blocks = {"validation": PROTOCOL.validation_slices, **blocks}
        metrics: dict[str, dict[str, dict[str, float]]] = {b: {} for b in blocks}
        t0 = time.perf_counter()
        old = torch.get_num_threads()
        if dev.type == "cpu" and cfg.threads:
            torch.set_num_threads(cfg.threads)
        try:
            for mode in spec.tta_modes:
                for block, idx in blocks.items():
                    prob = predict_stack(result.model.to(dev), isbi.train_images[idx], tile=cfg.eval_tile, tta=mode)
                    metrics[block][mode] = {
                        k: float(v)
                        for k, v in isbi2012_scores(
                            prob, np.asarray(isbi.train_labels[idx]), threads=cfg.threads
                        ).items()
                    }
            if cfg.padding == "same":  # the seed's claim: is prediction without context still seamless?
                from ..inference.tiling import seam_report

                record["seams"] = seam_report(result.model, isbi.train_images[PROTOCOL.test_slices])
        finally:
            torch.set_num_threads(old)
        record.update(
            status="ok",
            metrics=metrics,
            train_seconds=result.seconds,
            seconds_per_step=result.seconds_per_iteration,
            predict_seconds=time.perf_counter() - t0,
            loss_curve=_loss_curve(result.log),
        )
    except FloatingPointError as exc:  # a result, not a crash: this configuration diverges (never retried)
        record.update(status="diverged", error=str(exc))
    except Exception as exc:  # a crashing run is recorded, and the sweep goes on
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=-3))
    record["wall_seconds"] = time.time() - started
    return record


#: steps per point of a record's ``loss_curve`` (the mean training loss over those steps).
CURVE_EVERY = 10


def _loss_curve(log: Sequence[Mapping[str, float]], every: int = CURVE_EVERY) -> list[list[float]]:
    """``[last step, mean loss]`` over each block of ``every`` logged steps: a learning curve in kilobytes."""
    out = []
    for i in range(0, len(log) - every + 1, every):
        block = log[i : i + every]
        out.append([int(block[-1]["iteration"]), round(sum(r["loss"] for r in block) / every, 6)])
    return out


def _write_record(runs_dir: Path, spec: RunSpec, record: Mapping[str, Any]) -> None:
    path = record_path(runs_dir, spec)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def pending(grid: Grid, runs_dir: str | Path, only: Iterable[str] | None = None) -> list[RunSpec]:
    """The runs of ``grid`` with no finished record in ``runs_dir``, seed by seed.

    Seed-major (every entry's seed 3 before any seed 4, entries in grid order within a seed), so that a
    sweep stopped early leaves complete seed pairs rather than one entry with every seed.
    """
    wanted = set(only) if only else None
    if wanted:
        unknown = wanted - {s.name for s in grid.specs}
        if unknown:
            raise SweepError(f"--only {sorted(unknown)}: no such grid entry")
    todo = [s for s in grid.specs if (wanted is None or s.name in wanted) and not _finished(Path(runs_dir), s)]
    return sorted(todo, key=lambda s: s.seed)  # stable: grid order within a seed


def run_sweep(
    grid: Grid,
    runs_dir: str | Path,
    work_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    device: str = "cpu",
    only: Iterable[str] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run every unfinished (entry, seed) of ``grid``; return the records written in this call.

    Args:
        grid: the grid (validated when built).
        runs_dir: where the JSON records go (one per run).
        work_dir: where each run keeps its checkpoints and model (resumable).
        workers: local processes (default: the number of cores); ignored with ``scheduler``.
        scheduler: a ``dask.distributed`` scheduler address; None runs locally.
        device: ``cpu``, ``cuda`` or ``auto`` for every run.
        only: entry names to run (default: all).
        progress: a progress bar over runs.
    """
    runs_dir, work_dir = Path(runs_dir), Path(work_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    todo = pending(grid, runs_dir, only)
    if not todo:
        return []
    if scheduler:
        from distributed import Client

        client = Client(scheduler)
        executor: cf.Executor = client.get_executor(pure=False)
    else:
        import multiprocessing as mp

        client = None
        executor = cf.ProcessPoolExecutor(
            max_workers=workers or os.cpu_count() or 1, mp_context=mp.get_context("spawn")
        )
    from tqdm.auto import tqdm

    done: list[dict[str, Any]] = []
    try:
        futures = {executor.submit(run_one, s, str(work_dir), device): s for s in todo}
        bar = tqdm(total=len(todo), desc="sweep", disable=not progress)
        for fut in cf.as_completed(futures):
            spec = futures[fut]
            try:
                rec = fut.result()
            except Exception as exc:  # the worker itself died
                rec = {
                    "run_id": spec.run_id,
                    "name": spec.name,
                    "seed": spec.seed,
                    "config": _jsonable(spec.config),
                    "status": "failed",
                    "error": f"{type(exc).__name__}: {exc}",
                }
            _write_record(runs_dir, spec, rec)
            done.append(rec)
            bar.update(1)
            bar.set_postfix(last=f"{spec.run_id}:{rec['status']}")
        bar.close()
    finally:
        executor.shutdown(wait=True)
        if client is not None:
            client.close()
    return done


def main(argv: Sequence[str] | None = None, prog: str = "python -m unet_repro.sweep") -> int:
    """``python -m unet_repro.sweep GRID.toml [--runs-dir D] [--scheduler ADDRESS] ...``."""
    from ..cli import command_parser, guarded, positive_int

    p = command_parser(prog, __doc__.split("\n")[0])
    p.add_argument("grid", help="TOML grid file")
    p.add_argument("--runs-dir", default="results/06_ablations/runs", help="where run records (JSON) go")
    p.add_argument("--work-dir", default="build/sweep", help="checkpoints and models of each run")
    p.add_argument("--workers", type=positive_int, help="local processes (default: the number of cores)")
    p.add_argument("--scheduler", help="dask.distributed scheduler address (e.g. tcp://host:8786)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--only", nargs="*", help="run only these grid entries")
    p.add_argument("--dry-run", action="store_true", help="validate the grid and list the runs to do")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    def run() -> int:
        grid = load_grid(args.grid)
        if args.dry_run:
            runs_dir = Path(args.runs_dir)
            for s in grid.specs:
                print(f"{s.run_id}\t{'done' if _finished(runs_dir, s) else 'to run'}")
            return 0
        recs = run_sweep(
            grid,
            args.runs_dir,
            args.work_dir,
            workers=args.workers,
            scheduler=args.scheduler,
            device=args.device,
            only=args.only,
            progress=not args.no_progress,
        )
        failed = [r["run_id"] for r in recs if r["status"] == "failed"]
        print(f"{len(recs) - len(failed)} runs finished, {len(failed)} failed" + (f": {failed}" if failed else ""))
        return 1 if failed else 0

    return guarded(run)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
