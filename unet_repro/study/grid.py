"""A grid of training runs: configurations x seeds, checked before any run starts.

Used by :mod:`unet_repro.study.sweep`, which runs every (configuration, seed) and keeps one record of each.

A grid file (TOML)::

    seeds = [0, 1, 2]
    [base]                 # TrainConfig fields shared by every entry
    base_channels = 16
    iterations = 600
    [[config]]
    name = "baseline"
    [[config]]
    name = "no_augmentation"
    augment = false
    tta_modes = ["none"]   # optional: test-time averaging modes to evaluate (no retraining)

``curve = true`` at the top level records each run's held-out learning curve (the validation block's scores at
every checkpoint, ``unet_repro.training.curve``; the test block's for ``phase = "final"``) in its record.

A pre-registered study adds ``[rule]`` and ``[[claim]]`` tables (e.g. ``studies/06_primary.toml``); the runs
ignore them and the analysis reads them.

Every entry is validated before any run starts: unknown fields, invalid tile sizes and training slices
that touch the validation or test block are errors naming the entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.protocol import PROTOCOL, check_training_slices
from ..options import TTA_MODES

if TYPE_CHECKING:
    from ..options import TTA

__all__ = ["SweepError", "RunSpec", "Grid", "load_grid", "read_toml"]

_RUNNER_KEYS = {"name", "tta_modes", "seeds"}
#: a pre-registered study's claims and rule, read by the analysis (:mod:`unet_repro.study.records`), not by the runs
_REGISTRATION_KEYS = {"rule", "claim"}


class SweepError(ValueError):
    """A grid that cannot run; the message names the entry and what to change."""


@dataclass(frozen=True)
class RunSpec:
    """One job: a named configuration, a seed and the test-time modes to evaluate."""

    name: str
    seed: int
    config: Mapping[str, Any]
    tta_modes: tuple[TTA, ...] = ("none",)
    phase: str = "choosing"
    curve: bool = False

    @property
    def run_id(self) -> str:
        return f"{self.name}-s{self.seed}"


@dataclass(frozen=True)
class Grid:
    """A baseline configuration, the entries that change it, and the seeds every entry runs with.

    Args:
        base: TrainConfig fields shared by every entry.
        entries: each a ``name`` and the fields it changes (plus optional ``tta_modes`` and ``seeds``).
        seeds: the seeds of every entry (seed-matched across entries, so differences are paired).
        profile: start ``base`` from this profile's configuration (e.g. ``"ci"``) instead of the defaults.
        phase: ``"choosing"`` (default: train on slices 0-19, the validation block decides) or ``"final"``
            (train on 0-24 like the profiles; only the test block is scored).
        curve: record each run's held-out learning curve (validation block; test block when final).
    """

    base: Mapping[str, Any]
    entries: Sequence[Mapping[str, Any]]
    seeds: tuple[int, ...] = (0, 1, 2)
    profile: str | None = None
    phase: str = "choosing"
    curve: bool = False
    specs: tuple[RunSpec, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "specs", tuple(_expand(self)))


def _train_config_fields() -> set[str]:
    from ..training.config import TrainConfig

    return {f.name for f in dataclasses.fields(TrainConfig)}


def _expand(grid: Grid) -> list[RunSpec]:
    from ..training.config import TrainConfig

    known = _train_config_fields()
    if grid.phase not in ("choosing", "final"):
        raise SweepError(f"phase {grid.phase!r} must be 'choosing' or 'final'")
    choosing = grid.phase == "choosing"
    base: dict[str, Any] = {}
    if grid.profile is not None:
        from ..training.config import profile_config

        try:
            base = dataclasses.asdict(profile_config(grid.profile))
        except ValueError as exc:
            raise SweepError(f"profile: {exc}") from None
    base.update(grid.base)
    specs, seen = [], set()
    for i, entry in enumerate(grid.entries):
        name = str(entry.get("name", ""))
        label = f"grid entry {i} ({name!r})" if name else f"grid entry {i}"
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise SweepError(f"{label}: needs a 'name' of letters, digits, '_' or '-'")
        if name in seen:
            raise SweepError(f"{label}: the name {name!r} is used twice; give each entry its own name")
        seen.add(name)
        cfg_dict = {**base, **{k: v for k, v in entry.items() if k not in _RUNNER_KEYS}}
        unknown = sorted(set(cfg_dict) - known)
        if unknown:
            raise SweepError(f"{label}: unknown field(s) {unknown}; TrainConfig has {sorted(known)}")
        cfg_dict = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg_dict.items()}
        if cfg_dict.get("train_slices") is None:
            cfg_dict["train_slices"] = tuple(PROTOCOL.choosing_train_slices()) if choosing else None
        cfg_dict.setdefault("threads", 1)
        cfg_dict.setdefault("profile", "sweep")
        try:
            if cfg_dict["train_slices"] is not None:
                check_training_slices(cfg_dict["train_slices"], choosing=choosing)
            TrainConfig(**cfg_dict)
        except (TypeError, ValueError) as exc:
            raise SweepError(f"{label}: {exc}") from None
        modes = tuple(entry.get("tta_modes", ("none",)))
        bad = [m for m in modes if m not in TTA_MODES]
        if bad or not modes:
            raise SweepError(f"{label}: tta_modes {list(modes)} must be a non-empty subset of {list(TTA_MODES)}")
        seeds = tuple(int(s) for s in entry.get("seeds", grid.seeds))
        for seed in seeds:
            specs.append(RunSpec(name, seed, {**cfg_dict, "seed": seed}, modes, grid.phase, grid.curve))
    return specs


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; invalid TOML is a :class:`SweepError` naming the file."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    try:
        return tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path} is not valid TOML ({exc}); fix the file") from None


def load_grid(path: str | Path) -> Grid:
    """Read a TOML grid file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"grid file {path} does not exist; pass a TOML file (see python -m unet_repro.sweep -h)")
    doc = read_toml(path)
    entries = doc.get("config", [])
    if not entries:
        raise SweepError(f"{path} has no [[config]] entries; add at least one")
    unknown = sorted(set(doc) - {"base", "config", "seeds", "profile", "phase", "curve", *_REGISTRATION_KEYS})
    if unknown:
        raise SweepError(f"{path}: unknown top-level key(s) {unknown}; use base, config, seeds, profile, phase, curve")
    if not isinstance(doc.get("curve", False), bool):
        raise SweepError(f"{path}: curve must be true or false, got {doc['curve']!r}")
    return Grid(
        base=doc.get("base", {}),
        entries=entries,
        seeds=tuple(doc.get("seeds", (0, 1, 2))),
        profile=doc.get("profile"),
        phase=doc.get("phase", "choosing"),
        curve=doc.get("curve", False),
    )
