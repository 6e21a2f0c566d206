"""Each option string set of the package is spelled once, in unet_repro/options.py, and everything reads
it there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from unet_repro import options

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    name: frozenset(x for x in getattr(options, name) if isinstance(x, str))
    for name in ("TTA_MODES", "SCHEDULES", "OPTIMIZERS", "AMP_MODES", "AUGMENT_MODES", "PROFILES")
}


def _string_collections(path: Path) -> list[tuple[int, frozenset[str]]]:
    """Every tuple, list or set display (and ``Literal[...]`` subscript) of two or more string constants."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        elts = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else None
        if elts and len(elts) >= 2 and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in elts):
            found.append((node.lineno, frozenset(e.value for e in elts)))
    return found


@pytest.mark.parametrize(
    "path", sorted(p for p in (ROOT / "unet_repro").rglob("*.py") if p.name != "options.py"), ids=lambda p: p.name
)
def test_no_module_spells_an_option_set_again(path):
    for line, values in _string_collections(path):
        for name, option_set in SETS.items():
            assert values != option_set, f"{path.name}:{line} spells {name} again; import it from unet_repro.options"


def test_the_profiles_are_the_configured_ones():
    from unet_repro.training.config import PROFILE_CONFIGS

    assert tuple(PROFILE_CONFIGS) == options.PROFILES and options.DEFAULT_PROFILE in options.PROFILES


def test_the_check_finds_a_spelled_set(tmp_path):
    (tmp_path / "m.py").write_text('X = ("none", "rot4", "d4")\nY = ["ci", "cpu", "paper"]\n')
    assert [v for _, v in _string_collections(tmp_path / "m.py")] == [SETS["TTA_MODES"], SETS["PROFILES"]]
