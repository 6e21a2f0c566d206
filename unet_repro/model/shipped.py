"""A model you can use without training: the ``cpu`` profile's network, kept in the repository.

The ``cpu`` profile (``unet_repro.training.config``: 32 base channels, same padding, bilinear up-sampling,
Adam, 2200 steps of 384x384 tiles on slices 0-24 of ISBI 2012) trains in under an hour on a laptop CPU; its
network is kept in ``results/cpu/model/`` so that ``unet-repro predict --model cpu`` works on a fresh clone:

- ``model.pt``: the format of :mod:`unet_repro.model.files` with the weights in half precision (float16,
  half the size; :func:`unet_repro.model.files.load_model` puts them back into a float32 network);
- ``model.json``: its SHA-256 (checked before every use), configuration, the run's commit, and how far
  half precision moves its predictions, measured on the test block when it was written (:func:`ship`);
- ``results/cpu/MODEL_CARD.md``: what it was trained on, its test-block scores, what it is for and not
  (:func:`model_card`, written from ``model.json`` and the committed tables).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .files import atomic_save, read_dict

__all__ = ["SHIPPED", "half_payload", "model_card", "resolve_model", "ship", "sha256_of"]

#: shipped model name -> its folder in a checkout
SHIPPED: dict[str, str] = {"cpu": "results/cpu/model"}


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve_model(model: str | Path, root: Path | None = None) -> Path:
    """``--model``: a ``model.pt`` path, or the name of a shipped model (``cpu``), checked against its hash.

    Args:
        model: a path, or a key of :data:`SHIPPED` (a path of that name, when it exists, wins).
        root: the checkout (default: the one the working folder is in, else the package's own).

    Returns:
        The ``model.pt`` to load.

    Raises:
        FileNotFoundError: (one line) a shipped model asked for outside a checkout that holds it.
        ValueError: (one line) the shipped file's SHA-256 differs from ``model.json``'s.
    """
    name = str(model)
    if name not in SHIPPED or Path(name).exists():
        return Path(model)
    from ..results import repo_root

    roots = [r for r in (root, repo_root(), repo_root(Path(__file__).parent)) if r is not None]
    folder = next((r / SHIPPED[name] for r in roots if (r / SHIPPED[name] / "model.pt").is_file()), None)
    if folder is None:
        raise FileNotFoundError(
            f"the shipped model {name!r} lives in a clone of the repository ({SHIPPED[name]}/model.pt); "
            "run from a clone (git clone https://github.com/unet-repro/unet-repro) or pass --model PATH/model.pt"
        )
    meta = json.loads((folder / "model.json").read_text())
    if sha256_of(folder / "model.pt") != meta["sha256"]:
        raise ValueError(
            f"{folder / 'model.pt'} does not match the SHA-256 in model.json; restore it with git checkout {folder}"
        )
    return folder / "model.pt"


def half_payload(run: Path) -> dict[str, Any]:
    """A run's ``model.pt`` as a dict with its floating-point weights in half precision (what :func:`ship` writes).

    Args:
        run: a finished training run (``model.pt``).

    Returns:
        The file's dict, ``state_dict`` in float16 and ``weights_dtype`` set.
    """
    payload = read_dict(run / "model.pt", "model")
    payload["state_dict"] = {
        k: v.to(torch.float16) if v.is_floating_point() else v for k, v in payload["state_dict"].items()
    }
    payload["weights_dtype"] = "float16"
    return payload


def ship(run: Path, folder: Path, measured: Mapping[str, Any], payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a run's ``model.pt`` in half precision to ``folder`` with its ``model.json`` (each once).

    Args:
        run: a finished training run (``model.pt``, ``metrics.json``).
        folder: where ``model.pt`` and ``model.json`` go.
        measured: what half precision does to the test block's predictions (written into ``model.json``).
        payload: :func:`half_payload` of ``run`` when the caller has it already (measured from it).

    Returns:
        The contents of ``model.json``.
    """
    payload = half_payload(run) if payload is None else payload
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save(payload, folder / "model.pt")
    metrics = json.loads((run / "metrics.json").read_text())
    meta = {
        "sha256": sha256_of(folder / "model.pt"),
        "bytes": (folder / "model.pt").stat().st_size,
        "weights_dtype": "float16 (trained in float32)",
        "train_config": payload.get("train_config", {}),
        "model_config": payload.get("model_config", {}),
        "input_scaling": payload.get("input_scaling", ""),
        "trained": {k: metrics.get(k) for k in ("commit", "finished", "iterations", "train_seconds", "device")},
        "half_precision": dict(measured),
    }
    (folder / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def model_card(meta: Mapping[str, Any], scores: Mapping[str, float], seed_sd: Mapping[str, float]) -> str:
    """The model card (markdown) of a shipped model.

    Args:
        meta: its ``model.json``.
        scores: its test-block scores (slices 25-29; pixel, Rand and warping error at their best thresholds,
            as the challenge server scored).
        seed_sd: the standard deviation of those scores over training seeds at the ``ci`` scale (one seed
            shipped: how much another seed would move them).

    Returns:
        The card's text.
    """
    cfg, half = meta["train_config"], meta["half_precision"]
    augment = {
        True: "the paper's augmentation (section 3.1)",
        False: "no augmentation",
        "elastic_only": "elastic deformation as its only augmentation",
        "no_elastic": "rotation, shift, flips and grey values but no elastic deformation",
    }[cfg.get("augment")]
    tile = f" --tile {cfg.get('eval_tile')}" if cfg.get("padding") == "valid" else ""
    sd = ", ".join(f"{k.replace('_', ' ')} {v:.3g}" for k, v in seed_sd.items())
    rows = "\n".join(f"| {k.replace('_', ' ')} | {v:.4f} |" for k, v in scores.items())
    return f"""# Model card: unet-repro `{cfg.get("profile", "?")}` U-Net

Generated by `python scripts/ship_model.py` from `results/cpu/model/model.json` and the committed tables; do not
edit by hand.

**What it is.** The U-Net of Ronneberger, Fischer and Brox (MICCAI 2015) at the `{cfg.get("profile")}` profile's size:
{cfg.get("base_channels")} base channels (the paper: 64), depth {cfg.get("depth")}, {cfg.get("padding")} padding
and {cfg.get("upsampling")} up-sampling (the paper: valid padding, up-convolutions), trained with
{cfg.get("optimizer")} (the paper: SGD, momentum 0.99) for {cfg.get("iterations")} steps of one
{cfg.get("tile")}x{cfg.get("tile")} tile, the weighted loss of eq. 1 and 2 (w0 = {cfg.get("w0")},
sigma = {cfg.get("sigma")}), {augment}. Weights in half precision,
{meta["bytes"] / 1e6:.1f} MB, SHA-256 `{meta["sha256"]}`, commit `{meta["trained"]["commit"]}`.

**Trained on** slices 0-24 of the ISBI 2012 training stack (serial-section transmission electron microscopy
of the Drosophila first instar larva ventral nerve cord, 512x512 pixels of 4x4 nm, section thickness 50 nm),
labels membrane = 0 and cell = 1. Slices 20-24 chose the recipe (validation block); slices 25-29 (test block)
were never looked at for a choice and give the scores below.

**Test-block scores** (slices 25-29, test-time mode `{cfg.get("tta")}`, float32 weights, each at the best
threshold on the block as the challenge server scored):

| metric | value |
| --- | --- |
{rows}

One training seed. At the `ci` scale the seed-to-seed standard deviation is {sd} (`results/04_seed_study.csv`):
read differences smaller than that as noise. Half precision moves the test block's P(cell) by at most
{half["max_abs_prob_change"]:.2g} and its pixel error (best threshold) by {half["pixel_error_change"]:+.2g}.

**For.** Membrane (cell boundary) probability maps of serial-section TEM of neural tissue at a similar
resolution (about 4 nm a pixel) and contrast, 8-bit grey values: `unet-repro predict --model cpu --input
stack.tif --output prob.tif --tta {cfg.get("tta")}{tile}` (P(cell), 1 = cell).

**Not for.** Other modalities (light microscopy, other EM preparations or resolutions) without retraining:
`unet-repro train --images ... --labels ...` trains on your own stack. Not a challenge submission: the
challenge's test labels are secret, and our test block is part of its training stack. Not the paper's full
model: a smaller network and recipe made to train on a CPU.

**License.** MIT (the repository's `LICENSE`). The ISBI 2012 data are the challenge organisers' (Cardona et
al. 2010; Arganda-Carreras et al. 2015); cite them and the paper (Ronneberger et al. 2015,
doi:10.1007/978-3-319-24574-4_28) when you use this model.
"""
