"""Re-run the notebooks with papermill and check their tables against the committed ones.

``python -m unet_repro.reproduce [--profile ci|cpu|paper] [--only 01,02]`` executes every numbered
notebook in ``notebooks/`` in order (kernel ``python3``; ``profile`` and ``out_dir`` injected into the
cell tagged ``parameters``), writes the executed notebooks and fresh tables to ``build/reproduce/<profile>/``,
and compares each fresh table with the committed one in ``results/`` (``results/<profile>/`` for other
profiles) under the rules written beside it (see :mod:`unet_repro.results`): exact quantities must be
identical, stochastic ones within their stated tolerance, measured ones (times) are only reported.
Each executed notebook, with its outputs, is also kept beside the fresh tables (``notebooks/NN_name.ipynb``,
machine-specific paths and timestamps removed), so that ``results/notebooks/`` shows every figure and table
to a reader who runs nothing. Progress bars stay off (``UNET_REPRO_PROGRESS=0``, see :mod:`unet_repro.training.runs`).
When everything matches, the fresh tables and figures are copied into the results folder (``--no-write``
keeps it untouched; ``--update`` copies even after a mismatch, for a deliberate change). The exit status
is non-zero on any mismatch or failed cell, and the summary names the notebook and the cell.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .options import DEFAULT_PROFILE, PROFILES
from .results import Check, compare_tables, repo_root

__all__ = ["NotebookRun", "find_notebooks", "run_notebook", "publishable_notebook", "main"]


@dataclass
class NotebookRun:
    """What happened to one notebook: its execution and the checks of its tables."""

    notebook: Path
    seconds: float = 0.0
    error: str = ""
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error and all(c.ok for c in self.checks)


def find_notebooks(folder: Path, only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks ``NN_*.ipynb`` of ``folder`` in order, restricted to the numbers in ``only``."""
    notebooks = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = {o.strip().zfill(2) for o in only if o.strip()}
        unknown = wanted - {p.name[:2] for p in notebooks}
        if unknown:
            raise SystemExit(f"--only names notebooks that do not exist in {folder}: {', '.join(sorted(unknown))}")
        notebooks = [p for p in notebooks if p.name[:2] in wanted]
    if not notebooks:
        raise SystemExit(f"no numbered notebooks (NN_name.ipynb) in {folder}")
    return notebooks


def run_notebook(path: Path, executed: Path, parameters: dict, kernel: str = "python3") -> str:
    """Execute one notebook with papermill; return "" on success, else a message naming the failed cell."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .training.runs import PROGRESS_ENV

    old_progress = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = "0"  # the kernel inherits it: no progress bars in the executed notebooks
    try:
        pm.execute_notebook(
            str(path),
            str(executed),
            parameters=parameters,
            kernel_name=kernel,
            language="python",
            cwd=str(path.parent),
            progress_bar=sys.stderr.isatty(),
            log_output=False,
        )
        if parameters.get("out_dir"):
            root = repo_root(path.resolve().parent) or path.resolve().parent
            publishable_notebook(executed, Path(parameters["out_dir"]) / "notebooks" / path.name, root)
    except PapermillExecutionError as exc:
        first = next((ln for ln in exc.source.splitlines() if ln.strip()), "")
        return (
            f"cell {exc.cell_index} (execution count {exc.exec_count}) failed: {exc.ename}: {exc.evalue}\n"
            f"    cell starts with: {first[:100]}\n    executed notebook with the traceback: {executed}"
        )
    except Exception as exc:  # kernel died, bad parameters, unreadable notebook
        return f"could not execute: {type(exc).__name__}: {exc}"
    finally:
        if old_progress is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = old_progress
    return ""


def publishable_notebook(executed: Path, dest: Path, root: Path) -> Path:
    """Copy an executed notebook to ``dest`` for readers: outputs kept; run-specific noise removed.

    Removed: papermill's and Jupyter's timestamps and durations (notebook and cell metadata), and the
    absolute path of the checkout (``root``) wherever it appears in sources or outputs, so the copy
    changes only when a result does.
    """
    nb = json.loads(Path(executed).read_text())
    nb.get("metadata", {}).pop("papermill", None)
    for cell in nb.get("cells", []):
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    prefix = str(Path(root).resolve()) + os.sep
    text = text.replace(json.dumps(prefix)[1:-1], "")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    return dest


def _tables(folder: Path, prefix: str) -> dict[str, Path]:
    return {p.name: p for p in folder.glob(f"{prefix}_*.csv") if not p.name.endswith(".tolerances.csv")}


def check_tables(run: NotebookRun, fresh_dir: Path, committed_dir: Path, strict: bool) -> None:
    """Compare the tables notebook ``run`` wrote to ``fresh_dir`` with those in ``committed_dir``."""
    prefix = run.notebook.name[:2]
    fresh, committed = _tables(fresh_dir, prefix), _tables(committed_dir, prefix)
    for name in sorted(set(committed) - set(fresh)):
        run.checks.append(
            Check(
                name[:-4],
                "*",
                "*",
                "missing",
                "committed",
                "not written",
                False,
                "the notebook no longer writes this table",
            )
        )
    for name in sorted(fresh):
        if name in committed:
            run.checks.extend(compare_tables(fresh[name], committed[name]))
        elif strict:
            run.checks.append(
                Check(
                    name[:-4],
                    "*",
                    "*",
                    "missing",
                    "not committed",
                    "written",
                    False,
                    f"no committed {committed_dir / name}; run with --update and commit it",
                )
            )
        else:
            run.notes.append(f"{name}: no committed table for this profile, nothing compared")


def _fmt_row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False))


def summarise(runs: list[NotebookRun], out=sys.stdout) -> None:
    """Print one block per notebook: execution, exact checks, stochastic and measured quantities."""
    for run in runs:
        status = "PASS" if run.ok else "FAIL"
        print(f"\n== {run.notebook.name}: {status} ({run.seconds:.0f} s)", file=out)
        if run.error:
            print(f"  {run.error}", file=out)
        for note in run.notes:
            print(f"  note: {note}", file=out)
        exact = [c for c in run.checks if c.kind == "exact"]
        if exact:
            bad = [c for c in exact if not c.ok]
            print(f"  exact quantities: {len(exact) - len(bad)}/{len(exact)} identical", file=out)
        shown = [c for c in run.checks if c.kind != "exact" or not c.ok]
        if shown:
            head = ["table", "row", "quantity", "kind", "committed", "fresh", "check"]
            rows = [
                [
                    c.table,
                    c.row[:28],
                    c.column[:28],
                    c.kind,
                    c.committed[:14],
                    c.fresh[:14],
                    ("ok " if c.ok else "FAIL ") + c.detail,
                ]
                for c in shown
            ]
            widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
            print("  " + _fmt_row(head, widths), file=out)
            for r in rows:
                print("  " + _fmt_row(r, widths), file=out)
    failed = [r.notebook.name for r in runs if not r.ok]
    print(
        f"\n{len(runs) - len(failed)} passed, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""),
        file=out,
    )


def main(argv: list[str] | None = None, prog: str = "python -m unet_repro.reproduce") -> int:
    """Entry point of ``python -m unet_repro.reproduce``: 0 all passed, 1 a mismatch, 2 bad input."""
    from .cli import command_parser, guarded, output_folder

    parser = command_parser(prog, __doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default=DEFAULT_PROFILE,
        help="ci: minutes on a CPU (what CI runs); cpu: about an hour; paper: the paper's configuration, GPU",
    )
    parser.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 01,02")
    parser.add_argument("--notebooks", type=Path, default=None, help="folder of notebooks (default: notebooks/)")
    parser.add_argument(
        "--results",
        type=lambda s: Path(output_folder(s)),
        default=None,
        help="committed results folder (default: results/ for ci, results/<profile>/ otherwise)",
    )
    parser.add_argument(
        "--build",
        type=lambda s: Path(output_folder(s)),
        default=None,
        help="where executed notebooks and fresh tables go",
    )
    parser.add_argument(
        "--no-write", action="store_true", help="never copy fresh tables/figures into the results folder"
    )
    parser.add_argument("--update", action="store_true", help="copy fresh tables/figures even after a mismatch")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    args = parser.parse_args(argv)
    return guarded(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    root = repo_root() or Path.cwd()
    nb_dir = args.notebooks or root / "notebooks"
    _check_notebook_args(nb_dir, args.only)
    _check_kernel(args.kernel)
    committed = args.results or (
        root / "results" if args.profile == DEFAULT_PROFILE else root / "results" / args.profile
    )
    build = args.build or root / "build" / "reproduce" / args.profile
    fresh = build / "results"
    if fresh.exists():
        shutil.rmtree(fresh)
    (fresh / "figures").mkdir(parents=True)
    notebooks = find_notebooks(nb_dir, args.only.split(",") if args.only else None)

    runs: list[NotebookRun] = []
    for i, nb in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {nb.name} (profile {args.profile})", flush=True)
        run = NotebookRun(nb)
        t0 = time.perf_counter()
        run.error = run_notebook(
            nb, build / nb.name, {"profile": args.profile, "out_dir": str(fresh.resolve())}, args.kernel
        )
        run.seconds = time.perf_counter() - t0
        if not run.error:
            check_tables(run, fresh, committed, strict=args.profile == DEFAULT_PROFILE)
        print(f"      {'ok' if run.ok else 'FAILED'} in {run.seconds:.0f} s", flush=True)
        runs.append(run)
    summarise(runs)

    all_ok = all(r.ok for r in runs)
    if (all_ok or args.update) and not args.no_write:
        committed.mkdir(parents=True, exist_ok=True)
        shutil.copytree(fresh, committed, dirs_exist_ok=True)
        print(f"fresh tables and figures copied to {committed}")
    elif not all_ok:
        print(f"results in {committed} left as they were; fresh ones are in {fresh}")
    return 0 if all_ok else 1


def _check_kernel(name: str) -> None:
    """``--kernel`` names an installed Jupyter kernel (ValueError if not)."""
    from jupyter_client.kernelspec import KernelSpecManager

    have = sorted(KernelSpecManager().find_kernel_specs())
    if name not in have:
        raise ValueError(
            f"no Jupyter kernel named {name!r} is installed; use --kernel with one of "
            f"{', '.join(have) or '(none: pip install ipykernel)'}"
        )


def _check_notebook_args(nb_dir: Path, only: str) -> None:
    """``--notebooks`` is a folder of numbered notebooks and ``--only`` names some of them (ValueError if not)."""
    if not nb_dir.is_dir():
        raise ValueError(f"--notebooks {nb_dir} is not a folder; give the folder that holds NN_name.ipynb")
    have = sorted({p.name[:2] for p in nb_dir.glob("[0-9][0-9]_*.ipynb")})
    if not have:
        raise ValueError(
            f"no numbered notebooks (NN_name.ipynb) in {nb_dir}; give --notebooks the folder that has them"
        )
    wanted = [o.strip() for o in only.split(",") if o.strip()] if only else []
    bad = [o for o in wanted if not o.isdigit() or o.zfill(2) not in have]
    if bad:
        raise ValueError(
            f"--only names notebooks that are not in {nb_dir}: {', '.join(bad)}; "
            f"choose from {','.join(have)} (comma-separated)"
        )


if __name__ == "__main__":
    sys.exit(main())
