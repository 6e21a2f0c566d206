"""Prose policy, checked by ``make lint`` (CI runs it): what the project's text may not say.

- No typed speed-up ("40x faster") in the README, the notebooks' markdown or the package's docstrings: speed
  figures live in the benchmark tables under ``results/benchmarks/``, which the text refers to.
- No file outside the repository (``../shared``) and no issue number cited in a docstring: a reader can open
  neither.

``python scripts/lint_prose.py [ROOT]`` prints one line per finding and exits 1 when there is any.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

# a typed speed-up: "~40x faster", "37-55x", "48.8x" next to "faster", "speed" or "speed-up"
SPEEDUP = re.compile(
    r"(?:~|about |\b)\d+(?:\.\d+)?(?:\s*-\s*\d+(?:\.\d+)?)?x\b(?=[^.|\n]{0,40}(?:faster|speed))"
    r"|(?:faster|speed-up|speed ratio)[^.|\n]{0,40}\b\d+(?:\.\d+)?x\b",
    re.IGNORECASE,
)
ISSUE = re.compile(r"\bissues? #?\d+", re.IGNORECASE)


def _markdown(path: Path) -> str:
    """The markdown cells of a py:percent notebook (the lines of ``# %% [markdown]`` cells)."""
    out, inside = [], False
    for line in path.read_text().splitlines():
        if line.startswith("# %%"):
            inside = "[markdown]" in line
        elif inside:
            out.append(line.removeprefix("#").strip())
    return "\n".join(out)


def _docstrings(path: Path) -> str:
    tree = ast.parse(path.read_text())
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return "\n".join(ast.get_docstring(n) or "" for n in nodes)


def findings(root: Path) -> list[str]:
    """Every breach of the policy under ``root`` (a checkout), one line each."""
    out = [f"README.md: typed speed-up {m!r}" for m in SPEEDUP.findall((root / "README.md").read_text())]
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.py")):
        out += [f"{path.name}: typed speed-up {m!r} in markdown" for m in SPEEDUP.findall(_markdown(path))]
    for path in sorted((root / "unet_repro").rglob("*.py")):
        text, name = _docstrings(path), str(path.relative_to(root))
        out += [f"{name}: typed speed-up {m!r} in a docstring" for m in SPEEDUP.findall(text)]
        out += [f"{name}: a docstring cites a file outside the repository" for _ in [1] if "shared/" in text]
        out += [f"{name}: a docstring cites {m!r}" for m in ISSUE.findall(text)]
    return out


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    found = findings(root)
    for line in found:
        print(line)
    if found:
        print("refer to results/benchmarks/*.csv for speed; cite what a reader can open", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
