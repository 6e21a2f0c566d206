# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#     provenance: []
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: accelerator,colab,-jupytext.text_representation.jupytext_version,-jupytext.text_representation.format_version
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04. Training on ISBI 2012 and overlap-tile prediction
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-repro/unet-repro/blob/v0.2.0/notebooks/04_isbi_training.ipynb)
#
# Section 3 of the paper trains the network on the ISBI 2012 EM stack with stochastic gradient descent,
# one large tile per step, the weighted loss of notebook 02 and the elastic augmentation of notebook 03, and
# predicts whole slices by the overlap-tile strategy of Fig. 2. This notebook does the same at the scale of
# the chosen profile: `ci` (a narrower U-Net trained for minutes on a CPU), `cpu` (longer, on a CPU) or
# `paper` (the paper's network, for a GPU); the profiles' table below lists their channels and steps. The
# logic lives in `unet_repro.data.isbi2012`, `unet_repro.training.loop` and `unet_repro.inference.tiling`; this notebook runs it and
# reports the numbers. On Colab, choose a GPU runtime (this notebook asks for one) and set `drive = True`
# in the parameters cell to keep the run folder on Google Drive: a disconnect then loses nothing, and
# running the notebook again resumes from the run's last checkpoint.
#
# **Evaluation protocol.** The challenge never published the test labels, so every number here is on a
# held-out block of the *training* stack: slices 25-29, a contiguous block because neighbouring sections
# are nearly identical. Training uses slices 0-24 (both printed and checked below). These numbers are
# therefore not the paper's test-set numbers (Table 1), which came from the organisers' server. Each reported
# metric takes its best threshold (of 0.0, 0.1, ..., 1.0) on the block it is scored on, each metric its own, as
# the challenge server did for Table 1: that one choice does look at the test block. The section "Thresholds
# fixed on the validation block" below scores the final model also at thresholds chosen on slices 20-24.

# %%
# On Colab: install the package at this notebook's release tag, with its runtime dependencies only (Colab
# ships its own Jupyter front end, torch and most of the rest). Skipped when unet_repro already imports,
# and everywhere else. The address and tag come from pyproject.toml ([project.urls] Repository, version).
import sys

REPOSITORY, TAG = "https://github.com/unet-repro/unet-repro", "v0.2.0"
if "google.colab" in sys.modules:
    import importlib.util
    import subprocess

    if importlib.util.find_spec("unet_repro") is None:
        pip = [sys.executable, "-m", "pip", "install", "-q"]
        subprocess.run([*pip, f"unet-repro @ git+{REPOSITORY}@{TAG}"], check=True)

# %% tags=["parameters"]
profile = "ci"  # "ci" (minutes, CPU), "cpu" (about an hour, CPU), "paper" (the paper's configuration, GPU)
out_dir = ""  # results folder; empty means results/ for ci, results/<profile>/ otherwise
run_path = ""  # training run folder; empty means unet_repro.results.run_dir(profile), which notebook 05 reads
drive = False  # on Colab: mount Google Drive and keep the run folder there (run_path relative to MyDrive)
device = "auto"  # "auto" (CUDA when present), "cpu", "cuda"
iterations = 0  # 0: the profile's step count; benchmarks/gpu_paper.sh passes fewer when its time budget is short

# %%
from unet_repro.results import default_results_dir, provenance, save_figure, write_table
from unet_repro.study.records import seed_study_kinds

RESULTS = default_results_dir(profile, out_dir)

# %% tags=["remove-input"] jupyter={"source_hidden": true}
# The chapter's summary: the cell under "What this means" writes it here once every number in it is computed.
from IPython.display import Markdown, display

chapter_summary = display(Markdown("*The summary appears here once the notebook has run to its end.*"), display_id=True)

# %%
import json
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.patches import Rectangle

from unet_repro import metrics
from unet_repro.augment.augmenter import Augmenter
from unet_repro.data.isbi2012 import load_isbi2012, normalize_image, split_train_heldout
from unet_repro.device import resolve_device
from unet_repro.inference.tiling import TTA_TRANSFORMS, predict_stack
from unet_repro.loss.weights import weight_maps
from unet_repro.metrics.figures import (
    FALSE_MEMBRANE,
    MISSED_MEMBRANE,
    CropRow,
    busiest_window,
    cells,
    error_map,
    native_crops_figure,
    near_membrane_share,
)
from unet_repro.model.files import load_model
from unet_repro.model.sizing import tile_layout
from unet_repro.training.checkpoint import is_finished_run
from unet_repro.training.config import profile_config
from unet_repro.training.loop import train
from unet_repro.training.runs import progress_enabled, run_folder
from unet_repro.training.speed import sgd_step_seconds
from unet_repro.training.tiles import TileSampler

RUN = run_folder(profile, run_path, drive)
print("results:", RESULTS, "\nrun folder:", RUN)

profiles = pd.DataFrame(
    [
        {
            "profile": p,
            **{
                k: getattr(c, k)
                for k in ("base_channels", "tile", "iterations", "optimizer", "lr", "momentum", "dropout", "augment")
            },
        }
        for p, c in ((p, profile_config(p)) for p in ("ci", "cpu", "paper"))
    ]
).set_index("profile")
profiles

# %% tags=["remove-input"] jupyter={"source_hidden": true}
paper_cfg = profile_config("paper")
assert (
    paper_cfg.base_channels,
    paper_cfg.tile,
    paper_cfg.optimizer,
    paper_cfg.momentum,
    paper_cfg.dropout,
    paper_cfg.augment,
) == (64, 572, "sgd", 0.99, 0.5, True), "the paper profile is the paper's recipe"

# %% [markdown]
# ## The data
#
# 30 serial sections of 512 x 512 pixels (ssTEM, *Drosophila* first instar larva ventral nerve cord, checked below), with
# labels 0 = membrane and 255 = cell. `load_isbi2012()` finds the files (argument, `$UNET_REPRO_DATA`, user
# cache), downloads them from the pinned mirrors when missing, and checks the SHA-256 of the decoded pixels.

# %%
isbi = load_isbi2012()
train_idx, held_idx = split_train_heldout(30, (25, 30))
print("training slices:", train_idx[0], "..", train_idx[-1], "| held-out slices:", held_idx)
membrane = (isbi.train_labels == 0).mean(axis=(1, 2))
stats = pd.DataFrame(
    {
        "set": [f"train ({train_idx[0]}-{train_idx[-1]})", f"held-out ({held_idx[0]}-{held_idx[-1]})", "all 30"],
        "slices": [len(train_idx), len(held_idx), 30],
        "membrane_share_mean": [membrane[train_idx].mean(), membrane[held_idx].mean(), membrane.mean()],
        "membrane_share_min": [membrane[train_idx].min(), membrane[held_idx].min(), membrane.min()],
        "membrane_share_max": [membrane[train_idx].max(), membrane[held_idx].max(), membrane.max()],
    }
).round(4)
stats

# %% tags=["remove-input"] jupyter={"source_hidden": true}
assert isbi.train_images.shape == (30, 512, 512) and train_idx == list(range(25)) and held_idx == list(range(25, 30))

# %%
fig, axes = plt.subplots(2, 4, figsize=(12, 6.4))
for col, i in enumerate([0, 12, 25, 29]):
    axes[0, col].imshow(isbi.train_images[i], cmap="gray")
    axes[0, col].set_title(f"slice {i} ({'held out' if i in held_idx else 'train'})")
    axes[1, col].imshow(isbi.train_labels[i], cmap="gray")
    axes[1, col].set_title(f"label {i}: {membrane[i]:.1%} membrane")
for ax in axes.flat:
    ax.set_axis_off()
fig.suptitle("ISBI 2012 training stack: images (top) and labels (bottom; black = membrane, white = cell)")
save_figure(fig, "04_data", RESULTS)
plt.show()
plt.close(fig)

# %% [markdown]
# ## The training tile
#
# > "To predict the pixels in the border region of the image, the missing context is extrapolated by
# > mirroring the input image." (Fig. 2)
#
# A training sample is a 572 x 572 input tile whose 388 x 388 output window (the pixels the loss sees) lies
# inside the slice, drawn uniformly; the 92-pixel context around the window is taken from the slice where
# it exists and mirrored beyond its edge. The tile then goes through the augmentation of notebook 03, and
# the weight map of eq. 2 (notebook 02), pre-computed once on the whole slice, is cut and deformed with
# the tile (the paper: "We pre-compute the weight map for each ground truth segmentation"). The figure uses
# the profile's tile; a same-padded network (the `cpu` profile's) has no context, its tile is its output window.

# %%
cfg = profile_config(profile, **({"iterations": iterations} if iterations else {}))
train_images = normalize_image(isbi.train_images[train_idx])
train_classes = (isbi.train_labels[train_idx] > 127).astype(np.int64)
wmaps = weight_maps(isbi.train_labels[train_idx], w0=10.0, sigma=5.0)  # the paper's eq. 2 (what training uses)
sampler = TileSampler(train_images, train_classes, wmaps, tile=cfg.tile, depth=cfg.depth, padding=cfg.padding)
rng = np.random.default_rng(3)
img_t, lab_t, w_t = sampler.crop(0, 0, 0)  # the top-left window: mirrored context on two sides (valid padding)
aug_i, aug_l, aug_w = Augmenter()(img_t, lab_t, rng, weight=w_t)  # the paper's augmentation, for the picture
b, o, t = sampler.border, sampler.out, cfg.tile
augment_note = {True: "", False: f"\n(profile {profile} trains without it)"}.get(
    cfg.augment, f"\n(profile {profile}: {cfg.augment})"
)

fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
for ax, arr, title, cmap in [
    (axes[0], img_t, f"input tile {t}x{t}\n(slice 0, window at 0,0)", "gray"),
    (axes[1], aug_i, f"the paper's augmentation{augment_note}", "gray"),
    (axes[2], aug_l, "label,\ndeformed with the tile", "gray"),
    (axes[3], aug_w, "weight map (eq. 2),\ndeformed with the tile", "jet"),
]:
    im = ax.imshow(arr, cmap=cmap)
    ax.add_patch(Rectangle((b - 0.5, b - 0.5), o, o, fill=False, ec="yellow", lw=1.5))
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
if b:  # valid padding: context around the window, mirrored beyond the slice's edge
    axes[0].add_patch(Rectangle((b - 0.5, b - 0.5), t - b, t - b, fill=False, ec="cyan", lw=1, ls="--"))
    axes[0].text(4, 40, "mirrored", color="cyan", fontsize=9)
fig.colorbar(im, ax=axes[3], fraction=0.046)
fig.suptitle(
    f"Yellow: the {o}x{o} output window (the loss); dashed cyan: where the slice itself is; "
    "outside it the context is mirrored"
    if b
    else f"Profile {profile} is same-padded: the {t}x{t} tile is its own output window (yellow), no context",
    fontsize=10,
)
save_figure(fig, "04_tile", RESULTS)
plt.show()
plt.close(fig)

# %% tags=["remove-input"] jupyter={"source_hidden": true}
if (t, cfg.padding) == (572, "valid"):
    assert (b, o) == (92, 388), "a 572 tile: 92 px of context around a 388 px output window"
assert cfg.padding == "valid" or (b, o) == (0, t), "a same-padded tile is its own output window"

# %% [markdown]
# ## Training
#
# > "we favor large input tiles over a large batch size and hence reduce the batch to a single image.
# > Accordingly we use a high momentum (0.99)" (section 3)
#
# The `paper` profile trains as the paper does: SGD with momentum 0.99, one 572 x 572 tile per step,
# drop-out 0.5 at the end of the contracting path, the augmentation of notebook 03, the loss of eq. 1
# normalised by the sum of the weights (notebook 02). The paper gives neither the learning rate nor the
# number of iterations; the values of each profile come from the trials listed at the end of this notebook.
#
# **Departures from the paper**, all stated: fewer channels for `ci` and `cpu` (the profiles' table above),
# a short cosine schedule with warm-up, grey values scaled to [0, 1]; for `ci` **Adam** (beta1 = the paper's
# momentum) instead of SGD and **no augmentation**, the recipe that scored best on the *validation* block
# among the trials at the end of this notebook (the paper's SGD with its augmentation among them). The
# validation slices come from the same stack as the training slices, so a short run gains more from fitting
# than from invariances; augmentation may pay off over long training, which `paper` keeps (notebook 06
# measures both at 1000 and 4000 steps). The `cpu` profile takes the changes that helped on the validation
# block of notebook 06's study and hurt nothing there: Adam, elastic deformation as its only augmentation,
# same padding with bilinear up-sampling (384 tiles, a slice predicted in one pass), and averaging over the
# 8 rotations/flips. The `paper` profile keeps the paper's recipe.
#
# Training resumes from `checkpoint.pt` in the run folder when one exists, and is skipped when the run
# folder already holds a finished run of exactly this configuration.

# %%
print(cfg)
dev = resolve_device(device)
summary_path = RUN / "metrics.json"
if is_finished_run(cfg, RUN):
    print("a finished run of this configuration is reused:", provenance(RUN))
    model = load_model(RUN / "model.pt", dev)
else:
    result = train(cfg, RUN, resume=True, isbi=isbi, device=device, progress=progress_enabled(), curve=True)
    model = result.model.eval()
summary = json.loads(summary_path.read_text())
log = pd.read_csv(RUN / "log.csv")
print(json.dumps(summary, indent=1))

# %%
fig, ax = plt.subplots(1, 2, figsize=(12, 3.8))
smooth = log["loss"].rolling(25, min_periods=1).mean()
ax[0].plot(log["iteration"], log["loss"], lw=0.5, alpha=0.4, label="per step")
ax[0].plot(log["iteration"], smooth, lw=1.5, label="mean of 25 steps")
ax[0].set_xlabel(f"iteration ({cfg.batch_size} tile(s) of {cfg.tile}x{cfg.tile})")
ax[0].set_ylabel("weighted cross-entropy (eq. 1)")
ax[0].set_yscale("log")
ax[0].legend()
ax[0].set_title(f"training loss, profile {profile}")
ax[1].plot(log["iteration"], log["lr"])
ax[1].set_xlabel("iteration")
ax[1].set_ylabel("learning rate")
ax[1].set_title("schedule (warm-up, cosine decay)")
save_figure(fig, "04_training_curve", RESULTS)
plt.show()
plt.close(fig)

# %% [markdown]
# ### The held-out learning curve
#
# The loss says how well the run fits its training tiles, not whether more steps still pay off on slices it
# never saw. The run scores its held-out slices after every checkpoint (`train(..., curve=True)`, or
# `unet-repro train --curve`; one pass, no test-time averaging, each metric at its best threshold as the
# challenge server scored): the table `04_heldout_curve.csv` and the figure below. The held-out block is the
# test block (slices 25-29), so this curve is a **reported** result, not a tool for choosing: the number of
# steps was fixed on the validation block before it existed (the trials at the end of this notebook).
# Notebook 06 measures what longer training does at the study's scale.

# %%
curve_path = RUN / "curve.csv"
if curve_path.is_file():
    heldout_curve = pd.read_csv(curve_path)
    write_table(
        heldout_curve.drop(columns="seconds").assign(profile=profile, block="test, slices 25-29", tta="none"),
        "04_heldout_curve",
        RESULTS,
        # reported, not compared: the seed study's tolerances are for final models, and a score taken mid-training
        # (step 300) moved by more than them between two machines of one type; the last checkpoint is the model
        # whose scores 04_training.csv and 05_evaluation.csv compare
        kinds=dict.fromkeys(["pixel_error", "rand_error", "warping_error", "v_rand", "v_info"], "measured"),
    )
    last_curve = heldout_curve.iloc[-1]
    best_rand_step = int(heldout_curve.loc[heldout_curve["rand_error"].idxmin(), "step"])
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    for a, m, label in zip(
        ax,
        ("pixel_error", "rand_error", "warping_error"),
        ("pixel error", "Rand error", "warping error"),
        strict=True,
    ):
        a.plot(heldout_curve["step"], heldout_curve[m], marker="o", ms=3)
        a.set_xlabel("training step")
        a.set_ylabel(f"{label} (test block, lower is better)")
        a.set_ylim(bottom=0)
    all_cell_curve = metrics.pixel_error(np.ones((len(held_idx), 512, 512), np.float32), isbi.train_labels[held_idx])
    ax[0].axhline(all_cell_curve, color="grey", ls=":", lw=1, label="all cell")
    ax[0].set_ylim(0, 1.08 * max(all_cell_curve, heldout_curve["pixel_error"].max()))
    ax[0].legend(loc="upper right")
    fig.suptitle(
        f"Profile {profile}: test-block scores at each checkpoint (one pass); "
        f"the Rand error is lowest at step {best_rand_step} of {int(last_curve['step'])}"
    )
    fig.tight_layout()
    save_figure(fig, "04_heldout_curve", RESULTS)
    plt.show()
    plt.close(fig)
else:
    heldout_curve = None
    print(f"this run ({provenance(RUN)}) was trained without curve=True: it has no held-out curve")

# %% [markdown]
# ## Overlap-tile prediction and test-time augmentation
#
# Held-out slices are predicted whole: mirrored by the tile's border, cut into tiles whose output windows
# start at multiples of 16 = 2^4 (`sizing.tile_layout`), so that every tile sees the same max-pooling grid
# and the stitched map equals a single pass over the whole mirrored slice (`tests/test_inference.py` checks
# this), and stitched. The cell below prints where the windows of a 512 x 512 slice start and how much
# neighbours overlap (notebook 01 draws them). A same-padded network (the `cpu` profile's) needs no context:
# it predicts each slice in one pass, mirrored to a multiple of 16, and has no tiles to stitch. The paper's ISBI submission was "averaged over 7 rotated
# versions of the input data" without saying which; here `rot4` averages the rotations by 90 degrees and
# `d4` all symmetries of the square (rotations with and without a flip), which need no interpolation; the
# table's `versions` column counts them.

# %%
if cfg.padding == "same":
    print(f"profile {profile}: a same-padded network; each 512 x 512 slice is predicted in one pass, no tiles")
else:
    starts, out_px, border_px = tile_layout(512, cfg.eval_tile)
    overlap_px = out_px - (starts[1] - starts[0]) if len(starts) > 1 else 0
    print(
        f"tile {cfg.eval_tile}: border {border_px} px, output windows of {out_px} px start at {starts} on each "
        f"axis of a 512 slice; neighbouring windows overlap by {overlap_px} px"
    )

held_images, held_labels = isbi.train_images[held_idx], isbi.train_labels[held_idx]
rows, probs = [], {}
for tta in ["none", "rot4", "d4"]:
    t0 = time.perf_counter()
    p = predict_stack(model, held_images, tile=cfg.eval_tile, tta=tta)
    seconds = time.perf_counter() - t0
    probs[tta] = p
    rows.append(
        {
            "tta": tta,
            "versions": len(TTA_TRANSFORMS[tta]),
            "pixel_error": metrics.pixel_error(p, held_labels),
            "rand_error": metrics.rand_error(p, held_labels),
            "predict_seconds_per_slice": seconds / len(held_idx),
        }
    )
tta_table = pd.DataFrame(rows)
tta_table.drop(columns="predict_seconds_per_slice")  # the time is in the appendix

# %% tags=["remove-input"] jupyter={"source_hidden": true}
if cfg.padding == "valid":
    assert all(s % 16 == 0 for s in starts) and starts[-1] + out_px >= 512
assert [len(TTA_TRANSFORMS[t]) for t in ("none", "rot4", "d4")] == [1, 4, 8]

# %% [markdown]
# ### What the reported pixel error sees, at full resolution
#
# A membrane is a few pixels wide, so the figure below shows 256 x 256 crops at their native pixels (one
# screen pixel per image pixel in the saved PNG, `results/figures/04_heldout.png`): the first and the last test
# slice, each at the 256 x 256 window (on a 32-pixel grid) with the most wrong pixels. The prediction is the
# profile's own test-time mode, the one `heldout_prob.tif` holds and notebook 05 scores; its errors are drawn
# at the threshold the pixel error of the test block is reported at (its best one on that block, as the
# challenge server chose it), not at 0.5. The last two panels are what the Rand and warping errors compare:
# the connected cells (4-connected) of the prediction, cut at the Rand error's best threshold on the block,
# and those of the label.

# %%
expected_all_cell = metrics.pixel_error(np.ones(held_labels.shape, np.float32), held_labels)
print(
    f"pixel error of predicting 'all cell' on the test block (slices {held_idx[0]}-{held_idx[-1]}): {expected_all_cell:.4f}"
)
heldout_eval = metrics.evaluate(probs[cfg.tta], held_labels)
at = heldout_eval.best_thresholds()
err_all = error_map(probs[cfg.tta], held_labels, at["pixel_error"])
near_share = near_membrane_share(err_all, held_labels, distance=2)
pred_cells = sum(cells(p > at["rand_error"])[1] for p in probs[cfg.tta])
true_cells = sum(cells(lab)[1] for lab in held_labels)
crop_rows = [
    CropRow(
        name=f"test slice {held_idx[i]}",
        image=held_images[i],
        prob_cell=probs[cfg.tta][i],
        label=held_labels[i],
        pixel_threshold=at["pixel_error"],
        cell_threshold=at["rand_error"],
        corner=busiest_window(error_map(probs[cfg.tta][i], held_labels[i], at["pixel_error"])),
    )
    for i in (0, len(held_idx) - 1)
]
fig = native_crops_figure(
    crop_rows,
    f"Test block {held_idx[0]}-{held_idx[-1]}, profile {profile}, tta {cfg.tta}, 1:1 pixels. At the pixel error's "
    f"threshold {at['pixel_error']:.1f}, {near_share:.0%} of the block's wrong pixels lie within 2 px of a label "
    f"membrane's edge;\ncut at the Rand error's threshold {at['rand_error']:.1f}, the prediction has {pred_cells} "
    f"cells on the block where the label has {true_cells} (the extra ones: fragments and specks)",
)
save_figure(fig, "04_heldout", RESULTS)
plt.show()
plt.close(fig)
half = error_map(probs[cfg.tta], held_labels, 0.5)
display(
    Markdown(
        f"On the test block (slices {held_idx[0]}-{held_idx[-1]}, profile {profile}, tta {cfg.tta}) the pixel error is "
        f"reported at threshold {at['pixel_error']:.1f}, its best there. At it, {(err_all == FALSE_MEMBRANE).mean():.1%} "
        f"of the pixels are false membrane and {(err_all == MISSED_MEMBRANE).mean():.1%} missed membrane, and "
        f"{near_share:.0%} of these wrong pixels lie within 2 px of a label membrane's edge: most of the pixel error "
        f"is about where a membrane ends. At 0.5 the same prediction calls {(half == FALSE_MEMBRANE).mean():.1%} of "
        f"the pixels false membrane ({near_membrane_share(half, held_labels, distance=2):.0%} of its wrong pixels near "
        f"an edge): much of the inside of the cells has a P(cell) between 0.1 and 0.5, which the low threshold counts as "
        f"cell. Cut at the Rand "
        f"error's threshold ({at['rand_error']:.1f}), the prediction has {pred_cells} cells where the label has "
        f"{true_cells}: the extra ones are the fragments and specks the Rand and warping errors count, which the "
        f"pixel error barely sees (notebook 05 counts them)."
    )
)
# %% [markdown]
# ## Results
#
# The held-out pixel error is the ISBI 2012 one: 1 - the best F-score of the cell class over the
# thresholds 0.0, 0.1, ..., 1.0, summed over the held-out slices (`unet_repro.metrics.pixel_error`; the best
# threshold is that of these held-out slices, as on the challenge server);
# the Rand error likewise (notebook 05 explains all the challenge metrics). For reference, the paper's
# U-Net scored a pixel error of 0.0611 on the challenge's *test* set (Table 1), with the 64-channel network
# trained for about 10 hours; predicting "all cell" scores the value printed above.

# %%
res = pd.DataFrame(
    [
        {
            "profile": profile,
            "base_channels": cfg.base_channels,
            "tile": cfg.tile,
            "iterations": summary["iterations"],
            "optimizer": cfg.optimizer,
            "augment": cfg.augment,
            "lr": cfg.lr,
            "schedule": f"{cfg.lr_schedule}, warm-up {cfg.warmup}",
            "heldout_slices": "25-29",
            "tta": r["tta"],
            "pixel_error": r["pixel_error"],
            "rand_error": r["rand_error"],
            "seconds_per_iteration": summary["seconds_per_iteration"],
            "train_minutes": summary["train_seconds"] / 60,
            "device": summary["device"],
        }
        for r in rows
    ]
)
write_table(
    res,
    "04_training",
    RESULTS,
    kinds={
        **seed_study_kinds(["pixel_error", "rand_error"], profile),
        "seconds_per_iteration": "measured",
        "train_minutes": "measured",
        "device": "measured",
    },
)
res.drop(columns=["seconds_per_iteration", "train_minutes"])  # the times are in the appendix

# %% tags=["remove-input"] jupyter={"source_hidden": true}
best = float(res.loc[res["tta"] == "none", "pixel_error"].iloc[0])
target = 0.07  # the ci profile's target: a real result in under 10 CPU minutes
print(f"expected: held-out pixel error <= {target}, got: {best:.4f}, match: {best <= target}")
if profile == "ci":
    assert best <= target
print(f"expected: better than 'all cell' ({expected_all_cell:.4f}), got: {best:.4f}, match: {best < expected_all_cell}")
assert best < expected_all_cell

# %% [markdown]
# ## Thresholds fixed on the validation block
#
# Every metric of this project is reported, as the challenge server reported Table 1, at its best of the
# thresholds 0.0, 0.1, ..., 1.0 (0.0, ..., 0.9 for the warping error) **on the block it is scored on**, each
# metric at its own threshold: the test block's numbers take their thresholds from the test block. That keeps
# them comparable with the paper's, but it is a choice that looks at the test block. The table below scores
# the final model's test block also at thresholds fixed beforehand: for each metric, the threshold that is
# best on the **validation** block (slices 20-24), then the test block (25-29) at that threshold
# (`unet_repro.metrics.Evaluation.scores_at`). Both blocks are predicted as `heldout_prob.tif` is, the
# prediction notebook 05 scores (the profile's own test-time augmentation). One caveat: a final model
# trains on slices 0-24, so the validation block is part of its training data, and its best thresholds are
# those of slices the model has fitted; they are still chosen without looking at the test block.

# %%
from IPython.display import Markdown, display

from unet_repro.data.protocol import PROTOCOL
from unet_repro.results import Stochastic
from unet_repro.study.records import METRICS

blocks = {"validation": PROTOCOL.validation_slices, "test": PROTOCOL.test_slices}
assert blocks["test"] == held_idx and set(blocks["validation"]) <= set(train_idx), "validation is trained on"
named = {b: f"{b} {s[0]}-{s[-1]}" for b, s in blocks.items()}
evals = {
    b: metrics.evaluate(
        predict_stack(model, isbi.train_images[s], tile=cfg.eval_tile, tta=cfg.tta, amp=cfg.amp),
        isbi.train_labels[s],
    )
    for b, s in blocks.items()
}
at_test, at_validation = evals["test"].best_thresholds(), evals["validation"].best_thresholds()
fixed = pd.DataFrame(
    [
        {
            "profile": profile,
            "tta": cfg.tta,
            "scored_block": named["test"],
            "thresholds_from": thresholds_from,
            **scores,
            **{f"threshold_{m}": chosen[m] for m in METRICS},
        }
        for thresholds_from, scores, chosen in [
            (f"{named['test']} (the challenge's convention)", evals["test"].scores(), at_test),
            (f"{named['validation']} (trained on)", evals["test"].scores_at(at_validation), at_validation),
        ]
    ]
)
write_table(
    fixed,
    "04_fixed_thresholds",
    RESULTS,
    kinds={
        **seed_study_kinds(METRICS, profile),
        **{
            f"threshold_{m}": Stochastic(
                0.3,
                "the best of the 0.1-spaced thresholds moves with the weights "
                "(a judgement, as in results/05_evaluation: the seed study records no thresholds)",
            )
            for m in METRICS
        },
    },
)
best_row, fixed_row = fixed.iloc[0], fixed.iloc[1]
per_metric = pd.DataFrame(
    {
        "threshold best on test": best_row[[f"threshold_{m}" for m in METRICS]].to_numpy(),
        "test score at it (challenge)": best_row[list(METRICS)].to_numpy(),
        "threshold best on validation": fixed_row[[f"threshold_{m}" for m in METRICS]].to_numpy(),
        "test score at that threshold": fixed_row[list(METRICS)].to_numpy(),
    },
    index=list(METRICS),
)
display(per_metric)
display(
    Markdown(
        f"At thresholds fixed on the validation block the test block scores pixel error "
        f"{fixed_row.pixel_error:.4f} (best on test: {best_row.pixel_error:.4f}), warping error "
        f"{fixed_row.warping_error:.3g} ({best_row.warping_error:.3g}), Rand error {fixed_row.rand_error:.3f} "
        f"({best_row.rand_error:.3f}), V_rand {fixed_row.v_rand:.4f} ({best_row.v_rand:.4f}) and V_info "
        f"{fixed_row.v_info:.4f} ({best_row.v_info:.4f}). The two blocks choose different thresholds for "
        f"{', '.join(m for m in METRICS if at_validation[m] != at_test[m]) or 'no metric'}."
    )
)

# %% tags=["remove-input"] jupyter={"source_hidden": true}
sign = {m: 1 if m in ("pixel_error", "warping_error", "rand_error") else -1 for m in METRICS}  # 1: lower is better
better = [m for m in METRICS if sign[m] * (fixed_row[m] - best_row[m]) < 0]
assert not better, f"a fixed threshold cannot beat the best one on the same block: {better}"
if cfg.amp == "off":  # the same computation as the TTA table above
    same = res.set_index("tta").loc[cfg.tta]
    print(
        f"expected: the best-on-test row scores the prediction of the table above (tta {cfg.tta}), got pixel error "
        f"{best_row.pixel_error:.6g} against {same.pixel_error:.6g}"
    )
    assert best_row.pixel_error == same.pixel_error and best_row.rand_error == same.rand_error

# %% [markdown]
# ## How much a number moves with the seed
#
# A seeded CPU run repeats exactly on one machine type, so the comparison above is exact here; on other
# hardware the floating-point rounding differs and training amplifies it, much as a change of seed does.
# The seed study (`studies/ci_seeds.toml`, run with `python -m unet_repro.sweep`; one JSON per run under
# `results/seed_study/runs/`) trained the `ci` profile with several seeds and scored each on the test block
# (slices 25-29). Its spread sets the tolerance with which `reproduce` compares every table that holds one
# of these metrics (`unet_repro.study.records.seed_study_kinds`: two standard deviations), here and in notebook 05.

# %%
from IPython.display import Markdown, display

from unet_repro.results import repo_root
from unet_repro.study.records import METRICS, SEED_STUDY, load_records, seed_spread, seed_tolerances

root = repo_root()
if root is not None and (root / SEED_STUDY).is_dir():
    seeds = load_records(root / SEED_STUDY)
    spread = seed_spread(seeds, "ci").assign(tolerance=lambda d: d["metric"].map(seed_tolerances(seeds, "ci")))
    write_table(spread, "04_seed_study", RESULTS)
    display(seeds[seeds.block == "test"][["seed", *METRICS]])
    display(spread)
    same = seeds[(seeds.block == "test") & (seeds.tta == "none") & (seeds.seed == cfg.seed)]
    if profile == "ci" and not iterations and len(same):
        recorded, tol = float(same.pixel_error.iloc[0]), seed_tolerances(seeds, "ci")["pixel_error"]
        print(
            f"expected: this run (seed {cfg.seed}) scores its seed-study record {recorded:.6g} "
            f"(exactly on the machine type that made it), got: {best:.6g}, exact: {recorded == best}"
        )
        assert abs(recorded - best) <= tol
else:
    print("no seed study here (it lives in the repository's results/seed_study/): skipped")

# %% [markdown]
# ## Slice 24 and slice 25: neighbours across the train/test line
#
# Final models train on slices 0-24 and are tested on 25-29 (`unet_repro.data.protocol`). Slice 24 is the
# section next to slice 25, about 50 nm away, and looks much like it: a model that has seen slice 24 has
# seen something close to its first test slice. `unet_repro.data.protocol.GAP` leaves slice 24 out as a gap.
# What that changes was measured once (`studies/04_gap.toml`: the recipe of notebook 06's study baseline,
# 8 channels and 1000 SGD steps, one seed, trained on 0-24 and on 0-23; records in `results/04_gap/runs/`).
# One seed cannot separate a small effect from seed noise (notebook 06's seed pairs show how large that is),
# so read the difference as an order of magnitude.

# %%
from unet_repro.data.protocol import GAP, PROTOCOL

final, gapped = PROTOCOL.final_train_slices(), GAP.final_train_slices()
print(f"final training slices {final[0]}-{final[-1]}; with the gap {gapped[0]}-{gapped[-1]}")
gap_runs = root / "results" / "04_gap" / "runs" if root else None
if gap_runs is not None and gap_runs.is_dir() and len(list(gap_runs.glob("*.json"))) == 2:
    gap = load_records(gap_runs)
    gap = gap[(gap.block == "test") & (gap.tta == "none")].set_index("name")
    gap_table = gap[list(METRICS)].T.assign(difference=lambda d: d["gap_24"] - d["train_0_24"])
    display(gap_table)
    px = gap_table.loc["pixel_error"]
    study = load_records(root / "results" / "06_ablations" / "runs")
    base = study[(study.name == "baseline") & (study.block == "test") & (study.tta == "none")].pixel_error
    # the primary study's collapse rule (studies/06_primary.toml): within a stated distance of "all cell"
    from unet_repro.study.primary import REGISTRATION, collapsed, load_registration
    from unet_repro.study.records import read_records as read_gap_records

    distance = load_registration(root / REGISTRATION).rule.collapse_distance
    all_cell_px = float(expected_all_cell)  # the held-out block's "all cell" score, computed above
    fell = [r["name"] for r in read_gap_records(gap_runs) if collapsed(r, all_cell_px, distance)]
    display(
        Markdown(
            f"Leaving slice 24 out changes the test pixel error from {px.train_0_24:.4f} to {px.gap_24:.4f} "
            f"({px.difference:+.4f}) at this scale, one seed. For scale: the same recipe's test pixel error moves "
            f"by {base.max() - base.min():.4f} between {len(base)} seeds (notebook 06's baseline, trained on 0-19). "
            + (
                f"The run `{'`, `'.join(fell)}` collapsed by the primary study's rule (its test pixel error is "
                f"within {distance:g} of predicting all cell, {all_cell_px:.4f}): a collapsed seed compares "
                "nothing, so this section says nothing yet about whether the neighbouring slice flatters the final "
                "models. How often the study's baseline recipe collapses is counted in notebook 06."
                if fell
                else "One seed cannot tell whether the neighbouring slice flatters the final models."
            )
        )
    )
else:
    print("no gap records here (they live in the repository's results/04_gap/runs): skipped")

# %% [markdown]
# ## How the `ci` recipe was chosen: on the validation block
#
# The paper gives neither the learning rate nor the number of iterations, and the `ci` profile departs from
# its recipe. Those choices come from the trials of `studies/ci_recipe.toml`: the `ci` profile's size (16
# base channels, 572 tiles, 1000 steps, warm-up then cosine decay, the loss of notebook 02), trained on
# slices 0-19 and scored on the **validation** block (slices 20-24) only, one seed and one thread each (the
# profile itself runs on 2 threads, which rounds differently). The rule is notebook 06's: the lowest
# validation pixel error, ties to the lower validation Rand error (`unet_repro.study.recipe.validation_trials`).
# The test block (25-29), on which every number above is reported, played no part. (Before this protocol the
# recipe was picked from trials scored on slices 25-29; those are superseded by these and no longer shown.)
# The trials are produced by code; to run them again (about 14 minutes a trial on one core):
# `python -m unet_repro.sweep studies/ci_recipe.toml --runs-dir results/04_ci_recipe/runs`.

# %%
from IPython.display import Markdown, display

from unet_repro.study import recipe
from unet_repro.study.grid import load_grid
from unet_repro.study.records import read_records

trial_runs = root / "results" / "04_ci_recipe" / "runs" if root else None
if trial_runs is not None and trial_runs.is_dir():
    trial_grid = load_grid(root / "studies" / "ci_recipe.toml")
    on_disk = {r["run_id"]: r["status"] for r in read_records(trial_runs, statuses=None)}
    missing = [s.run_id for s in trial_grid.specs if s.run_id not in on_disk]
    assert not missing, f"trials without a record: {missing}; python -m unet_repro.sweep studies/ci_recipe.toml"
    trial_fields = ("optimizer", "lr", "augment", "iterations", "base_channels")
    trials = recipe.validation_trials(trial_runs, fields=trial_fields)
    display(trials)
    not_ok = {k: v for k, v in on_disk.items() if v != "ok"}
    print("trials without a result (diverged or failed):", not_ok or "none")
    write_table(trials, "04_ci_recipe", RESULTS)
    chosen = trials.iloc[0]
    ci_cfg = profile_config("ci")
    assert tuple(chosen[f] for f in trial_fields) == tuple(getattr(ci_cfg, f) for f in trial_fields), (
        f"validation chose {chosen['name']}; the ci profile should be that trial"
    )
    paper_like = trials[(trials.optimizer == "sgd") & trials.augment.astype(bool)]
    display(
        Markdown(
            f"Validation chose `{chosen['name']}` ({chosen.optimizer}, lr {chosen.lr:g}, "
            f"{'with' if chosen.augment else 'without'} augmentation): validation pixel error "
            f"{chosen.pixel_error:.4f}, against "
            f"{paper_like.pixel_error.min():.4f} at best for the paper's SGD with its augmentation "
            f"({len(trials)} trials, one seed each; the seed study above measures how far one seed moves the "
            f"test numbers). That is the `ci` profile ({ci_cfg.iterations} steps)."
        )
    )
else:
    print("no trial records here (they live in the repository's results/04_ci_recipe/runs): skipped")

# %% [markdown]
# One validation seed per trial cannot separate trials as close as the first two rows: their difference is
# smaller than the standard deviation of the pixel error over the seed study's seeds (checked below). The
# recipe used before this protocol (lr 1e-3, picked on slices 25-29) keeps its own 4-seed study
# (`results/04_ci_recipe/lr_1e-3_seeds/`: the seeds and training of `studies/ci_seeds.toml` at lr 1e-3), so
# what choosing honestly costs or gains can be read off the test block, as a record and not as a choice (the
# profile stays what validation chose):

# %%
before_runs = trial_runs.parent / "lr_1e-3_seeds" if trial_runs is not None else None
if before_runs is not None and before_runs.is_dir() and root is not None and (root / SEED_STUDY).is_dir():
    from unet_repro.study.records import block_means

    before_label, now_label = "lr 1e-3 (chosen on test, before)", "ci: validation's choice"
    compare = pd.concat(
        {before_label: block_means(load_records(before_runs)), now_label: block_means(load_records(root / SEED_STUDY))},
        axis=1,
    )
    display(compare)
    by_name = trials.set_index("name")["pixel_error"]
    print(
        f"test pixel error, mean over the seeds: {compare.loc['pixel_error', (before_label, 'mean')]:.4f} (lr 1e-3) "
        f"against {compare.loc['pixel_error', (now_label, 'mean')]:.4f} (lr {ci_cfg.lr:g}); on validation, one "
        f"seed each: {by_name['adam_1e-3_no_aug']:.4f} against {chosen.pixel_error:.4f}"
    )
    seed_sd = float(spread.set_index("metric").loc["pixel_error", "sd"])
    trial_gap = abs(by_name["adam_1e-3_no_aug"] - chosen.pixel_error)
    print(f"expected: the first two trials closer than one seed-study sd ({seed_sd:.4f}), got {trial_gap:.4f}")
    assert trial_gap < seed_sd
else:
    print("no records of the earlier recipe here (results/04_ci_recipe/lr_1e-3_seeds): skipped")

# %% [markdown]
# ## What this means
#
# A narrow U-Net trained for minutes segments the membranes of slices it never saw: its pixel error on the
# test block is far below that of predicting "all cell", and most of its wrong pixels sit at the edge of a
# membrane, not in the middle of a cell. Its topology is weaker than its pixels: cut into cells it leaves
# fragments and specks, which the Rand and warping errors charge and the pixel error barely sees (notebook 05
# counts them). None of this is the paper's test set, and one seed moves these numbers by the seed study's
# spread. Which of the paper's choices matter (the optimiser, drop-out, large tiles, averaging over rotations)
# is tested in notebook 06's pre-registered primary study; the README's claims ledger keeps the status.

# %% tags=["remove-input"] jupyter={"source_hidden": true}
from unet_repro.study import chapters

display(
    Markdown(chapters.claims_markdown(chapters.read_primary(), ["adam", "no_dropout", "small_tiles_batch4", "tta_d4"]))
)
seed_sd = (
    f"; one seed, and the seed study's standard deviation of the test pixel error is "
    f"{float(spread.set_index('metric').loc['pixel_error', 'sd']):.4f}"
    if root is not None and (root / SEED_STUDY).is_dir()
    else "; one seed"
)
chapter_summary.update(
    Markdown(
        chapters.summary_markdown(
            "(sections 3 and 4) that U-Net, trained with SGD on the 30 ISBI 2012 slices (one large tile per step, the "
            "weighted loss, elastic augmentation) and predicting whole slices by overlap-tile, reaches a pixel error "
            "of 0.0611 on the challenge's test set (Table 1) after 10 hours on one GPU.",
            f"on the test block (slices {held_idx[0]}-{held_idx[-1]}), profile {profile}, tta {cfg.tta}: pixel error "
            f"{best_row.pixel_error:.4f} at its best threshold on that block ({at_test['pixel_error']:.1f}) and "
            f"{fixed_row.pixel_error:.4f} at the one fixed on the validation block (slices "
            f"{blocks['validation'][0]}-{blocks['validation'][-1]}), against {expected_all_cell:.4f} for predicting "
            f"all cell; Rand error {best_row.rand_error:.3f} (the paper's 0.0382), with {pred_cells} predicted cells "
            f"where the label has {true_cells}.",
            f"{cfg.base_channels} base channels (the paper's 64), {summary['iterations']} steps, "
            f"{summary['train_seconds'] / 60:.1f} training minutes on {summary['device']}{seed_sd}; a held-out block "
            "of the training stack, not the challenge's test set.",
        )
    )
)

# %% [markdown]
# ## Appendix: speed
#
# > "[the network] has a very reasonable training time of only 10 hours on a NVidia Titan GPU (6 GB)"
# > (section 4)
#
# Speed is not the paper's claim; it is reported here, and the table's time columns are never compared
# (`measured`). The run's own seconds per iteration come from its log. For the paper's 64-channel network a few
# training steps are timed here (same tile, SGD with momentum 0.99: `unet_repro.training.speed.sgd_step_seconds`)
# and converted: how many of its steps fit into 10 hours, and how long this machine would need for the run's
# number of steps. The paper does not say how many iterations its 10 hours were. Last, the seconds per slice of
# each test-time mode of the prediction above.

# %%
threads = torch.get_num_threads()
torch.set_num_threads(cfg.threads or threads)
t64 = sgd_step_seconds(64, dev)
torch.set_num_threads(threads)
timing = pd.DataFrame(
    [
        {
            "run_seconds_per_iteration": summary["seconds_per_iteration"],
            "run_train_minutes": summary["train_seconds"] / 60,
            "paper_net_seconds_per_iteration": t64,
            "paper_net_iterations_in_10h": 36000 / t64,
            "hours_for_paper_net_at_run_iterations": t64 * summary["iterations"] / 3600,
            "threads": cfg.threads or threads,
            "device": str(dev),
        }
    ]
)
display(timing)
tta_table[["tta", "versions", "predict_seconds_per_slice"]]
