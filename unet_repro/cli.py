"""The ``unet-repro`` command and what every command line of the package shares.

``unet-repro train|predict|evaluate|reproduce|sweep|export [options]`` runs the verb's ``main()`` (:data:`VERBS`,
the same as ``python -m unet_repro.<verb>``); ``unet-repro --version`` prints the installed version. Every command
line reports bad input as one line on stderr, ``error: <problem>; <fix>``, with exit status 2 and no
traceback (CONTRIBUTING.md, "Bad input gives an error that says what is wrong and how to fix it").
Set ``UNET_REPRO_DEBUG=1`` to see the traceback instead. This module imports no torch at import time
(``evaluate`` must run without it).
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import pickle
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

__all__ = [
    "EXPECTED",
    "VERBS",
    "OneLineParser",
    "command_parser",
    "device_name",
    "guarded",
    "main",
    "nonnegative_int",
    "one_line",
    "output_file",
    "output_folder",
    "positive_float",
    "positive_int",
    "version",
]

#: verb -> (module, one-line description)
VERBS: dict[str, tuple[str, str]] = {
    "train": ("unet_repro.training.command", "train a U-Net on ISBI 2012 or your own stack (section 3 of the paper)"),
    "predict": ("unet_repro.inference.command", "overlap-tile prediction of a TIFF (Fig. 2) -> float32 TIFF, 1 = cell"),
    "evaluate": ("unet_repro.metrics.command", "ISBI 2012 metrics of a segmentation against labels (no torch)"),
    "reproduce": ("unet_repro.reproduce", "run the notebooks with papermill and check results/"),
    "sweep": ("unet_repro.study.sweep", "a grid of training runs x seeds, locally or on a Dask cluster"),
    "export": ("unet_repro.inference.export", "a trained model as a BioImage Model Zoo package (bioimage.io spec 0.5)"),
}

#: Exceptions that mean bad input (a file, a number, a configuration), reported as one line.
EXPECTED: tuple[type[BaseException], ...] = (
    ValueError,
    OSError,
    FloatingPointError,
    ImportError,
    pickle.UnpicklingError,
)


def version() -> str:
    """The installed package's version (``importlib.metadata``), or the source's when not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    try:
        return _version("unet-repro")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        from . import __version__

        return __version__


def one_line(message: str) -> str:
    """``message`` with its whitespace (newlines included) collapsed to single spaces."""
    return " ".join(str(message).split())


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, ``error: <problem>; <fix>``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        """argparse's hook for bad arguments: one line, exit status 2."""
        self.exit(2, f"error: {one_line(message)}; see `{self.prog} --help`\n")


def command_parser(prog: str, description: str) -> OneLineParser:
    """A parser for one command line, with ``--version``."""
    p = OneLineParser(prog=prog, description=description)
    p.add_argument("--version", action="version", version=f"unet-repro {version()}")
    return p


# ---- argparse types: each raises ArgumentTypeError with the problem and the fix -----------------------


def _number(kind: type, text: str, ok: Callable[[float], bool], need: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give {need}") from None
    if math.isnan(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"{text} is out of range; give {need}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (batch sizes, channel counts, threads)."""
    return int(_number(int, text, lambda v: v >= 1, "a whole number >= 1"))


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (iterations, seeds)."""
    return int(_number(int, text, lambda v: v >= 0, "a whole number >= 0"))


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates)."""
    return float(_number(float, text, lambda v: 0 < v < float("inf"), "a number > 0, e.g. 0.001"))


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def device_name(text: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, checked against what this machine has."""
    name = text.strip().lower()
    if not _DEVICE.match(name):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu, cuda, cuda:N or mps")
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(
                f"{name} was asked for but this machine has no CUDA GPU (or torch was built without CUDA); "
                "use --device cpu or --device auto"
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise argparse.ArgumentTypeError(f"{name}: only {count} CUDA device(s) here; use cuda:0..cuda:{count - 1}")
    if name == "mps":
        import torch

        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise argparse.ArgumentTypeError("mps was asked for but is not available here; use --device cpu or auto")
    return name


def output_file(text: str) -> str:
    """A file to write: not an existing folder, and its parent is not a file."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder; give a file name, e.g. {path / 'prob.tif'}")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"{parent} is a file, so {path} cannot be written; give another path")
    return text


def output_folder(text: str) -> str:
    """A folder to write into: absent (it is created) or a folder, never a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a file, not a folder; give a folder (it is created if missing)")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(
                f"{parent} is a file, so folder {path} cannot be created; give another path"
            )
    return text


# ---- exceptions -> one line ------------------------------------------------------------------------------


def _message(exc: BaseException) -> str:
    if isinstance(exc, ModuleNotFoundError):
        return (
            f"the module {exc.name!r} is not installed; install the package with its extras: "
            'pip install -e ".[dev]" (or ".[notebooks]")'
        )
    if isinstance(exc, pickle.UnpicklingError):  # torch.load of a file that is not a checkpoint
        return (
            "a file given is not a PyTorch checkpoint written by unet_repro.training.loop; "
            "give the model.pt (or checkpoint.pt) a training run wrote"
        )
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        fix = {
            FileNotFoundError: "check the path",
            IsADirectoryError: "give a file, not a folder",
            NotADirectoryError: "a part of the path is a file; give another path",
            PermissionError: "choose a path you may read/write",
        }.get(type(exc), "check the path and the disk")
        return f"{exc.strerror}: {exc.filename}; {fix}"
    text = one_line(str(exc)) or type(exc).__name__
    if _is_data_error(exc) and ";" not in text:
        text += "; set UNET_REPRO_DATA to a folder holding the ISBI 2012 files (README, data)"
    if ";" not in text and isinstance(exc, FileNotFoundError):
        text += "; check the path"
    return text


def guarded(body: Callable[[], int]) -> int:
    """Run a command's body; bad input (:data:`EXPECTED`) becomes one line on stderr and exit status 2.

    So do missing or damaged ISBI 2012 data (:class:`unet_repro.data.isbi2012.DataError`, its instructions on the
    same line). Anything else (a bug) keeps its traceback. ``UNET_REPRO_DEBUG=1`` re-raises everything.

    Args:
        body: the command, returning its exit status.

    Returns:
        The exit status (2 on bad input).
    """
    try:
        return body()
    except SystemExit as exc:
        if isinstance(exc.code, str) and not os.environ.get("UNET_REPRO_DEBUG"):
            print(f"error: {one_line(exc.code)}", file=sys.stderr)
            return 2
        raise
    except Exception as exc:
        if os.environ.get("UNET_REPRO_DEBUG") or not (isinstance(exc, EXPECTED) or _is_data_error(exc)):
            raise
        if isinstance(exc, ImportError) and (exc.name or "").startswith("unet_repro"):
            raise  # the package itself is broken: a bug, not a missing extra
        print(f"error: {_message(exc)}", file=sys.stderr)
        return 2


def _is_data_error(exc: BaseException) -> bool:
    """The ISBI 2012 data is missing, damaged or not downloadable (:class:`unet_repro.data.isbi2012.DataError`)."""
    data = sys.modules.get("unet_repro.data.isbi2012")
    return data is not None and isinstance(exc, data.DataError)


# ---- the unet-repro command --------------------------------------------------------------------------------


def _usage() -> str:
    verbs = "\n".join(f"  {v:<10} {d}" for v, (_, d) in VERBS.items())
    return (
        f"usage: unet-repro {{{','.join(VERBS)}}} [options]   (unet-repro VERB --help for its options)\n\n"
        f"{verbs}\n\n  --version  print the version and exit\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``unet-repro``: dispatch to the verb's ``main`` (:data:`VERBS`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(
            f"error: no command given; use unet-repro {{{','.join(VERBS)}}} [options] (unet-repro --help)",
            file=sys.stderr,
        )
        return 2
    if args[0] in ("-h", "--help"):
        sys.stdout.write(_usage())
        return 0
    if args[0] in ("--version", "-V"):
        print(f"unet-repro {version()}")
        return 0
    verb = args[0]
    if verb not in VERBS:
        print(f"error: unknown command {verb!r}; use one of {', '.join(VERBS)} (unet-repro --help)", file=sys.stderr)
        return 2
    module = importlib.import_module(VERBS[verb][0])
    return int(module.main(args[1:], prog=f"unet-repro {verb}") or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
