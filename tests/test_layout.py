"""The package is laid out like the paper: a folder per chapter, one home per name, imports pointing one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "unet_repro"

#: the top level: the command line, the option strings (defined once, read by every chapter), the results tables,
#: the notebook runner, the README generator, the device choice, and one entry file per ``python -m
#: unet_repro.<verb>`` the README names (each only runs its verb).
TOP = {"__init__", "cli", "options", "results", "reproduce", "readme", "device"} | {
    "train",
    "predict",
    "evaluate",
    "sweep",
    "export",
}
ENTRIES = {"train", "predict", "evaluate", "sweep", "export"}

#: folder -> the folders it may import (the chapters in paper order; training uses model, loss, augment, data)
ALLOWED = {
    "model": set(),
    "loss": {"model"},
    "data": set(),
    "augment": {"model", "data"},
    "metrics": set(),
    "inference": {"model", "data", "metrics"},
    "training": {"model", "loss", "augment", "data", "metrics", "inference"},
    "study": {"model", "loss", "augment", "data", "metrics", "inference", "training"},
}

#: ``unet_repro.metrics`` is the challenge metrics' public face (``from unet_repro.metrics import evaluate``,
#: as the README documents): its ``__init__`` gathers the kernels of its files. No other module re-exports.
FACADES = {"unet_repro.metrics"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


PACKAGE_FILES = sorted(PKG.rglob("*.py"))
MODULES = {_module_name(p): p for p in PACKAGE_FILES}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _defined(module: str) -> set[str]:
    """Names a module defines at its top level (functions, classes, assignments, also under ``if``)."""
    out: set[str] = set()
    todo = list(_tree(MODULES[module]).body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                out.update(t.id for t in ast.walk(target) if isinstance(t, ast.Name))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
        elif isinstance(node, (ast.If, ast.Try)):
            todo += node.body + getattr(node, "orelse", []) + [h for x in getattr(node, "handlers", []) for h in x.body]
    if module in FACADES:
        out |= {
            a.asname or a.name
            for n in ast.walk(_tree(MODULES[module]))
            if isinstance(n, ast.ImportFrom)
            for a in n.names
        }
    return out


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, absolute module, names)`` of every ``from unet_repro... import`` in a file."""
    found = []
    here = _module_name(path).split(".") if path.is_relative_to(PKG) else []
    is_package = path.name == "__init__.py"
    for node in ast.walk(_tree(path)):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = here if is_package else here[:-1]
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        if module == "unet_repro" or module.startswith("unet_repro."):
            found.append((node.lineno, module, [a.name for a in node.names]))
    return found


def _sources() -> list[Path]:
    files = [*PACKAGE_FILES, *sorted((ROOT / "tests").glob("*.py")), *sorted((ROOT / "benchmarks").glob("*.py"))]
    files += sorted((ROOT / "scripts").glob("*.py")) + sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    return files


def test_the_top_level_holds_only_the_shared_modules():
    assert {p.stem for p in PKG.glob("*.py")} == TOP
    for name in ENTRIES:  # an entry file defines nothing: it runs the verb's main where that lives
        tree = _tree(PKG / f"{name}.py")
        assert [type(n).__name__ for n in tree.body] == ["Expr", "If"], name


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_each_folder_says_what_it_holds(folder):
    tree = _tree(PKG / folder / "__init__.py")
    doc = ast.get_docstring(tree)
    assert doc, folder
    if f"unet_repro.{folder}" not in FACADES:
        assert len(doc.splitlines()) <= 8, folder
        assert [type(n).__name__ for n in tree.body] == ["Expr"], f"{folder}/__init__.py holds more than its docstring"
        for path in (PKG / folder).glob("*.py"):  # every module of the folder is named in its docstring
            assert path.stem == "__init__" or f"``{path.stem}``" in doc, (folder, path.stem)


def _not_from_home(path: Path) -> list[str]:
    """Imports in ``path`` of a name from a module that does not define it (nor has it as a submodule)."""
    wrong = []
    for line, module, names in _imports(path):
        if module not in MODULES:
            wrong.append(f"{path.name}:{line} imports from {module}, which does not exist")
            continue
        defined = _defined(module)
        wrong += [
            f"{path.name}:{line} imports {name} from {module}, which does not define it"
            for name in names
            if f"{module}.{name}" not in MODULES and name != "__version__" and name not in defined
        ]
    return wrong


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_name_is_imported_from_its_home(path):
    """No module re-exports: each imported name is defined where it is imported from, or is a submodule."""
    assert _not_from_home(path) == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in FACADES), ids=str)
def test_all_lists_only_own_names(module):
    tree = _tree(MODULES[module])
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            listed = {e.value for e in node.value.elts}
            assert listed <= _defined(module), f"{module} lists names it does not define: {listed - _defined(module)}"


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_dependencies_point_one_way(folder):
    """A chapter imports only the chapters before it (training uses model, loss, augment and data, never the
    reverse); every folder may use the shared top level."""
    for path in sorted((PKG / folder).glob("*.py")):
        for line, module, _ in _imports(path):
            parts = module.split(".")
            other = parts[1] if len(parts) > 1 else ""
            if other in ALLOWED and other != folder:
                assert other in ALLOWED[folder], f"{path.relative_to(ROOT)}:{line} imports {module}"


def test_the_check_catches_a_reexport(tmp_path):
    """The home check fails on a name imported through a module that only imports it, or from nowhere."""
    (tmp_path / "m.py").write_text(
        "from unet_repro.inference.tiling import resolve_device\n"
        "from unet_repro.device import resolve_device as ok\n"
        "from unet_repro.train import main\n"
    )
    assert len(_not_from_home(tmp_path / "m.py")) == 2


@pytest.mark.parametrize(
    "module",
    [
        "unet_repro.results",
        "unet_repro.model.sizing",
        "unet_repro.metrics",
        "unet_repro.metrics.command",
        "unet_repro.data.protocol",
        "unet_repro.options",
        "unet_repro.training.config",
        "unet_repro.study.records",
        "unet_repro.study.primary",
        "unet_repro.study.ledger",
    ],
)
def test_imports_no_torch(module):
    """Anyone can score a segmentation, read a configuration and re-aggregate the study without torch."""
    code = f"import sys, importlib; importlib.import_module({module!r}); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", module
