"""Ship a finished ``cpu`` run: half-precision weights, ``model.json`` and the model card (model.shipped).

Usage: ``python scripts/ship_model.py [RUN]`` (default ``build/runs/cpu``, where ``make reproduce PROFILE=cpu``
trains it). Measures on the test block (slices 25-29) how far half precision moves P(cell), then writes
``results/cpu/model/model.pt``, ``model.json`` and ``results/cpu/MODEL_CARD.md``. The card's scores are this
run's on the test block (float32 weights, its own test-time mode), computed here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _test_volume_figure(model, volume: np.ndarray, tta: str) -> Path:  # noqa: ANN001 - a UNet
    """The shipped model on the ISBI 2012 test volume (no labels exist): one slice, its P(cell), and an
    overlay, as the README shows it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unet_repro.inference.tiling import predict_stack
    from unet_repro.results import save_figure

    z = volume.shape[0] // 2
    prob = predict_stack(model, volume[z : z + 1], tta=tta, progress=False)[0]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3))
    axes[0].imshow(volume[z], cmap="gray")
    axes[0].set_title(f"ISBI 2012 test volume, slice {z} (no labels published)", fontsize=9)
    im = axes[1].imshow(prob, cmap="magma", vmin=0, vmax=1)
    axes[1].set_title(f"P(cell) from the shipped cpu model (tta {tta})", fontsize=9)
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    axes[2].imshow(volume[z], cmap="gray")
    axes[2].imshow(np.ma.masked_where(prob >= 0.5, prob), cmap="autumn", alpha=0.55, vmin=0, vmax=1)
    axes[2].set_title("membrane (P(cell) < 0.5) drawn in red over the slice", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle("unet-repro predict --model cpu on data no choice looked at: the test volume's membranes", y=1.0)
    fig.tight_layout()
    path = save_figure(fig, "cpu_model_test_volume", ROOT / "results" / "cpu")
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    from unet_repro.data.isbi2012 import load_isbi2012
    from unet_repro.data.protocol import PROTOCOL
    from unet_repro.inference.tiling import predict_stack
    from unet_repro.metrics import isbi2012_scores, pixel_error
    from unet_repro.model.files import load_model, model_from_dict
    from unet_repro.model.shipped import half_payload, model_card, ship

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", nargs="?", type=Path, default=ROOT / "build" / "runs" / "cpu")
    args = p.parse_args(argv)
    metrics = json.loads((args.run / "metrics.json").read_text())
    if metrics.get("profile") != "cpu":
        print(f"error: {args.run} is a {metrics.get('profile')!r} run; give the cpu profile's run", file=sys.stderr)
        return 2
    folder = ROOT / "results" / "cpu" / "model"
    isbi = load_isbi2012()
    test = list(range(*PROTOCOL.test))
    images, labels = isbi.train_images[test], isbi.train_labels[test]
    tta = metrics.get("tta", "d4")
    full = predict_stack(load_model(args.run / "model.pt"), images, tta=tta, progress=False)
    payload = half_payload(args.run)
    half = predict_stack(model_from_dict(payload, args.run / "model.pt"), images, tta=tta, progress=False)
    measured = {
        "max_abs_prob_change": float(np.abs(half - full).max()),
        "pixel_error_change": float(pixel_error(half, labels) - pixel_error(full, labels)),
        "on": f"test block, slices {test[0]}-{test[-1]}, tta {tta}",
    }
    meta = ship(args.run, folder, measured, payload)
    scored = isbi2012_scores(full, labels)  # this run, float32 weights, its own test-time mode
    scores = {m: float(scored[m]) for m in ("pixel_error", "rand_error", "warping_error", "v_rand", "v_info")}
    spread = pd.read_csv(ROOT / "results" / "04_seed_study.csv").set_index("metric")["sd"]
    seed_sd = {m: float(spread[m]) for m in ("pixel_error", "rand_error", "warping_error")}
    (ROOT / "results" / "cpu" / "MODEL_CARD.md").write_text(model_card(meta, scores, seed_sd))
    _test_volume_figure(load_model(folder / "model.pt"), isbi.test_images, tta)
    print(json.dumps({"sha256": meta["sha256"], "bytes": meta["bytes"], **measured}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
