"""``unet-repro export --format bioimageio``: a BioImage Model Zoo package that validates and passes its own test.

Offline: bioimageio.spec checks that the URLs of a description answer (``git_repo``, the arXiv link) when
``perform_io_checks`` is on. The tests keep those checks on, since they also verify the package's own files and
hashes, and point ``HTTP_PROXY``/``HTTPS_PROXY`` at a closed local port, so that each URL check fails at once
(bioimageio.spec logs it at info level; it is no error) and no test touches the network.
``BIOIMAGEIO_CACHE_PATH`` points into the test's own folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


@pytest.fixture
def offline(tmp_path, monkeypatch):
    for key, value in {**OFFLINE, "BIOIMAGEIO_CACHE_PATH": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(key, value)
    return {**os.environ}


@pytest.fixture(params=["valid", "same"])
def tiny(tmp_path, request):
    """A depth-2 U-Net whose P(cell) varies (a fresh one, biases 0, predicts about 0.5), and an image; valid
    padding as the paper's, or same padding with bilinear up-sampling as the shipped cpu model's."""
    import tifffile

    from unet_repro.model.files import save_model
    from unet_repro.model.unet import UNet

    torch.manual_seed(0)
    same = {"padding": "same", "upsampling": "bilinear"} if request.param == "same" else {}
    model = UNet(base_channels=2, depth=2, **same)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.05)
        model.head.weight.mul_(3.0)
    path = save_model(model, tmp_path / "model.pt")
    image = np.random.default_rng(0).integers(0, 256, (2, 140, 150), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "image.tif", image)
    return path, tmp_path / "image.tif"


def _export(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**(env or os.environ), **OFFLINE, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "unet_repro.export", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_depth_2_sizes_are_44_plus_4n_and_lose_40():
    from unet_repro.inference.export import _geometry
    from unet_repro.model.sizing import UNetConfig

    assert _geometry(UNetConfig(depth=2), 140) == (44, 4, 40, 104)
    assert _geometry(UNetConfig(), 512) == (188, 16, 184, 252)


def test_package_validates_and_passes_bioimageio_core_test(tiny, offline, tmp_path):
    pytest.importorskip("bioimageio.core", reason='the export extra is not installed: pip install "unet-repro[export]"')
    import bioimageio.core
    import bioimageio.spec
    import tifffile
    import yaml

    from unet_repro.inference.export import export_bioimageio
    from unet_repro.inference.tiling import predict_proba
    from unet_repro.model.files import load_model

    model, image = tiny
    valid = load_model(model).config.padding == "valid"
    out = tmp_path / "zoo"
    measured = export_bioimageio(model, out, tifffile.imread(image)[0], test=False)
    assert measured["torchscript"] < 1e-5 and measured["pytorch_state_dict"] < 1e-5, measured
    assert measured["shifted"] > 1e-3  # off the pooling grid the map differs: the card says by how much

    descr = bioimageio.spec.load_description(out / "rdf.yaml")
    assert descr.validation_summary.status != "failed", descr.validation_summary.format()
    rdf = yaml.safe_load((out / "rdf.yaml").read_text())
    assert rdf["format_version"].startswith("0.5") and rdf["license"] == "MIT"
    assert set(rdf["weights"]) == {"torchscript", "pytorch_state_dict"}
    space = rdf["inputs"][0]["axes"][2]
    assert space["size"] == ({"min": 44, "step": 4} if valid else {"min": 4, "step": 4})
    assert rdf["outputs"][0]["axes"][2]["size"]["offset"] == (-40 if valid else 0)
    assert rdf["weights"]["pytorch_state_dict"]["architecture"]["callable"] == "CellProbability"
    assert "10.1007/978-3-319-24574-4_28" in {c.get("doi") for c in rdf["cite"]}

    summary = bioimageio.core.test_model(out / "rdf.yaml", devices=["cpu"])
    assert summary.status == "passed", summary.format()

    x = np.load(out / "test_input.npy")[0, 0]
    expected = np.load(out / "test_output.npy")[0, 0]
    if not valid:  # same padding: no context beyond the input, so the crop's own one-pass prediction
        assert x.shape == (64, 64) and expected.shape == (64, 64) and expected.std() > 0.01
        ours = predict_proba(load_model(model), x.astype(np.uint8), tile=48)
        assert np.abs(ours - expected).max() < 1e-5
        return
    assert x.shape == (104, 104) and expected.shape == (64, 64) and expected.std() > 0.01
    ours = predict_proba(load_model(model), tifffile.imread(image)[0], tile=48)
    # the expected output is our own prediction of the whole image, at the crop's window
    found = [
        (y, z)
        for y in range(0, 140 - 104 + 1)
        for z in range(0, 150 - 104 + 1)
        if np.array_equal(tifffile.imread(image)[0][y : y + 104, z : z + 104], x)
    ]
    (y, z) = found[0]
    assert np.abs(ours[y + 20 : y + 84, z + 20 : z + 84] - expected).max() < 1e-5
    assert "## Validation" in (out / "README.md").read_text()


def test_command_line_writes_a_tested_package(tiny, tmp_path, offline):
    pytest.importorskip("bioimageio.core", reason='the export extra is not installed: pip install "unet-repro[export]"')
    model, image = tiny
    proc = _export(
        ["--model", str(model), "--format", "bioimageio", "--image", str(image), str(tmp_path / "z")], offline
    )
    assert proc.returncode == 0, proc.stderr
    assert "validated and tested" in proc.stdout
    assert (tmp_path / "z" / "rdf.yaml").is_file() and (tmp_path / "z" / "weights_torchscript.pt").is_file()


def _one_line(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and ";" in lines[0], proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_missing_model_is_one_line(tmp_path):
    _one_line(_export(["--model", str(tmp_path / "no.pt"), "--format", "bioimageio", str(tmp_path / "z")]), "no.pt")


def test_out_not_empty_is_one_line(tiny, tmp_path):
    model, image = tiny
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "x").write_text("x")
    proc = _export(["--model", str(model), "--format", "bioimageio", "--image", str(image), str(tmp_path / "z")])
    _one_line(proc, "not an empty folder")


def test_unknown_format_is_one_line(tiny, tmp_path):
    model, _ = tiny
    _one_line(_export(["--model", str(model), "--format", "onnx", str(tmp_path / "z")]), "onnx", "bioimageio")


def test_missing_extra_is_one_line(tiny, tmp_path):
    """bioimageio.spec made unimportable (``sys.modules[name] = None``): the error names the extra to install."""
    model, image = tiny
    code = (
        "import sys; sys.modules['bioimageio'] = None; sys.modules['bioimageio.core'] = None; "
        "from unet_repro.inference.export import main; raise SystemExit(main(sys.argv[1:]))"
    )
    args = ["--model", str(model), "--format", "bioimageio", "--image", str(image), str(tmp_path / "z")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)
    _one_line(proc, 'pip install "unet-repro[export]"')
    assert not (tmp_path / "z").exists()
