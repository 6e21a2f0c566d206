"""Results tables: how notebooks write them and how ``reproduce`` compares them.

Every notebook writes its numbers as CSV tables (pandas DataFrames) under a results folder, and beside
each table ``NAME.csv`` a sidecar ``NAME.tolerances.csv`` that says, column by column, how a fresh run is
compared with the committed table:

- ``exact``: deterministic quantities (sizes, parameter counts, FLOPs, checksums). Compared as the text
  written in the CSV, so ``31030658`` must be ``31030658``.
- ``measured``: wall-clock times and ratios of times, and scores no seed study bounds (the held-out curve's
  mid-training checkpoints). Reported side by side, never compared.
- ``Stochastic(atol, why)``: losses, metrics and statistics of random draws. ``|fresh - committed| <= atol``,
  with the reason for that tolerance written in the sidecar.

Columns not named are ``exact``. Tables of the default profile (``ci``) live in ``results/``; other
profiles write to ``results/<profile>/`` so that a GPU run of the ``paper`` profile never overwrites
what CI compares against. Figures go to ``<results>/figures/`` through :func:`save_figure`, which leaves
matplotlib's version out of the PNG, so a library upgrade does not rewrite every committed figure.

This module imports no torch.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .options import DEFAULT_PROFILE, PROFILES

__all__ = [
    "Stochastic",
    "Check",
    "write_table",
    "read_tolerances",
    "compare_tables",
    "repo_root",
    "run_dir",
    "default_results_dir",
    "save_figure",
    "write_between",
    "code_commit",
    "provenance",
]


@dataclass(frozen=True)
class Stochastic:
    """A column compared within an absolute tolerance ``atol``; ``why`` justifies the number."""

    atol: float
    why: str = ""


Kind = str | Stochastic


def repo_root(start: Path | None = None) -> Path | None:
    """The checkout this code runs in (the folder holding ``pyproject.toml`` of unet-repro), if any."""
    here = (start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        pp = folder / "pyproject.toml"
        if pp.is_file() and 'name = "unet-repro"' in pp.read_text():
            return folder.resolve()
    return None


def default_results_dir(profile: str = DEFAULT_PROFILE, out_dir: str | Path | None = None) -> Path:
    """Where a notebook writes its tables and figures.

    Args:
        profile: ``ci`` writes to ``results/``; other profiles to ``results/<profile>/``.
        out_dir: an explicit folder (what ``reproduce`` passes); wins when given (non-empty).

    Returns:
        The folder, created, with a ``figures/`` subfolder.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if out_dir:
        path = Path(out_dir)
    else:
        root = repo_root() or Path.cwd()
        path = root / "results" if profile == DEFAULT_PROFILE else root / "results" / profile
    (path / "figures").mkdir(parents=True, exist_ok=True)
    return path


def run_dir(profile: str = DEFAULT_PROFILE) -> Path:
    """Where training runs of a profile are kept (``build/runs/<profile>/``, ignored by git).

    Notebook 04 trains into it; notebook 05 evaluates the ``heldout_prob.tif`` found there.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    root = repo_root() or Path.cwd()
    path = root / "build" / "runs" / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(fig, name: str, results_dir: str | Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure as ``<results_dir>/figures/<name>.png``, with no version stamp in it.

    The PNG's ``Software`` text chunk (matplotlib's version) is left out, so the file depends only on
    what is drawn.

    Args:
        fig: the figure.
        name: file name without ``.png`` (e.g. ``"02_fig3_isbi"``).
        results_dir: the results folder (see :func:`default_results_dir`).
        dpi: resolution.

    Returns:
        The path written.
    """
    path = Path(results_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return path


def _kind_row(column: str, kind: Kind) -> dict:
    if isinstance(kind, Stochastic):
        if not (kind.atol >= 0 and math.isfinite(kind.atol)):
            raise ValueError(f"tolerance for {column!r} must be a finite number >= 0, got {kind.atol}")
        return {"column": column, "kind": "stochastic", "tolerance": kind.atol, "why": kind.why}
    if kind not in ("exact", "measured"):
        raise ValueError(f"kind for {column!r} must be 'exact', 'measured' or Stochastic(...), got {kind!r}")
    return {"column": column, "kind": kind, "tolerance": "", "why": ""}


def write_table(
    df: pd.DataFrame,
    name: str,
    out_dir: str | Path,
    kinds: Mapping[str, Kind] | None = None,
) -> Path:
    """Write ``df`` to ``out_dir/name.csv`` and its comparison rules to ``out_dir/name.tolerances.csv``.

    Args:
        df: the table; its index is not written (put keys in columns).
        name: file stem, e.g. ``"01_architecture"``.
        out_dir: results folder (see :func:`default_results_dir`).
        kinds: column -> ``"exact"`` | ``"measured"`` | :class:`Stochastic`; unnamed columns are exact.

    Returns:
        The path of the CSV.
    """
    kinds = dict(kinds or {})
    unknown = set(kinds) - set(map(str, df.columns))
    if unknown:
        raise ValueError(f"kinds name columns that are not in the table: {sorted(unknown)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.csv"
    df.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")
    spec = pd.DataFrame([_kind_row(str(c), kinds.get(str(c), "exact")) for c in df.columns])
    spec.to_csv(out / f"{name}.tolerances.csv", index=False, lineterminator="\n")
    return path


def read_tolerances(csv_path: str | Path) -> dict[str, Kind]:
    """The comparison rules written beside ``csv_path`` (all exact when there is no sidecar)."""
    side = Path(str(csv_path)[: -len(".csv")] + ".tolerances.csv")
    if not side.is_file():
        return {}
    spec = pd.read_csv(side, dtype=str, keep_default_na=False)
    kinds: dict[str, Kind] = {}
    for row in spec.itertuples(index=False):
        if row.kind == "stochastic":
            kinds[row.column] = Stochastic(float(row.tolerance), row.why)
        else:
            kinds[row.column] = row.kind
    return kinds


@dataclass(frozen=True)
class Check:
    """One compared (or reported) cell of a table."""

    table: str
    row: str
    column: str
    kind: str
    committed: str
    fresh: str
    ok: bool
    detail: str = ""


def _row_key(df: pd.DataFrame, i: int) -> str:
    return str(df.iloc[i, 0]) if df.shape[1] else str(i)


def compare_tables(fresh_csv: str | Path, committed_csv: str | Path) -> list[Check]:
    """Compare a freshly written table with the committed one, cell by cell.

    The rules come from the committed table's sidecar (so a fresh run cannot loosen them).

    Returns:
        One :class:`Check` per cell (measured cells have ``ok=True`` and are only reported), plus a
        failing check when the tables differ in shape or columns.
    """
    name = Path(committed_csv).stem
    fresh = pd.read_csv(fresh_csv, dtype=str, keep_default_na=False)
    old = pd.read_csv(committed_csv, dtype=str, keep_default_na=False)
    kinds = read_tolerances(committed_csv)
    if list(fresh.columns) != list(old.columns):
        return [Check(name, "*", "*", "shape", ",".join(old.columns), ",".join(fresh.columns), False, "columns differ")]
    if len(fresh) != len(old):
        return [Check(name, "*", "*", "shape", f"{len(old)} rows", f"{len(fresh)} rows", False, "row counts differ")]
    checks: list[Check] = []
    for i in range(len(old)):
        key = _row_key(old, i)
        for col in old.columns:
            a, b = old.at[i, col], fresh.at[i, col]
            kind = kinds.get(col, "exact")
            if kind == "measured":
                checks.append(Check(name, key, col, "measured", a, b, True, "reported only"))
            elif isinstance(kind, Stochastic):
                try:
                    fa, fb = float(a), float(b)
                    diff = abs(fa - fb)
                    ok = diff <= kind.atol or (math.isnan(fa) and math.isnan(fb))
                    detail = f"|diff| {diff:.3g} <= {kind.atol:g}" if ok else f"|diff| {diff:.3g} > {kind.atol:g}"
                except ValueError:
                    ok, detail = a == b, "not numeric: compared as text"
                checks.append(Check(name, key, col, "stochastic", a, b, ok, detail))
            else:
                checks.append(Check(name, key, col, "exact", a, b, a == b, "" if a == b else "differs"))
    return checks


def write_between(path: str | Path, markers: tuple[str, str], body: str) -> bool:
    """Replace what lies between the two marker lines of a text file (a generated README block) with ``body``.

    Returns:
        True when the file changed.
    """
    path = Path(path)
    text = path.read_text()
    start, end = markers
    if start not in text or end not in text:
        raise ValueError(f"{path} lacks the lines {start!r} and {end!r}; add them where the block goes")
    head, rest = text.split(start, 1)
    new = f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}"
    path.write_text(new)
    return new != text


def code_commit() -> str | None:
    """The git commit of this package's source (``+dirty`` when its tracked files differ); None outside git."""
    here = str(Path(__file__).resolve().parent)
    try:
        git = ["git", "-C", here]
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=30)
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def provenance(run: str | Path) -> str:
    """Where a finished run came from, in one line: its profile, when and at which commit it was trained, and
    a hash of its configuration (from the run's ``metrics.json``; "not recorded" for runs that predate it)."""
    import json

    summary = json.loads((Path(run) / "metrics.json").read_text())
    commit = summary.get("commit") or "not recorded"
    return (
        f"run {run}: profile {summary.get('profile')}, trained {summary.get('finished', 'at a time not recorded')}"
        f" at commit {commit[:12]}, config sha256 {str(summary.get('config_sha256', 'not recorded'))[:12]}, "
        f"{summary.get('iterations')} steps in {summary.get('train_seconds', 0) / 60:.1f} min"
    )
