"""environment.yml (conda) and pyproject.toml (pip) name the same dependencies."""

from __future__ import annotations

import re
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # pip name -> conda-forge name


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", req)
    assert m, req
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_deps = dict(_split(r) for r in project["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip_section = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_section += dep["pip"]
        else:
            conda.append(dep)
    conda_deps = dict(_split(d) for d in conda if not d.startswith(("python", "pip")))
    assert conda_deps == {CONDA_NAMES.get(k, k): v for k, v in pip_deps.items()}
    assert pip_section == ["-e .[notebooks]"]
    assert "notebooks" in project["optional-dependencies"]
    python = next(d for d in conda if d.startswith("python"))
    assert python.replace("python", "") == project["requires-python"]


def test_metrics_and_results_import_no_torch():
    """Anyone can score an EM segmentation without torch: metrics (and the results tables) never import it."""
    import subprocess
    import sys

    code = ("import sys, importlib\n"
            "for m in ('unet_repro.results', 'unet_repro.sizing', 'unet_repro.metrics'):\n"
            "    try: importlib.import_module(m)\n"
            "    except ModuleNotFoundError as e:\n"
            "        if e.name != m: raise\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_dependencies_point_one_way():
    """model, weights, loss, augment, data never import train/inference (training uses them, not the reverse)."""
    lower = ["model", "sizing", "weights", "loss", "augment", "data", "metrics", "results"]
    upper = ("train", "inference", "predict", "reproduce", "evaluate")
    for name in lower:
        path = ROOT / "unet_repro" / f"{name}.py"
        if not path.exists():
            continue
        src = path.read_text()
        for u in upper:
            assert not re.search(rf"(from\s+\.{u}\b|from\s+unet_repro\.{u}\b|import\s+unet_repro\.{u}\b)", src), (name, u)
