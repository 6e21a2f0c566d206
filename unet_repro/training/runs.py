"""Where a notebook finds its training run, on a checkout, under papermill and on Colab.

Notebook 04 trains a profile into a run folder (``unet_repro.results.run_dir``); notebook 05 scores the
``heldout_prob.tif`` it finds there. On a fresh runtime (Colab, a new clone) that file is missing, so
:func:`ensure_run` trains the profile first instead of failing. On Colab a long run can live on Google
Drive (:func:`run_folder` with ``drive=True``), so a disconnect loses nothing: training resumes from the
run folder's checkpoint. Progress bars use ``tqdm.auto`` (a widget in Colab and JupyterLab, text in a
terminal) and stay off under ``python -m unet_repro.reproduce`` (:func:`progress_enabled`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..results import run_dir

__all__ = ["PROGRESS_ENV", "DRIVE_MOUNT", "in_colab", "progress_enabled", "run_folder", "ensure_run"]

#: Set to ``0`` (as the papermill reproduction does) to silence progress bars in notebooks.
PROGRESS_ENV = "UNET_REPRO_PROGRESS"
#: Where Colab mounts Google Drive.
DRIVE_MOUNT = Path("/content/drive")


def in_colab() -> bool:
    """True inside a Google Colab runtime (its ``google.colab`` module is loaded)."""
    return "google.colab" in sys.modules


def progress_enabled() -> bool:
    """Whether notebooks show progress bars: yes unless ``$UNET_REPRO_PROGRESS`` is ``0``."""
    return os.environ.get(PROGRESS_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def run_folder(profile: str, run_path: str | os.PathLike = "", drive: bool = False) -> Path:
    """The training run folder of a notebook, created.

    Args:
        profile: the profile (``ci``, ``cpu``, ``paper``).
        run_path: an explicit folder; empty means :func:`unet_repro.results.run_dir` (``build/runs/<profile>``).
            A relative path with ``drive=True`` is taken inside ``MyDrive``.
        drive: on Colab, mount Google Drive first and keep the run there (default folder
            ``MyDrive/unet-repro/runs/<profile>``). Ignored outside Colab.

    Returns:
        The folder.
    """
    if drive and in_colab():
        from google.colab import drive as gdrive  # type: ignore[import-not-found]

        gdrive.mount(str(DRIVE_MOUNT))
        base = DRIVE_MOUNT / "MyDrive"
        path = base / (run_path or Path("unet-repro") / "runs" / profile)
    else:
        path = Path(run_path) if run_path else run_dir(profile)
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_run(profile: str, folder: str | os.PathLike, device: str = "auto", progress: bool | None = None) -> Path:
    """Make sure ``folder`` holds a run's ``heldout_prob.tif``; train ``profile`` into it when it does not.

    A finished run of exactly this profile that notebook 04 (or ``python -m unet_repro.train``) left there is
    used as it is (a run of another configuration is refused, never scored in its place); a partial one resumes
    from its checkpoint.

    Args:
        profile: the profile to train when no run is found.
        folder: the run folder.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        progress: show a progress bar (default: :func:`progress_enabled`).

    Returns:
        The path of ``heldout_prob.tif``.
    """
    from .checkpoint import is_finished_run
    from .config import profile_config
    from .loop import train

    folder = Path(folder)
    prob = folder / "heldout_prob.tif"
    if prob.is_file():
        if (folder / "model.pt").is_file() and not is_finished_run(profile_config(profile), folder):
            raise ValueError(
                f"{folder} holds a run of another configuration than profile {profile!r} (a profile changed, or "
                "the run was trained with other options); delete that folder to train the profile again, or point "
                "run_path at a run of this profile"
            )
        return prob

    print(f"no run in {folder}: training profile {profile!r} first (what notebook 04 does)", flush=True)
    train(
        profile_config(profile),
        folder,
        resume=True,
        device=device,
        progress=progress_enabled() if progress is None else progress,
    )
    if not prob.is_file():
        raise RuntimeError(f"training profile {profile!r} into {folder} wrote no heldout_prob.tif")
    return prob
