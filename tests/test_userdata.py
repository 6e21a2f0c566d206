"""A user's own 2D stack (``unet_repro.data.user``): reading, labels, grey values, split, tiles, the command line.

Every stack here is synthetic (Voronoi cells with one-pixel membranes, a few slices of 64x64 or 100x90),
written to ``tmp_path``; nothing needs the ISBI 2012 data. The command-line cases run
``python -m unet_repro.train`` (and ``predict``, ``evaluate``) in a subprocess, as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from unet_repro.data import user as U
from unet_repro.data.folders import write_png_folders
from unet_repro.data.protocol import PROTOCOL
from unet_repro.loss.weights import weight_maps
from unet_repro.training.config import profile_config
from unet_repro.training.tiles import TileSampler, prepare_data

ROOT = Path(__file__).resolve().parents[1]


def _stack(n: int = 6, h: int = 64, w: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uint8 images, 0/255 labels with membrane 0, int32 instances with 0 borders) of Voronoi cells."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    inst = np.empty((n, h, w), np.int32)
    for z in range(n):
        pts = rng.uniform([0, 0], [h, w], size=(8, 2))
        inst[z] = ((yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2).argmin(-1) + 1
    edge = np.zeros(inst.shape, bool)
    edge[:, :-1] |= inst[:, :-1] != inst[:, 1:]
    edge[:, :, :-1] |= inst[:, :, :-1] != inst[:, :, 1:]
    inst[edge] = 0
    binary = np.where(inst > 0, 255, 0).astype(np.uint8)
    image = np.clip(binary * 0.6 + 50 + rng.normal(0, 10, binary.shape), 0, 255).astype(np.uint8)
    return image, binary, inst


def _folder(path: Path, stack: np.ndarray, suffix: str = ".png") -> Path:
    """One file per slice, named 0..N-1 (the Keras U-Net layout: 0.png, 1.png, ..., 10.png)."""
    path.mkdir(parents=True)
    for i, s in enumerate(stack):
        if suffix == ".png":
            Image.fromarray(s).save(path / f"{i}{suffix}")
        else:
            tifffile.imwrite(path / f"{i}{suffix}", s, photometric="minisblack")
    return path


def _tif(path: Path, stack: np.ndarray) -> Path:
    tifffile.imwrite(path, stack, photometric="minisblack")
    return path


# ------------------------------------------------------------------------------------------------ reading
@pytest.mark.parametrize(
    ("layout", "shape"),
    [("png-folder", (12, 64, 64)), ("tif-folder", (6, 100, 90)), ("multipage", (6, 100, 90)), ("single", (1, 96, 80))],
)
def test_layouts_load_as_the_same_stack(tmp_path, layout, shape):
    image, binary, _ = _stack(*shape)
    if layout == "png-folder":
        imgs, labs = _folder(tmp_path / "image", image), _folder(tmp_path / "label", binary)
    elif layout == "tif-folder":
        imgs, labs = _folder(tmp_path / "image", image, ".tif"), _folder(tmp_path / "label", binary, ".tiff")
    elif layout == "multipage":
        imgs, labs = _tif(tmp_path / "i.tif", image), _tif(tmp_path / "l.tif", binary)
    else:
        Image.fromarray(image[0]).save(tmp_path / "i.png")
        imgs, labs = tmp_path / "i.png", _tif(tmp_path / "l.tif", binary[0])
    s = U.load_user_stack(imgs, labs)
    if layout == "single":  # one image: 6 horizontal strips of 16 rows, so it has train/validation/test blocks
        assert s.train_images.shape == (6, 16, 80) and s.record["data"]["single_image_strips"] == 6
        np.testing.assert_array_equal(s.train_images.reshape(96, 80), image[0])
        return
    np.testing.assert_array_equal(s.train_images, image)  # slice order: 2.png before 10.png
    np.testing.assert_array_equal(s.train_labels, binary)
    assert s.train_images.dtype == np.uint8 and s.instance_labels is None
    assert s.record["data"]["input_range"] == [0.0, 255.0]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_folders_read_back_as_the_same_stack(tmp_path, dtype):
    """write_png_folders (notebook 07's demo) writes what load_user_stack reads: 12 slices, so 10.png follows 9.png;
    a second call with fewer slices leaves only those."""
    image, binary, _ = _stack(12)
    image = image.astype(dtype) * (200 if dtype == np.uint16 else 1)
    imgs, labs = write_png_folders(image, binary, tmp_path / "membrane" / "train")
    assert (imgs.name, labs.name) == ("image", "label") and sorted(p.name for p in imgs.iterdir())[:3] == [
        "0.png",
        "1.png",
        "10.png",
    ]
    np.testing.assert_array_equal(U.read_stack(imgs), image)
    s = U.load_user_stack(imgs, labs)
    np.testing.assert_array_equal(s.train_labels, binary)
    assert s.record["data"]["input_dtype"] == np.dtype(dtype).name
    write_png_folders(image[:3], binary[:3], tmp_path / "membrane" / "train")
    assert len(list(imgs.iterdir())) == len(list(labs.iterdir())) == 3


def test_png_folders_refuse_what_png_cannot_keep(tmp_path):
    image, binary, _ = _stack(3)
    with pytest.raises(ValueError, match="8- or 16-bit"):
        write_png_folders(image.astype(np.float32), binary, tmp_path)
    with pytest.raises(ValueError, match="one shape"):
        write_png_folders(image, binary[:2], tmp_path)
    assert not (tmp_path / "image").exists()


@pytest.mark.parametrize("membrane_value", [0, 255, 1])
def test_binary_labels_either_polarity(tmp_path, membrane_value):
    image, binary, _ = _stack()
    cell = 0 if membrane_value else 255  # the other value
    lab = np.where(binary == 0, membrane_value, cell if membrane_value != 1 else 7).astype(np.uint8)
    s = U.load_user_stack(_tif(tmp_path / "i.tif", image), _tif(tmp_path / "l.tif", lab), membrane_value=membrane_value)
    np.testing.assert_array_equal(s.train_labels, binary)  # always stored as ISBI's 0 membrane / 255 cell


def test_instance_labels_give_eq2_borders_between_touching_cells(tmp_path, monkeypatch):
    """Two cells touching without a membrane: the binary mask sees one cell, the instances two, and the
    training weight maps (prepare_data) are those of the instances."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # weight-map cache goes to tmp
    image, _, inst = _stack()
    inst[:, 40:50, 20:30], inst[:, 40:50, 30:40] = 500, 501  # two cells touching along a column
    s = U.load_user_stack(_tif(tmp_path / "i.tif", image), _tif(tmp_path / "l.tif", inst), labels_kind="instance")
    np.testing.assert_array_equal(s.train_labels, np.where(inst > 0, 255, 0))
    cfg = s.configure(profile_config("ci", tile=572))
    _, _, weights = prepare_data(cfg, s)
    train = s.record["data"]["split"]["trained_on"]
    np.testing.assert_array_equal(weights, weight_maps(inst[train], instances=True))
    assert not np.array_equal(weights, weight_maps(s.train_labels[train]))


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int32])
def test_deep_and_float_images_are_mapped_to_8_bits_and_recorded(tmp_path, dtype):
    image, binary, _ = _stack()
    deep = (image.astype(np.float64) * 100 + 1000).astype(dtype)
    s = U.load_user_stack(_tif(tmp_path / "i.tif", deep), _tif(tmp_path / "l.tif", binary))
    lo, hi = s.record["data"]["input_range"]
    assert (lo, hi) == (float(deep.min()), float(deep.max()))
    want = np.rint((deep.astype(np.float64) - lo) * 255 / (hi - lo)).astype(np.uint8)
    np.testing.assert_array_equal(s.train_images, want)
    assert s.train_images.min() == 0 and s.train_images.max() == 255
    np.testing.assert_array_equal(U.to_uint8(deep, (lo, hi)), s.train_images)  # what predict applies


def test_grey_rgb_is_accepted_colour_refused(tmp_path):
    image, binary, _ = _stack()
    rgb = np.repeat(image[..., None], 3, axis=-1)
    grey = U.load_user_stack(_folder(tmp_path / "g", rgb), _folder(tmp_path / "l", binary))
    np.testing.assert_array_equal(grey.train_images, image)
    alpha = np.stack([image, np.full_like(image, 200)], axis=-1)  # grey + alpha (PNG mode LA): alpha ignored
    np.testing.assert_array_equal(U.load_user_stack(_folder(tmp_path / "a", alpha), tmp_path / "l").train_images, image)
    rgb[0, 0, 0, 1] ^= 1
    with pytest.raises(U.UserDataError, match="colour image whose channels differ"):
        U.load_user_stack(_folder(tmp_path / "c", rgb), tmp_path / "l")


# -------------------------------------------------------------------------------------------------- split
@pytest.mark.parametrize(
    ("n", "split", "blocks"),
    [(30, "blocks", (20, 5, 5)), (6, "blocks", (4, 1, 1)), (12, "blocks", (8, 2, 2)), (10, "blocks", (6, 2, 2)),
     (2, "blocks", (1, 0, 1)), (6, "3,2,1", (3, 2, 1)), (6, "5,0,1", (5, 0, 1))],
)  # fmt: skip
def test_split_contiguous_blocks(n, split, blocks):
    b = U.split_blocks(n, split)
    assert (len(b["train"]), len(b["validation"]), len(b["test"])) == blocks
    assert b["train"] + b["validation"] + b["test"] == list(range(n)) and b["trained_on"] == list(range(n - blocks[2]))
    if n == 30:  # ISBI's protocol exactly
        assert b["validation"] == PROTOCOL.validation_slices and b["test"] == PROTOCOL.test_slices
        assert b["trained_on"] == PROTOCOL.final_train_slices()


@pytest.mark.parametrize(("n", "split"), [(6, "3,2"), (6, "3,3,1"), (6, "6,0,0"), (6, "a,b,c"), (1, "blocks")])
def test_split_refuses_bad_counts(n, split):
    with pytest.raises(U.UserDataError, match="--split"):
        U.split_blocks(n, split)


# -------------------------------------------------------------------------------------------------- tiles
@pytest.mark.parametrize(("tile", "h", "w"), [(572, 40, 50), (204, 64, 64), (204, 10, 100)])
def test_tiles_of_slices_smaller_than_the_window_are_mirrored(tile, h, w):
    rng = np.random.default_rng(0)
    img = rng.random((2, h, w)).astype(np.float32)
    s = TileSampler(img, (img > 0.5).astype(np.int64), img, tile)
    for _ in range(10):
        i, y, x = s.position(rng)
        assert 0 <= y <= max(0, h - s.out) and 0 <= x <= max(0, w - s.out)
        t, lab, wt = s.crop(i, y, x)
        assert t.shape == lab.shape == wt.shape == (tile, tile)
        b = s.border
        np.testing.assert_array_equal(
            t[b : b + min(h, s.out), b : b + min(w, s.out)], img[i, y : y + s.out, x : x + s.out]
        )
        np.testing.assert_array_equal(lab, t > 0.5)  # labels mirrored exactly as the image
    if h < s.out:  # below the slice: its mirror image (Fig. 2)
        np.testing.assert_array_equal(s.crop(0, 0, 0)[0][b + h, b : b + w], img[0, h - 2, :])


# ------------------------------------------------------------------------------------------- command line
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "UNET_REPRO_DEBUG": ""}
SMALL = ["--profile", "ci", "--iterations", "2", "--base-channels", "2", "--tile", "204", "--threads", "1"]


def _run(verb: str, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", f"unet_repro.{verb}", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env or ENV, check=False)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["png-binary", "uint16-instance"])
def test_train_predict_evaluate_on_own_stack(tmp_path, case):
    env = {**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    image, binary, inst = _stack(6, 100, 90)
    if case == "png-binary":
        imgs, labs, extra = _folder(tmp_path / "image", image), _folder(tmp_path / "label", binary), []
    else:
        imgs = _tif(tmp_path / "i.tif", image.astype(np.uint16) * 200 + 3000)
        labs, extra = _tif(tmp_path / "l.tif", inst.astype(np.uint16)), ["--labels-kind", "instance"]
    run = tmp_path / "run"
    p = _run("train", *SMALL, "--images", str(imgs), "--labels", str(labs), *extra, "--out", str(run),
             "--no-progress", cwd=tmp_path, env=env)  # fmt: skip
    assert p.returncode == 0, p.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    data = metrics["data"]
    assert data["split"]["test"] == [5] and data["split"]["validation"] == [4] and metrics["heldout_slices"] == [5]
    assert data["labels_kind"] == case.split("-")[1] and data["input_dtype"] == str(
        tifffile.imread(run / "heldout_images.tif").dtype
    )
    import torch

    assert torch.load(run / "model.pt", weights_only=True)["data"] == data  # predict reads the scaling here
    p = _run("predict", "--model", str(run / "model.pt"), "--input", str(run / "heldout_images.tif"),
             "--output", str(tmp_path / "p.tif"), "--tile", "204", "--no-progress", cwd=tmp_path, env=env)  # fmt: skip
    assert p.returncode == 0, p.stderr
    prob = tifffile.imread(tmp_path / "p.tif")
    assert prob.size == 100 * 90 and prob.dtype == np.float32  # the one test slice
    heldout = tifffile.imread(run / "heldout_prob.tif").reshape(prob.shape)
    np.testing.assert_allclose(prob, heldout, atol=1e-5)  # predict maps the grey values as training did
    p = _run("evaluate", "--proposal", str(tmp_path / "p.tif"), "--labels", str(run / "heldout_labels.tif"), "--json",
             cwd=tmp_path, env=env)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["pixel_error"] == pytest.approx(metrics["heldout_pixel_error"], abs=1e-12)


def _bad(tmp: Path, case: str) -> tuple[list[str], str]:
    """The arguments of a bad-input case and a phrase its error line must hold."""
    image, binary, inst = _stack()
    imgs, labs = _tif(tmp / "i.tif", image), _tif(tmp / "l.tif", binary)
    if case == "count":
        return ["--images", str(imgs), "--labels", str(_tif(tmp / "l5.tif", binary[:5]))], "6 slice(s) but --labels 5"
    if case == "shape":
        return [
            "--images",
            str(imgs),
            "--labels",
            str(_tif(tmp / "ls.tif", binary[:, :, :60])),
        ], "give labels of the images' size"
    if case == "three-values":
        lab = binary.copy()
        lab[:, 0, 0] = 7
        return ["--images", str(imgs), "--labels", str(_tif(tmp / "l3.tif", lab))], "--labels-kind instance"
    if case == "one-value":
        return ["--images", str(imgs), "--labels", str(_tif(tmp / "l1.tif", binary * 0))], "one value"
    if case == "membrane-value":
        return ["--images", str(imgs), "--labels", str(labs), "--membrane-value", "3"], "pass --membrane-value 0 or 255"
    if case == "colour":
        rgb = np.repeat(image[..., None], 3, axis=-1)
        rgb[..., 0] //= 2
        return ["--images", str(_folder(tmp / "rgb", rgb)), "--labels", str(labs)], "convert it to grey values"
    if case == "empty-folder":
        (tmp / "empty").mkdir()
        return ["--images", str(tmp / "empty"), "--labels", str(labs)], "holds no TIFF or PNG image"
    if case == "non-image-file":
        folder = _folder(tmp / "img", image)
        (folder / "notes.txt").write_text("not a slice\n")
        return ["--images", str(folder), "--labels", str(labs)], "'notes.txt', not a TIFF or PNG"
    if case == "unreadable":
        (tmp / "broken.png").write_bytes(b"\x89PNG not really")
        return ["--images", str(tmp / "broken.png"), "--labels", str(labs)], "is not a readable TIFF or PNG"
    if case == "missing":
        return ["--images", str(tmp / "nowhere"), "--labels", str(labs)], "does not exist"
    if case == "labels-only":
        return ["--labels", str(labs)], "--labels was given without --images"
    if case == "split":
        return ["--images", str(imgs), "--labels", str(labs), "--split", "4,4,4"], "--split '4,4,4'"
    if case == "float-labels":
        return ["--images", str(imgs), "--labels", str(_tif(tmp / "lf.tif", binary.astype(np.float32)))], "integers"
    raise AssertionError(case)


BAD = ["count", "shape", "three-values", "one-value", "membrane-value", "colour", "empty-folder", "non-image-file",
       "unreadable", "missing", "labels-only", "split", "float-labels"]  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_2_and_no_run_folder(tmp_path, case):
    args, phrase = _bad(tmp_path, case)
    run = tmp_path / "run"
    p = _run("train", *SMALL, *args, "--out", str(run), "--no-progress", cwd=tmp_path)
    err = p.stderr.strip()
    assert p.returncode == 2, (p.returncode, err)
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "; " in err and "Traceback" not in err, err
    assert phrase in err, err
    assert "UNET_REPRO_DATA" not in err, err  # the ISBI advice does not apply to a user's stack
    assert not run.exists()
