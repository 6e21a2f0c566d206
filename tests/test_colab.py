"""Colab: one repository address and tag (pyproject.toml), used by every badge and install cell.

``[project.urls] Repository`` names the repository and ``v`` + ``project.version`` the release tag. The
notebooks' "Open in Colab" badges open the notebook at that tag, their install cells install the package
from it, and the README's badges and install line use the same address; these tests check that they agree
and that the install cell really installs a working package on a Colab-like runtime.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REPOSITORY = PROJECT["urls"]["Repository"]
TAG = "v" + PROJECT["version"]
OWNER_NAME = REPOSITORY.removeprefix("https://github.com/")
BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"


def colab_url(notebook: str) -> str:
    return f"https://colab.research.google.com/github/{OWNER_NAME}/blob/{TAG}/notebooks/{notebook}"


def install_cell(path: Path) -> str:
    """The source of the notebook's Colab install cell (the first code cell)."""
    code = [c.source for c in jupytext.read(path).cells if c.cell_type == "code"]
    assert code and '"google.colab" in sys.modules' in code[0], f"{path.name}: no Colab install cell"
    return code[0]


def install_constants(source: str) -> dict[str, str]:
    """The string constants the install cell assigns (``REPOSITORY, TAG = "...", "..."``)."""
    found = {}
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple)):
            continue
        if isinstance(node.targets[0], ast.Tuple):
            for t, v in zip(node.targets[0].elts, node.value.elts, strict=True):
                if isinstance(t, ast.Name) and isinstance(v, ast.Constant):
                    found[t.id] = v.value
    return found


def test_pyproject_names_a_github_repository_and_a_release_tag():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPOSITORY), REPOSITORY
    assert re.fullmatch(r"v\d+\.\d+\.\d+", TAG), TAG


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_badge_opens_this_notebook_at_the_release_tag(path):
    first = jupytext.read(path).cells[0].source
    assert f"[![Open In Colab]({BADGE_SVG})]({colab_url(path.stem + '.ipynb')})" in first


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_install_cell_pins_the_package_to_the_tag_without_jupyter_extras(path):
    source = install_cell(path)
    assert install_constants(source) == {"REPOSITORY": REPOSITORY, "TAG": TAG}
    assert 'f"unet-repro @ git+{REPOSITORY}@{TAG}"' in source, "install exactly the package at the tag"
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    for extra in ("[notebooks]", "[dev]", "jupyter", "ipykernel", "ipywidgets", "--upgrade", "-U"):
        assert extra not in code, f"{path.name}: the install cell must not install or upgrade {extra!r}"
    assert 'find_spec("unet_repro") is None' in source, "skip the install when the package already imports"


def test_readme_uses_the_same_address_and_tag():
    readme = (ROOT / "README.md").read_text()
    for path in SOURCES:
        assert colab_url(path.stem + ".ipynb") in readme, f"README: no Colab badge for {path.stem} at {TAG}"
    badges = re.findall(r"https://colab\.research\.google\.com/github/[^)\s]+", readme)
    assert badges and all(b.startswith(colab_url("")) for b in badges), badges
    repos = set(re.findall(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?(?=[/@)\s\"'`]|$)", readme))
    assert repos <= {OWNER_NAME}, f"README names other repository addresses: {repos - {OWNER_NAME}}"
    assert f'pip install "unet-repro @ git+{REPOSITORY}@{TAG}"' in readme


def _view_without_the_package(site: Path, view: Path) -> None:
    """Link every entry of ``site`` into ``view`` except this package and .pth files (Colab's preinstalls)."""
    view.mkdir()
    for entry in site.iterdir():
        if entry.name.startswith(("unet_repro", "__editable__", "_unet_repro")) or entry.suffix == ".pth":
            continue
        (view / entry.name).symlink_to(entry)


@pytest.mark.slow
def test_install_cell_installs_the_tagged_package_on_a_colab_like_runtime(tmp_path):
    """Run notebook 01's install cell as Colab would, then import the package.

    Colab ships torch, numpy, scipy, pandas, matplotlib and Jupyter; a fresh environment without them would
    download a multi-GB CUDA torch. So the stand-in runtime is a fresh virtual environment (no pip of its
    own) that sees this environment's site-packages, minus ``unet_repro`` itself, through a ``.pth`` file
    pointing at a folder of links: what the install cell adds on top of that is what it adds on Colab.
    ``google.colab`` is a stand-in module imported before the cell runs (Colab's kernel has it loaded).
    The repository is a temporary clone of this checkout's last commit, tagged with the release tag and
    addressed by a ``file://`` URL in place of the GitHub address. About 30-60 s (pip builds a wheel).
    """
    import site
    import sysconfig

    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "tag", "-f", TAG], check=True)  # a clone may carry the tag already

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    venv_site = Path(
        subprocess.run(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    ours = Path(sysconfig.get_paths()["purelib"])
    assert ours in map(Path, site.getsitepackages() + [sysconfig.get_paths()["purelib"]])
    view = tmp_path / "preinstalled"
    _view_without_the_package(ours, view)
    (venv_site / "colab_preinstalled.pth").write_text(f"{view}\n")

    fake = tmp_path / "fake_colab"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab\'s module."""\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env |= {"PYTHONPATH": str(fake), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    def run(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([py, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    before = run("import importlib.util; print(importlib.util.find_spec('unet_repro'))")
    assert before.returncode == 0 and before.stdout.strip() == "None", before.stdout + before.stderr

    cell = install_cell(SOURCES[0])
    assert cell.count(f'"{REPOSITORY}"') == 1
    local = cell.replace(f'"{REPOSITORY}"', f'"file://{repo}"')
    first = run("import google.colab\n" + local)
    assert first.returncode == 0, first.stdout + first.stderr

    after = run("import unet_repro, unet_repro.model.unet, unet_repro.metrics; print(unet_repro.__file__)")
    assert after.returncode == 0, after.stdout + after.stderr
    assert Path(after.stdout.strip()).is_relative_to(venv_site), after.stdout
    # a second run finds the package and installs nothing (a bogus address would fail if it tried)
    again = run("import google.colab\n" + local.replace(f"file://{repo}", f"file://{tmp_path / 'nowhere'}"))
    assert again.returncode == 0, again.stdout + again.stderr


def test_progress_bars_are_off_when_asked(monkeypatch):
    from unet_repro.training import runs

    monkeypatch.delenv(runs.PROGRESS_ENV, raising=False)
    assert runs.progress_enabled()
    monkeypatch.setenv(runs.PROGRESS_ENV, "0")
    assert not runs.progress_enabled()


def test_run_folder_outside_colab_ignores_drive(tmp_path, monkeypatch):
    from unet_repro.training import runs

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert runs.run_folder("ci", tmp_path / "r", drive=True) == tmp_path / "r" and (tmp_path / "r").is_dir()


def test_run_folder_on_colab_mounts_drive(tmp_path, monkeypatch):
    """With drive=True on Colab the folder lives under MyDrive of the mounted Drive."""
    import types

    from unet_repro.training import runs

    mounted = []
    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    sys.modules["google"].colab = colab
    monkeypatch.setattr(runs, "DRIVE_MOUNT", tmp_path / "drive")
    folder = runs.run_folder("ci", "", drive=True)
    assert mounted == [str(tmp_path / "drive")]
    assert folder == tmp_path / "drive" / "MyDrive" / "unet-repro" / "runs" / "ci" and folder.is_dir()


def test_ensure_run_trains_only_when_the_run_is_missing(tmp_path, monkeypatch):
    from unet_repro.training import loop as train
    from unet_repro.training import runs

    calls = []

    def fake_train(cfg, out, resume=False, device="auto", progress=True, **kw):
        calls.append((cfg.profile, Path(out), resume, progress))
        (Path(out) / "heldout_prob.tif").write_bytes(b"")

    monkeypatch.setattr(train, "train", fake_train)
    monkeypatch.setenv(runs.PROGRESS_ENV, "0")
    prob = runs.ensure_run("ci", tmp_path)
    assert prob == tmp_path / "heldout_prob.tif" and calls == [("ci", tmp_path, True, False)]
    assert runs.ensure_run("ci", tmp_path) == prob and len(calls) == 1, "an existing run is used as it is"

    monkeypatch.setattr(train, "train", lambda *a, **k: None)
    with pytest.raises(RuntimeError, match="heldout_prob.tif"):
        runs.ensure_run("ci", tmp_path / "empty")


def test_ensure_run_refuses_a_run_of_another_configuration(tmp_path):
    """A finished run left by an older profile (another learning rate) is never scored as this profile's run."""
    import dataclasses

    from unet_repro.model.files import save_model
    from unet_repro.model.unet import UNet
    from unet_repro.training import runs
    from unet_repro.training.config import profile_config

    cfg = profile_config("ci")
    (tmp_path / "heldout_prob.tif").write_bytes(b"")
    (tmp_path / "metrics.json").write_text("{}")
    save_model(UNet(cfg.model_config()), tmp_path / "model.pt", cfg)
    assert runs.ensure_run("ci", tmp_path) == tmp_path / "heldout_prob.tif"
    save_model(UNet(cfg.model_config()), tmp_path / "model.pt", dataclasses.replace(cfg, lr=cfg.lr * 10))
    with pytest.raises(ValueError, match="another configuration than profile 'ci'"):
        runs.ensure_run("ci", tmp_path)
