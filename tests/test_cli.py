"""Command lines: bad input gives one line ``error: <problem>; <fix>`` on stderr, exit status 2, no traceback.

The cases named in the project's bug reports run the command as a user would, in a subprocess
(``python -m unet_repro.<verb>``, and once the ``unet-repro`` entry point that ``pyproject.toml`` registers);
the rest of the command-line surface calls each module's ``main()`` in this process (the same code, without
paying a torch import per case). None of them trains or needs the ISBI data.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import tifffile

from unet_repro.cli import VERBS

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "UNET_REPRO_DEBUG": ""}


def _run(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, env=env or ENV, check=False)


def _verb(verb: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", f"unet_repro.{verb}", *args], cwd)


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Assert exit status 2 and exactly one stderr line ``error: <problem>; <fix>`` holding every needle."""
    return _check_error(proc.returncode, proc.stdout, proc.stderr, needles)


def _main_error(verb: str, argv: list[str], cwd: Path, capsys, monkeypatch, *needles: str) -> str:
    """The verb's ``main(argv)`` (``cli.VERBS``) in this process: the same checks as :func:`_one_line_error`."""
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("UNET_REPRO_DEBUG", raising=False)
    capsys.readouterr()
    try:
        rc = importlib.import_module(VERBS[verb][0]).main(argv)
    except SystemExit as exc:  # argparse exits itself
        rc = exc.code
    out, err = capsys.readouterr()
    return _check_error(rc, out, err, needles)


def _check_error(rc, out: str, err: str, needles) -> str:
    err = err.strip()
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and "; " in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert "weights_only" not in err  # never advise loading untrusted pickles
    return err


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A tiny model (depth 4, 2 channels), a uint8 stack, and the bad files of the cases below."""
    import torch

    from unet_repro.model.files import config_dict, save_model
    from unet_repro.model.unet import UNet
    from unet_repro.training.config import PROFILE_CONFIGS

    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    save_model(UNet(base_channels=2, depth=4), d / "model.pt")
    tifffile.imwrite(d / "x.tif", np.zeros((1, 200, 200), np.uint8))
    tifffile.imwrite(d / "f.tif", np.zeros((1, 200, 200), np.float32))
    (d / "garbage.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    (d / "text.tif").write_text("not an image\n")
    (d / "a_file").write_text("x\n")
    (d / "a_folder").mkdir()
    # a run folder of another configuration (8 base channels where the ci profile has 16)
    (d / "run8").mkdir()
    other = config_dict(PROFILE_CONFIGS["ci"]) | {"base_channels": 8}
    torch.save({"config": other, "iteration": 3}, d / "run8" / "checkpoint.pt")
    (d / "run_bad").mkdir()
    (d / "run_bad" / "checkpoint.pt").write_bytes(b"\x00garbage")
    return d


# ---- predict ---------------------------------------------------------------------------------------------

#: name: (arguments replacing the defaults, substrings of the message); the first ones were reported as
#: tracebacks and run in a subprocess, the rest in this process.
PREDICT_REPORTED = {
    "garbage model": (["--model", "garbage.pt"], ["garbage.pt", "not a model"]),
    "device gpu": (["--device", "gpu"], ["unknown device 'gpu'", "cpu"]),
    "output is a folder": (["--output", "a_folder"], ["a_folder is a folder", "give a file name"]),
    "batch size 0": (["--batch-size", "0"], ["--batch-size", ">= 1"]),
    "text file named .tif": (["--input", "text.tif"], ["text.tif", "not a readable TIFF", "TIFF"]),
    "tile 100": (["--tile", "100"], ["input size 100", "Nearest valid sizes"]),
}
PREDICT_MORE = {
    "missing model": (["--model", "nope.pt"], ["nope.pt", "train"]),
    "model is a folder": (["--model", "a_folder"], ["a_folder"]),
    "device cuda:x": (["--device", "cuda:x"], ["unknown device", "cuda:N"]),
    "output under a file": (["--output", "a_file/p.tif"], ["a_file is a file"]),
    "batch size not a number": (["--batch-size", "two"], ["--batch-size", "'two' is not a number"]),
    "threads 0": (["--threads", "0"], ["--threads", ">= 1"]),
    "tile -5": (["--tile", "-5"], ["--tile", ">= 1"]),
    "tta": (["--tta", "d8"], ["--tta", "invalid choice", "d4"]),
    "missing input": (["--input", "nope.tif"], ["nope.tif", "does not exist"]),
    "float input": (["--input", "f.tif"], ["f.tif", "uint8"]),
    "unknown option": (["--tiles", "3"], ["unrecognized arguments: --tiles", "--help"]),
}


def _predict_argv(extra: list[str]) -> list[str]:
    args = {"--model": "model.pt", "--input": "x.tif", "--output": "p.tif", "--no-progress": None}
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        args[flag] = value
    return [a for k, v in args.items() for a in ([k] if v is None else [k, v])]


@pytest.mark.parametrize("case", PREDICT_REPORTED)
def test_predict_reported_cases_are_one_line(files, case):
    extra, needles = PREDICT_REPORTED[case]
    _one_line_error(_verb("predict", *_predict_argv(extra), cwd=files), *needles)
    assert not (files / "p.tif").exists()


@pytest.mark.parametrize("case", PREDICT_MORE)
def test_predict_bad_input_is_one_line(files, case, capsys, monkeypatch):
    extra, needles = PREDICT_MORE[case]
    _main_error("predict", _predict_argv(extra), files, capsys, monkeypatch, *needles)
    assert not (files / "p.tif").exists()


def test_predict_missing_required_argument(files):
    _one_line_error(_verb("predict", "--model", "model.pt", cwd=files), "required", "--input", "--output", "--help")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_predict_cuda_without_cuda(files):
    proc = _verb("predict", *_predict_argv(["--device", "cuda"]), cwd=files)
    _one_line_error(proc, "no CUDA", "--device cpu")


def test_debug_variable_shows_the_traceback(files):
    """UNET_REPRO_DEBUG=1 keeps the traceback (for bug reports); without it, one line."""
    proc = _run(
        [sys.executable, "-m", "unet_repro.inference.command", *_predict_argv(["--model", "garbage.pt"])],
        files,
        env={**ENV, "UNET_REPRO_DEBUG": "1"},
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr


# ---- train (each fails before any data is loaded or any step is trained) -----------------------------------

TRAIN_REPORTED = {
    "tile 100": (["--tile", "100"], ["input size 100", "Nearest valid sizes"]),
    "out is a file": (["--out", "a_file"], ["a_file is a file", "give a folder"]),
    "resume another configuration": (
        ["--out", "run8", "--resume"],
        ["cannot resume", "base_channels", "another --out folder"],
    ),
}
TRAIN_MORE = {
    "out under a file": (["--out", "a_file/run"], ["a_file is a file"]),
    "resume a garbage checkpoint": (["--out", "run_bad", "--resume"], ["run_bad", "not a checkpoint"]),
    "profile": (["--profile", "gpu"], ["--profile", "invalid choice", "ci"]),
    "device gpu": (["--device", "gpu"], ["unknown device 'gpu'"]),
    "negative iterations": (["--iterations", "-1"], ["--iterations", ">= 0"]),
    "lr 0": (["--lr", "0"], ["--lr", "> 0"]),
    "lr nan": (["--lr", "nan"], ["--lr", "> 0"]),
    "lr not a number": (["--lr", "1e-3x"], ["--lr", "not a number"]),
    "base channels 0": (["--base-channels", "0"], ["--base-channels", ">= 1"]),
    "negative seed": (["--seed", "-3"], ["--seed", ">= 0"]),
    "optimizer": (["--optimizer", "rmsprop"], ["--optimizer", "invalid choice", "sgd"]),
    "cpu tile not a multiple of 16": (["--profile", "cpu", "--tile", "380"], ["input size 380", "'same'", "384"]),
}


def _train_argv(extra: list[str]) -> list[str]:
    return [*extra, "--no-progress"] if "--out" in extra else [*extra, "--out", "run_new", "--no-progress"]


@pytest.mark.parametrize("case", TRAIN_REPORTED)
def test_train_reported_cases_are_one_line(files, case):
    extra, needles = TRAIN_REPORTED[case]
    _one_line_error(_verb("train", *_train_argv(extra), cwd=files), *needles)
    assert not (files / "run_new").exists()


@pytest.mark.parametrize(
    ("profile", "tile", "expected"),
    [("cpu", "384", (384, 572)), ("cpu", "512", (512, 572)), ("ci", "380", (380, 380)), ("paper", "572", (572, 572))],
)
def test_train_tile_sets_the_evaluation_tile_as_the_padding_needs(profile, tile, expected, tmp_path, monkeypatch):
    """``--tile`` works for every profile: a valid-padding run predicts with tiles of the same side, a
    same-padding run (cpu) predicts a slice in one pass and keeps its evaluation tile."""
    from unet_repro.training import command as T

    seen = {}

    def fake_train(cfg, out, **kwargs):
        seen["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr(T, "train", fake_train)
    with pytest.raises(SystemExit):
        T.main(["--profile", profile, "--tile", tile, "--out", str(tmp_path / "run"), "--no-progress"])
    assert (seen["cfg"].tile, seen["cfg"].eval_tile) == expected


@pytest.mark.parametrize("case", TRAIN_MORE)
def test_train_bad_input_is_one_line(files, case, capsys, monkeypatch):
    extra, needles = TRAIN_MORE[case]
    _main_error("train", _train_argv(extra), files, capsys, monkeypatch, *needles)
    assert not (files / "run_new").exists()


def test_train_without_data_is_one_line(files, capsys, monkeypatch):
    """No ISBI data and no download: the data module's instructions, on one line."""
    from unet_repro.data import isbi2012 as data

    def no_data(*args, **kwargs):
        raise data.DownloadError(
            "could not download the ISBI 2012 data into /x.\ntrain-volume.tif:\n    offline\n"
            "Put the files there by hand."
        )

    monkeypatch.setattr(data, "load_isbi2012", no_data)
    _main_error(
        "train",
        _train_argv(["--iterations", "1", "--out", "run_nodata"]),
        files,
        capsys,
        monkeypatch,
        "could not download the ISBI 2012 data",
        "offline",
        "Put the files there",
        "UNET_REPRO_DATA",
    )


def test_a_bug_keeps_its_traceback(files, monkeypatch):
    """Only bad input becomes one line: an unexpected exception (a bug) is not hidden."""
    from unet_repro.data import isbi2012 as data

    def bug(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(data, "load_isbi2012", bug)
    monkeypatch.chdir(files)
    from unet_repro.training import command

    with pytest.raises(KeyError):
        command.main(_train_argv(["--iterations", "1", "--out", "run_nodata"]))


# ---- evaluate (imports no torch) ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seg(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("seg")
    lab = np.full((1, 64, 64), 255, np.uint8)
    lab[:, 30:33, :] = 0
    tifffile.imwrite(d / "l.tif", lab)
    tifffile.imwrite(d / "p.tif", (lab / 255).astype(np.float32))
    tifffile.imwrite(d / "p2.tif", np.zeros((2, 64, 64), np.float32))
    tifffile.imwrite(d / "big.tif", np.full((1, 64, 64), 2.0, np.float32))
    (d / "text.tif").write_text("not an image\n")
    return d


EVALUATE_REPORTED = {
    "shapes differ": (["p2.tif", "l.tif"], ["(2, 64, 64)", "(1, 64, 64)", "same shape"]),
    "text file named .tif": (["text.tif", "l.tif"], ["text.tif", "not a readable TIFF"]),
}
EVALUATE_MORE = {
    "missing proposal": (["nope.tif", "l.tif"], ["nope.tif", "does not exist"]),
    "missing labels": (["p.tif", "nope.tif"], ["nope.tif", "does not exist"]),
    "proposal outside [0, 1]": (["big.tif", "l.tif"], ["outside [0, 1]"]),
}


@pytest.mark.parametrize("case", EVALUATE_REPORTED)
def test_evaluate_reported_cases_are_one_line(seg, case):
    (prop, lab), needles = EVALUATE_REPORTED[case]
    _one_line_error(_verb("evaluate", "--proposal", prop, "--labels", lab, cwd=seg), *needles)


@pytest.mark.parametrize("case", EVALUATE_MORE)
def test_evaluate_bad_input_is_one_line(seg, case, capsys, monkeypatch):
    (prop, lab), needles = EVALUATE_MORE[case]
    _main_error("evaluate", ["--proposal", prop, "--labels", lab], seg, capsys, monkeypatch, *needles)


def test_evaluate_missing_argument(seg, capsys, monkeypatch):
    _main_error("evaluate", ["--proposal", "p.tif"], seg, capsys, monkeypatch, "required", "--labels")


def test_thresholds_print_as_written():
    from unet_repro.metrics.command import _fmt_threshold

    assert _fmt_threshold(0.59999999999999998) == "0.6"
    assert _fmt_threshold(0.1 * 3) == "0.3"
    assert _fmt_threshold(0.0) == "0" and _fmt_threshold(1.0) == "1"


@pytest.mark.slow
def test_evaluate_table_labels_errors_and_scores(seg):
    proc = _verb("evaluate", "--proposal", "p.tif", "--labels", "l.tif", cwd=seg)
    assert proc.returncode == 0, proc.stderr
    rows = {ln.split()[0]: ln for ln in proc.stdout.splitlines() if ln.strip()}
    for k in ("pixel_error", "warping_error", "rand_error"):
        assert rows[k].endswith("error (lower is better)"), rows[k]
    for k in ("v_rand", "v_info"):
        assert rows[k].endswith("score (higher is better)"), rows[k]
    assert "0000000" not in proc.stdout and "9999999" not in proc.stdout, proc.stdout


# ---- reproduce --------------------------------------------------------------------------------------------

REPRODUCE_REPORTED = {
    "unknown profile": (["--profile", "gpu"], ["--profile", "invalid choice", "paper"]),
    "unknown notebook": (["--only", "42"], ["--only", "42", "choose from 01"]),
}
REPRODUCE_MORE = {
    "notebook not a number": (["--only", "one"], ["--only", "one", "choose from"]),
    "missing notebooks folder": (["--notebooks", "/nonexistent/nb"], ["/nonexistent/nb is not a folder"]),
    "unknown kernel": (["--kernel", "no-such-kernel"], ["no-such-kernel", "python3"]),
    "build is a file": (["--build", "README.md"], ["README.md is a file", "--build"]),
    "results under a file": (["--results", "README.md/x"], ["README.md is a file", "--results"]),
}


@pytest.mark.parametrize("case", REPRODUCE_REPORTED)
def test_reproduce_reported_cases_are_one_line(case):
    extra, needles = REPRODUCE_REPORTED[case]
    _one_line_error(_verb("reproduce", *extra, "--no-write"), *needles)


@pytest.mark.parametrize("case", REPRODUCE_MORE)
def test_reproduce_bad_input_is_one_line(case, capsys, monkeypatch):
    extra, needles = REPRODUCE_MORE[case]
    _main_error("reproduce", [*extra, "--no-write"], ROOT, capsys, monkeypatch, *needles)


def test_reproduce_without_papermill_is_one_line(tmp_path, capsys, monkeypatch):
    """A missing optional dependency names the extra that brings it."""
    from unet_repro import reproduce

    def no_papermill(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'papermill'", name="papermill")

    monkeypatch.setattr(reproduce, "run_notebook", no_papermill)
    _main_error(
        "reproduce",
        ["--only", "01", "--no-write", "--build", str(tmp_path / "b")],
        ROOT,
        capsys,
        monkeypatch,
        "'papermill' is not installed",
        "pip install",
    )


# ---- the unet-repro command ----------------------------------------------------------------------------------


def _entry_point() -> Path:
    exe = Path(sys.executable).parent / ("unet-repro.exe" if os.name == "nt" else "unet-repro")
    assert exe.is_file(), f"{exe} missing: reinstall the package (pip install -e .) to get the console script"
    return exe


def test_entry_point_version_and_dispatch(files):
    exe = _entry_point()
    proc = _run([str(exe), "--version"], ROOT)
    assert proc.returncode == 0 and proc.stdout.strip() == f"unet-repro {version('unet-repro')}"
    # a verb runs the module's main(), with its own one-line errors and usage name
    proc = _run(
        [str(exe), "predict", "--model", "model.pt", "--input", "x.tif", "--output", "p.tif", "--device", "gpu"], files
    )
    _one_line_error(proc, "unknown device 'gpu'", "unet-repro predict --help")
    _one_line_error(_run([str(exe), "fit"], ROOT), "unknown command 'fit'", "train, predict, evaluate, reproduce")
    _one_line_error(_run([str(exe)], ROOT), "no command given")
    proc = _run([str(exe), "--help"], ROOT)
    assert proc.returncode == 0 and all(v in proc.stdout for v in ("train", "predict", "evaluate", "reproduce"))


@pytest.mark.parametrize("verb", [*VERBS, "cli"])
def test_every_verb_has_version(verb, capsys):
    try:
        rc = importlib.import_module(VERBS[verb][0] if verb in VERBS else f"unet_repro.{verb}").main(["--version"])
    except SystemExit as exc:  # argparse's version action exits
        rc = exc.code
    assert rc in (0, None)
    assert capsys.readouterr().out.strip() == f"unet-repro {version('unet-repro')}"
