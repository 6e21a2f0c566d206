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


def _requirements(project: dict) -> dict[str, str]:
    """name -> version spec of the runtime dependencies and the dev extra, with the extras it names
    (``unet-repro[notebooks,...]``); markers dropped."""
    extras = project["optional-dependencies"]
    reqs, todo, seen = list(project["dependencies"]), ["dev"], set()
    while todo:
        extra = todo.pop()
        seen.add(extra)
        for r in extras[extra]:
            m = re.match(r"unet-repro\[(.*)\]", r)
            if m:
                todo += [e.strip() for e in m.group(1).split(",") if e.strip() not in seen]
            else:
                reqs.append(r)
    return dict(_split(r.split(";")[0]) for r in reqs)


def test_environment_mirrors_pyproject():
    """conda-forge provides every dependency, the Jupyter stack and the test tools; pip only the package."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda, pip_section = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_section += dep["pip"]
        else:
            conda.append(dep)
    conda_deps = dict(_split(d) for d in conda if not re.match(r"(python|pip)\b", d))
    assert conda_deps == {CONDA_NAMES.get(k, k): v for k, v in _requirements(project).items()}
    for name in ("jupyterlab", "papermill", "ipykernel", "jupytext", "ipywidgets", "pytest", "pyyaml"):
        assert name in conda_deps, name
    assert pip_section == ["-e ."]
    python = next(d for d in conda if re.match(r"python\b", d))
    assert python.replace("python", "") == project["requires-python"]


def test_license_matches_pyproject():
    """An SPDX license string (setuptools >= 77 warns about the table form) and the file it names."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["license"] == "MIT"
    assert "setuptools>=77" in pyproject["build-system"]["requires"]  # the first to read the SPDX form
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the unet-repro authors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_console_script_is_registered():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"unet-repro": "unet_repro.cli:main"}


def test_default_install_needs_no_compiler():
    """elasticdeform (built from source: a C compiler) is only the augmentation benchmark's baseline: it is
    installed by `make benchmarks`, never by the default install; the Makefile reads nothing beside the repo."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "elasticdeform" not in _requirements(project)
    make = (ROOT / "Makefile").read_text()
    rules = {}
    for block in re.split(r"\n(?=\S)", make):
        head, _, body = block.partition("\n")
        if ":" in head and not head.startswith(("#", ".PHONY")) and "=" not in head.split(":")[0]:
            rules[head.split(":")[0].strip()] = body
    assert "elasticdeform" not in rules["$(VENV)/.installed"]
    assert "elasticdeform" in rules["$(VENV)/.benchmarks"]
    assert "$(VENV)/.benchmarks" in next(ln for ln in make.splitlines() if ln.startswith("benchmarks:"))
    for target in ("test", "test-fast", "reproduce"):
        assert "$(VENV)/.installed" in next(ln for ln in make.splitlines() if ln.startswith(f"{target}:")), target
    assert "shared" not in re.sub(r"#.*", "", make)  # only .ci/run points at ../shared
    assert re.search(r"^TORCH \?= torch==", make, re.MULTILINE) and re.search(r"^TORCH_INDEX \?=", make, re.MULTILINE)


def _readme_test_command() -> str:
    """The README's test command: the `make test` line of its "Two commands" block."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    line = next(ln for ln in block.splitlines() if "the test suite" in ln)
    return line.split("#", 1)[0].strip()


def test_github_workflow_runs_the_readme_test_command():
    """.github/workflows/ci.yml: push and pull request, CPU ubuntu, Python 3.11 with the pip cache, the data
    cache kept between runs, the README's test command, the executed notebooks uploaded as artifacts."""
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    (job,) = wf["jobs"].values()
    assert job["runs-on"].startswith("ubuntu")
    assert job["env"]["TORCH_INDEX"] == "https://download.pytorch.org/whl/cpu"  # the CPU-only wheel
    steps = job["steps"]

    def step(action: str) -> dict:
        found = [s for s in steps if s.get("uses", "").split("@")[0] == action]
        assert len(found) == 1, action
        return found[0]

    py = step("actions/setup-python")["with"]
    assert str(py["python-version"]) == "3.11" and py["cache"] == "pip"
    cache = step("actions/cache")["with"]
    assert cache["path"] == "~/.cache/unet-repro" and cache["key"] and cache["restore-keys"]
    runs = [s["run"].strip() for s in steps if "run" in s]
    assert runs == [_readme_test_command()] == ["make test"]
    upload = step("actions/upload-artifact")
    assert upload["if"] == "always()"
    assert "results/notebooks/" in upload["with"]["path"].split()
    order = [s.get("uses", "").split("@")[0] or "run" for s in steps]
    assert order.index("actions/cache") < order.index("run") < order.index("actions/upload-artifact")
