"""Overlap-tile inference (Fig. 2), test-time augmentation and the predict command line."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from torch import nn

from unet_repro.data.isbi2012 import normalize_image
from unet_repro.device import resolve_device
from unet_repro.inference import tiling as I
from unet_repro.model.sizing import UNetConfig, output_size, tile_layout, valid_input_sizes
from unet_repro.model.unet import UNet


def _whole_image(model: nn.Module, image: np.ndarray, depth: int) -> np.ndarray:
    """Reference: one forward pass over the whole image, mirror-extended to a valid size (no tiling)."""
    h, w = image.shape

    def size(n: int) -> int:
        return next(s for s in valid_input_sizes(n, n + 200, depth) if output_size(s, depth) >= n)

    th, tw = size(h), size(w)
    b = (th - output_size(th, depth)) // 2
    canvas = np.pad(image, ((b, th - h - b), (b, tw - w - b)), mode="reflect")
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(canvas)[None, None]), dim=1)[0, 1]
    return probs[:h, :w].numpy()


@pytest.mark.parametrize("depth,tile,shape", [(2, 60, (70, 101)), (4, 220, (100, 77))])
def test_tiled_equals_whole_image(depth, tile, shape):
    torch.manual_seed(0)
    model = UNet(base_channels=4, depth=depth).eval()  # drop-out is off in eval mode
    image = np.random.default_rng(1).integers(0, 256, shape).astype(np.uint8)
    ys, _, _ = tile_layout(shape[0], tile, depth)
    assert len(ys) > 1  # the image really is cut into several tiles
    tiled = I.predict_proba(model, image, tile=tile)
    whole = _whole_image(model, normalize_image(image), depth)
    assert tiled.shape == shape and tiled.dtype == np.float32
    np.testing.assert_allclose(tiled, whole, atol=2e-5, rtol=0)
    # a larger tile (different layout) gives the same map: the seams are invisible
    bigger = I.predict_proba(model, image, tile=valid_input_sizes(tile + 1, tile + 100, depth)[1])
    np.testing.assert_allclose(bigger, tiled, atol=2e-5, rtol=0)


class _Identity(nn.Module):
    """A stand-in 'network' with valid-padding geometry: logit of cell = centre-cropped input * 4."""

    def __init__(self, depth: int = 2) -> None:
        super().__init__()
        self.config = UNetConfig(depth=depth)
        self.p = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        n = output_size(x.shape[-1], self.config.depth)
        b = (x.shape[-1] - n) // 2
        c = x[..., b : b + n, b : b + n] * 4.0 - 2.0
        return torch.cat([-c, c], dim=1) / 2


@pytest.mark.parametrize("tta", ["none", "rot4", "d4"])
def test_tta_inverts_every_transform(tta):
    image = np.random.default_rng(2).integers(0, 256, (45, 67)).astype(np.uint8)  # not square
    prob = I.predict_proba(_Identity(), image, tile=60, tta=tta)
    expected = 1.0 / (1.0 + np.exp(-(image / 255.0 * 4.0 - 2.0)))
    np.testing.assert_allclose(prob, expected, atol=1e-5)
    assert len(I.TTA_TRANSFORMS[tta]) == {"none": 1, "rot4": 4, "d4": 8}[tta]


def test_tta_averages_distinct_predictions():
    torch.manual_seed(0)
    model = UNet(base_channels=4, depth=2).eval()
    image = np.random.default_rng(3).integers(0, 256, (40, 40)).astype(np.uint8)
    p = [np.rot90(I.predict_proba(model, np.rot90(image, k), tile=60), -k) for k in range(4)]
    np.testing.assert_allclose(I.predict_proba(model, image, tile=60, tta="rot4"), np.mean(p, axis=0), atol=1e-5)
    assert np.abs(p[0] - p[1]).max() > 1e-4  # an untrained network is not rotation invariant


def test_bad_input_and_training_mode_restored():
    model = UNet(base_channels=2, depth=2)
    model.train()
    with pytest.raises(ValueError, match="2D"):
        I.predict_proba(model, np.zeros((2, 40, 40), np.uint8), tile=60)
    with pytest.raises(ValueError, match="tta"):
        I.predict_proba(model, np.zeros((40, 40), np.uint8), tile=60, tta="rot7")
    I.predict_proba(model, np.zeros((40, 40), np.uint8), tile=60)
    assert model.training


def test_predict_cli_writes_isbi_submission_format(tmp_path):
    from unet_repro.inference.command import main
    from unet_repro.model.files import load_model, save_model

    torch.manual_seed(0)
    model = UNet(base_channels=2, depth=2)
    save_model(model, tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert UNet(UNetConfig(**payload["model_config"])).config == model.config
    stack = np.random.default_rng(4).integers(0, 256, (2, 50, 70)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "x.tif", stack)
    rc = main(
        [
            "--model",
            str(tmp_path / "model.pt"),
            "--input",
            str(tmp_path / "x.tif"),
            "--output",
            str(tmp_path / "p.tif"),
            "--tile",
            "92",
            "--tta",
            "rot4",
            "--no-progress",
        ]
    )
    assert rc == 0
    out = tifffile.imread(tmp_path / "p.tif")
    assert out.dtype == np.float32 and out.shape == stack.shape
    assert 0.0 <= out.min() and out.max() <= 1.0
    expected = I.predict_stack(load_model(tmp_path / "model.pt"), stack, tile=92, tta="rot4")
    np.testing.assert_allclose(out, expected, atol=1e-6)
    tifffile.imwrite(tmp_path / "f.tif", stack.astype(np.float32))
    assert (
        main(
            [
                "--model",
                str(tmp_path / "model.pt"),
                "--input",
                str(tmp_path / "f.tif"),
                "--output",
                str(tmp_path / "q.tif"),
                "--no-progress",
            ]
        )
        == 2
    )


def test_module_docstring_layout_is_what_tile_layout_computes():
    """The overlap the docstring states (windows at 0 and 128, 260 px) is a doctest run against the code."""
    import doctest

    result = doctest.testmod(I, verbose=False)
    assert result.attempted >= 2 and result.failed == 0
    starts, out, _ = tile_layout(512, 572)
    assert f"at {starts[0]} and {starts[1]}" in I.__doc__ and f"by {out} - {starts[1]} = {out - starts[1]}" in I.__doc__


def test_resolve_device_names_the_problem_and_the_fix(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(torch.device("cpu")).type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu", "cuda:x", "cpu:0", "tpu"):
        with pytest.raises(ValueError, match=rf"--device {bad}: unknown device; use --device auto, cpu") as e:
            resolve_device(bad)
        assert "\n" not in str(e.value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match=r"no CUDA device is available here .*use --device cpu or auto"):
            resolve_device(name)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="1 CUDA device"):
        resolve_device("cuda:1")


def test_predict_does_not_import_training(tmp_path):
    """Prediction needs the model file, not the training module (nor its data and augmentation code)."""
    import subprocess
    import sys

    torch.manual_seed(0)
    from unet_repro.model.files import save_model

    save_model(UNet(base_channels=2, depth=2), tmp_path / "model.pt")
    tifffile.imwrite(tmp_path / "x.tif", np.zeros((1, 40, 40), np.uint8))
    code = (
        "import sys\n"
        "from unet_repro.inference.command import predict_file\n"
        f"predict_file({str(tmp_path / 'model.pt')!r}, {str(tmp_path / 'x.tif')!r}, "
        f"{str(tmp_path / 'p.tif')!r}, tile=92, device='cpu', progress=False)\n"
        "print(sorted(m for m in sys.modules if m.startswith('unet_repro')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = eval(out.strip().splitlines()[-1])
    assert "unet_repro.model.files" in loaded and "unet_repro.inference.tiling" in loaded  # the loader path ran
    training = {m for m in loaded if m.startswith(("unet_repro.training.", "unet_repro.augment", "unet_repro.loss"))}
    assert not training, loaded
