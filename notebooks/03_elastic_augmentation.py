# ---
# jupyter:
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
# # 03. Elastic deformation and the paper's augmentation
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-repro/unet-repro/blob/v0.2.0/notebooks/03_elastic_augmentation.ipynb)
#
# With 30 training slices, augmentation is what teaches the network the invariances it needs. Section 3.1
# of the paper: "Data augmentation is essential to teach the network the desired invariance and robustness
# properties, when only few training samples are available. In case of microscopical images we primarily
# need shift and rotation invariance as well as robustness to deformations and gray value variations.
# Especially random elastic deformations of the training samples seem to be the key concept to train a
# segmentation network with very few annotated images. We generate smooth deformations using random
# displacement vectors on a coarse 3 by 3 grid. The displacements are sampled from a Gaussian distribution
# with 10 pixels standard deviation. Per-pixel displacements are then computed using bicubic
# interpolation. Drop-out layers at the end of the contracting path perform further implicit data
# augmentation."
#
# This chapter draws the field and shows what one draw does to a training tile, measures the paper's setting over
# many draws (is the spread at the control points the paper's 10 px? how far does a pixel move, how much does
# a neighbourhood shrink, do cells merge, split or vanish?) beside a stronger (sigma 20) and a finer (5x5)
# setting, and shows the gray-value and rotation augmentation that training adds. Everything comes from
# `unet_repro.augment.augmenter` and `unet_repro.augment.deformation`; drop-out lives in the model (notebook 01), not here. The
# speed against the `elasticdeform` package is in the appendix.

# %% tags=["remove-input"] jupyter={"source_hidden": true}
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

# %% tags=["parameters", "remove-input"] jupyter={"source_hidden": true}
profile = "ci"  # "ci" (minutes, CPU), "cpu" (about an hour, CPU), "paper" (the paper's configuration, GPU)
out_dir = ""  # results folder; empty means results/ for ci, results/<profile>/ otherwise

# %% tags=["remove-input"] jupyter={"source_hidden": true}
from unet_repro.results import default_results_dir, save_figure, write_table

RESULTS = default_results_dir(profile, out_dir)

from dataclasses import replace
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display
from matplotlib.colors import ListedColormap
from matplotlib.ticker import PercentFormatter
from scipy import ndimage

from unet_repro.augment.augmenter import Augmenter, gray_value_ranges
from unet_repro.augment.deformation import (
    OUT,
    TILE,
    deformation_statistics,
    rigid_shift_change,
    table_kinds,
    training_tile,
)
from unet_repro.augment.elastic import control_positions, elastic_deform, interpolate_controls
from unet_repro.data.isbi2012 import load_isbi2012, split_train_heldout
from unet_repro.study import chapters
from unet_repro.study.timing import interleaved_times

# Sizes per profile: how many random fields and deformed tiles are measured (never what is measured).
N_FIELDS = {"ci": 400, "cpu": 4000, "paper": 4000}[profile]
N_TILES = {"ci": 24, "cpu": 240, "paper": 240}[profile]
N_TIMING = {"ci": 15, "cpu": 50, "paper": 50}[profile]
SEED = 2015
CROP = (TILE - OUT) // 2  # the 388 output window sits 92 px inside the 572 tile
WIN = np.s_[CROP : CROP + OUT, CROP : CROP + OUT]
RED = ListedColormap(["red"])
torch.set_num_threads(1)  # timings against a single-threaded baseline

data = load_isbi2012()

# %% tags=["remove-input"] jupyter={"source_hidden": true}
# The chapter's summary: the cell under "What this means" writes it here once every number in it is computed.
summary = display(Markdown("*The summary appears here once the notebook has run to its end.*"), display_id=True)

# %% [markdown]
# ## The coarse grid and the interpolated field
#
# `elastic_displacement` draws a displacement vector for each point of a 3x3 lattice spanning the tile
# (corners included, the centre point at the tile centre), each component ~ N(0, 10^2) pixels, and
# interpolates it to every pixel with an interpolating cubic spline, separably (rows, then columns).
# The output pixel `p` shows the input at `p + d(p)`. Below, ISBI slice 0 as a 572x572 training tile
# (mirror-extended, as in Fig. 2), the nine drawn vectors in red and the field on a 26-px lattice in black.

# %%
print("training stack:", data.train_images.shape, "labels:", np.unique(data.train_labels))
image0, label0 = training_tile(data.train_images[0], data.train_labels[0])
params = Augmenter.elastic_only().sample(np.random.default_rng(SEED))
field = interpolate_controls(params.controls, (TILE, TILE))
magnitude = np.hypot(field[0], field[1])
rows, cols = control_positions((TILE, TILE))
scale = 5.0
fig, ax = plt.subplots(figsize=(7, 7))
ax.imshow(image0, cmap="gray")
ax.add_patch(plt.Rectangle((CROP, CROP), OUT, OUT, fill=False, ec="yellow", lw=1, ls="--"))
step = 26
rr, cc = np.mgrid[step // 2 : TILE : step, step // 2 : TILE : step]
ax.quiver(
    cc,
    rr,
    scale * field[1][rr, cc],
    scale * field[0][rr, cc],
    angles="xy",
    scale_units="xy",
    scale=1,
    color="black",
    width=0.003,
)
R, C = np.meshgrid(rows, cols, indexing="ij")
ax.quiver(
    C,
    R,
    scale * params.controls[1],
    scale * params.controls[0],
    angles="xy",
    scale_units="xy",
    scale=1,
    color="red",
    width=0.007,
)
ax.plot(C, R, "o", color="red", ms=5)
ax.set_title(
    f"One draw of the paper's field: nine random vectors (red), interpolated smoothly (black);\n"
    f"pixels move {magnitude.min():.0f} to {magnitude.max():.0f} px (arrows drawn x{scale:g}; yellow: the "
    f"{OUT}x{OUT} output window)"
)
ax.set_xlim(-40, TILE + 40)
ax.set_ylim(TILE + 40, -40)
save_figure(fig, "03_field", RESULTS)
plt.show()
plt.close(fig)

centre = rows[1]  # the middle control point of a 572 tile lies between pixels
err_c = max(
    abs(float(ndimage.map_coordinates(field[a], [[centre], [centre]], order=1)[0]) - params.controls[a][1, 1])
    for a in range(2)
)
print(
    f"middle control point at ({centre}, {centre}); the field read there by linear interpolation differs from "
    f"the drawn vector by {err_c:.1e} px"
)
assert centre == (TILE - 1) / 2 and err_c < 1e-3

# %% [markdown]
# ## What one draw does to a training tile
#
# Image and label are deformed with one field: the image with bicubic interpolation, the label with
# nearest neighbour (it keeps exactly its values 0 and 255), borders mirrored as in the overlap-tile
# strategy. Side by side, a deformed tile looks like the original: the difference is a few pixels. So the
# figure shows the difference itself, on the output window, for the draw above: a checkerboard of original
# and deformed squares (edges break where the content moved), the membranes before and after in two colours,
# a zoom, and the size of the displacement.

# %%
elastic = Augmenter.elastic_only()
img_d, lab_d, _ = elastic.apply(params, image0, label0)
square = 48
yy, xx = np.mgrid[:OUT, :OUT]
board = np.where((yy // square + xx // square) % 2 == 0, image0[WIN], img_d[WIN])
before, after = label0[WIN] == 0, lab_d[WIN] == 0  # membrane pixels
diff_rgb = np.repeat(0.45 * image0[WIN][..., None], 3, axis=-1)
diff_rgb[before & ~after] = (1.0, 0.0, 1.0)  # membrane only before: magenta
diff_rgb[after & ~before] = (0.0, 0.9, 0.0)  # membrane only after: green
diff_rgb[before & after] = (1.0, 1.0, 1.0)  # membrane in both: white
zoom = 96
zy, zx = np.unravel_index(np.argmax(magnitude[WIN][zoom:-zoom, zoom:-zoom]), (OUT - 2 * zoom, OUT - 2 * zoom))
zy, zx = zy + zoom // 2, zx + zoom // 2  # a zoom window where the draw moves pixels most, inside the output window
fig, axes = plt.subplots(2, 2, figsize=(12, 12.6))
axes = axes.ravel()
axes[0].imshow(board, cmap="gray", vmin=0, vmax=1)
axes[0].set_title(f"(a) original and deformed in alternating {square}-px squares:\nmembranes jump at the square edges")
axes[1].imshow(diff_rgb)
axes[1].add_patch(plt.Rectangle((zx, zy), zoom, zoom, fill=False, ec="yellow", lw=2))
axes[1].set_title("(b) membranes before (magenta), after (green), in both (white)")
axes[2].imshow(diff_rgb[zy : zy + zoom, zx : zx + zoom], interpolation="nearest")
axes[2].set_title(f"(c) zoom on the yellow box ({zoom}x{zoom} px):\nthe green network is the magenta one, moved")
im = axes[3].imshow(magnitude[WIN], cmap="viridis")
fig.colorbar(im, ax=axes[3], fraction=0.046, label="|displacement| (px)")
axes[3].set_title("(d) how far each pixel moves: smoothly varying")
for a in axes:
    a.set_axis_off()
fig.suptitle(
    f"One draw of the paper's field on the {OUT}x{OUT} output window: the content moves by "
    f"{magnitude[WIN].min():.0f} to {magnitude[WIN].max():.0f} px,\nsmoothly, and the cells keep their shapes",
    fontsize=14,
)
fig.tight_layout()
save_figure(fig, "03_deformed_examples", RESULTS)
plt.show()
plt.close(fig)
print(
    f"this draw: {np.mean(before != after):.1%} of the window's label pixels change class; membranes are "
    f"{before.mean():.1%} of the window"
)

# %% [markdown]
# ## How strong is the paper's setting? Statistics over many draws
#
# For the paper's setting (3x3 grid, sigma 10 px) and, for comparison, a stronger (sigma 20) and a finer
# (5x5) setting, `deformation_statistics` measures (one seed for all settings, so the sigma-20 fields are the
# sigma-10 fields doubled):
#
# - **control_std_px**: the standard deviation of the field at the control points (paper: 10 px). The
#   interpolant passes through the drawn vectors, so this is the drawn spread; the centre of a 572 tile
#   lies between pixels, where the field is read with linear interpolation (the error printed above).
# - **pixel_rms_px**: the root-mean-square displacement per axis over all pixels, smaller: between
#   control points the spline averages neighbouring vectors.
# - smoothness: **max_step_px** (largest change of the displacement between neighbouring pixels, median
#   over draws) and **min_jacobian_det** (smallest local area change over all draws: 0.8 means a pixel's
#   neighbourhood shrinks to 80% of its area; <= 0 would be a fold).
# - on ISBI training tiles (random slice, mirror-extended to 572, deformed, then the 388 output window):
#   **label_changed_frac**, the fraction of label pixels that change class, and the cells (4-connected regions
#   of label 255) before and after, with how many **merge** (a region after holds pixels of two original
#   cells), **split** or **vanish** (original cells at least 40 px = 4 sigma inside the window that are
#   found in two or more regions after, or nowhere).

# %%
configs = [("paper: 3x3 grid, sigma 10", 3, 10.0), ("3x3 grid, sigma 20", 3, 20.0), ("5x5 grid, sigma 10", 5, 10.0)]
measured = [
    deformation_statistics(
        data.train_images, data.train_labels, name, grid, sigma, N_FIELDS, N_TILES, seed=SEED, margin=40
    )
    for name, grid, sigma in configs
]
stats = pd.DataFrame([m.row for m in measured])
paper = stats["config"].str.startswith("paper")
row = stats[paper].iloc[0]
stats

# %% tags=["remove-input"] jupyter={"source_hidden": true}
by_config = stats.set_index("config")
display(
    Markdown(
        f"**On a {TILE} tile the paper's setting is gentle.** A pixel moves by {row.pixel_rms_px:.1f} px (rms per "
        f"axis), {row.pixel_rms_px / TILE:.1%} of the tile's side; neighbouring pixels move within "
        f"{row.max_step_px:.2f} px of each other (median over draws of the largest step); and in {N_FIELDS} draws "
        f"no pixel's neighbourhood shrinks below {row.min_jacobian_det:.0%} of its area (smallest Jacobian "
        f"determinant {row.min_jacobian_det:.2f}; none folds). Doubling sigma brings that to "
        f"{by_config.loc['3x3 grid, sigma 20', 'min_jacobian_det']:.2f}, a 5x5 grid to "
        f"{by_config.loc['5x5 grid, sigma 10', 'min_jacobian_det']:.2f}. Per tile of {row.cells_before:.0f} cells, "
        f"{row.merged_per_tile:.2g} merge, {row.split_per_tile:.2g} split (nearest-neighbour resampling can cut "
        f"a cell at a thin neck) and {row.vanished_per_tile:.2g} vanish."
    )
)

# %% [markdown]
# ## What the changed label pixels mean
#
# A label pixel *changes* when its class (membrane or cell) after the deformation differs from its class
# before, at the same place. That fraction sounds large for a gentle field, but ISBI membranes are thin: moving
# a membrane by about its own width turns most of its pixels into cell, and as many cell pixels beside it into
# membrane, while no cell changes shape. The yardstick: the same fraction under a *rigid* shift of the labels
# by a given distance (`rigid_shift_change`, averaged over eight directions and all 30 slices, on the central
# 388x388 pixels a 572 tile's output window covers).

# %%
shifts = np.arange(0, 21)
rigid = rigid_shift_change(data.train_labels, shifts)
edge = (data.train_labels.shape[1] - OUT) // 2  # where the output window of a tile lies in its slice
membrane = float((data.train_labels[:, edge : edge + OUT, edge : edge + OUT] == 0).mean())
equivalent = {r.config: float(np.interp(r.label_changed_frac, rigid, shifts)) for r in stats.itertuples()}
fig, ax = plt.subplots(figsize=(8, 4.2))
ax.plot(shifts, rigid, "ko-", ms=4, label="rigid shift of the labels")
for k, r in enumerate(stats.itertuples()):
    ax.axhline(r.label_changed_frac, color=f"C{k}", ls="--", lw=1)
    ax.plot(equivalent[r.config], r.label_changed_frac, "o", color=f"C{k}", label=f"elastic, {r.config}")
ax.axhline(membrane, color="grey", ls=":", lw=1, label="membrane pixels of the window")
ax.set(xlabel="rigid shift (px)", ylabel="label pixels that change class", ylim=(0, None))
ax.yaxis.set_major_formatter(PercentFormatter(1.0))
ax.legend(fontsize=8, loc="lower right")
ax.set_title(
    f"The paper's field changes {row.label_changed_frac:.1%} of label pixels, as many as a rigid shift by "
    f"{equivalent[row.config]:.1f} px:\nthe thin membranes move, the cells keep their shapes"
)
save_figure(fig, "03_label_change", RESULTS)
plt.show()
plt.close(fig)

# %% tags=["remove-input"] jupyter={"source_hidden": true}
display(
    Markdown(
        f"Under the paper's field {row.label_changed_frac:.1%} of the label pixels in the output window change "
        f"class: about what a rigid shift by {equivalent[row.config]:.1f} px does to the same labels, whose "
        f"membranes are {membrane:.0%} of the pixels. So the number says how far the membranes move, not how much "
        f"the cells are distorted; distortion shows in the topology, {row.merged_per_tile:.2g} merges and "
        f"{row.vanished_per_tile:.2g} vanished cells per tile. The training label moves with its image, so none of "
        "this is label noise."
    )
)

# %% [markdown]
# ### Checks

# %%
se_paper = 10.0 / np.sqrt(2 * 2 * 9 * N_FIELDS)  # SE of the std of 2 axes x 9 points x N_FIELDS normals
ok = abs(row.control_std_px - 10.0) < 4 * se_paper
print(f"expected: control displacement std 10 px (+- {4 * se_paper:.2f}), got: {row.control_std_px:.3f}, match: {ok}")
assert ok
ok = row.min_jacobian_det > 0
print(f"expected: no folds (min Jacobian determinant > 0), got: {row.min_jacobian_det:.3f}, match: {ok}")
assert ok
_, lab_check = elastic_deform(image0, label0, np.random.default_rng(SEED))
ok = set(np.unique(lab_check)) <= {0, 255}
print(f"expected: label values within {{0, 255}}, got: {sorted(set(np.unique(lab_check).tolist()))}, match: {ok}")
assert ok

# %% [markdown]
# ## Gray values, rotation and the whole training pipeline
#
# The paper names gray-value variations and rotation and shift invariance, without ranges. `Augmenter`
# (what training calls once per sample) uses: rotation by any angle (EM sections have no preferred
# orientation), flips of either axis with probability 1/2, shifts over one period of the pooling grid
# (four 2x2 poolings make the network shift-equivariant only in steps of $2^4$ px), and gray values from the
# spread between the training slices (never the held-out ones): `gray_value_ranges` measures how far the
# per-slice means and standard deviations stray from their averages and rounds that to the nearest 0.05;
# brightness is uniform in $\pm b$, contrast and gamma log-uniform in $[1/c, c]$. The cell below prints
# the measurement and checks that `Augmenter`'s defaults are exactly these ranges. These choices are ours,
# not the paper's. All geometric transforms and the elastic field form one coordinate map, so the image is
# interpolated once.

# %%
train_idx = split_train_heldout(data.train_images.shape[0])[0]
gray = gray_value_ranges(data.train_images[train_idx])
default = Augmenter()
display(
    Markdown(
        f"On training slices {train_idx[0]}-{train_idx[-1]}, per-slice means stray by "
        f"{gray.mean_offset[0]:+.3f}..{gray.mean_offset[1]:+.3f} from their average and per-slice standard "
        f"deviations by a factor {gray.std_factor[0]:.3f}..{gray.std_factor[1]:.3f}, so brightness is uniform in "
        f"[{gray.brightness[0]:g}, {gray.brightness[1]:g}] and contrast and gamma are log-uniform in "
        f"[{gray.contrast[0]:g}, {gray.contrast[1]:g}]. Rotation: up to {default.max_rotation_deg:g} degrees either "
        f"way; flips: probability {default.p_flip_rows:g} per axis; shift: up to {default.max_shift:g} px per axis."
    )
)
ok = (default.brightness, default.contrast, default.gamma) == (gray.brightness, gray.contrast, gray.gamma)
print(
    f"expected: Augmenter's gray-value defaults = the measured ranges, got: "
    f"{(default.brightness, default.contrast, default.gamma)}, match: {ok}"
)
assert (
    ok
    and default.max_shift == 2**4
    and default.max_rotation_deg == 180
    and default.p_flip_rows == default.p_flip_cols == 0.5
)

base = Augmenter.none()
identity = base.sample(np.random.default_rng(0))  # parameters that change nothing
examples = [
    ("original", identity),
    (f"brightness {gray.brightness[0]:g}", replace(identity, brightness=gray.brightness[0])),
    (f"contrast {gray.contrast[0]:g}", replace(identity, contrast=gray.contrast[0])),
    (f"gamma {gray.gamma[1]:g}", replace(identity, gamma=gray.gamma[1])),
    ("rotation 30 deg", replace(identity, rotation_deg=30.0)),
    ("rotation 45 deg, flip cols", replace(identity, rotation_deg=45.0, flip_cols=True)),
    ("full Augmenter (draw 1)", Augmenter().sample(np.random.default_rng(SEED + 1))),
    ("full Augmenter (draw 2)", Augmenter().sample(np.random.default_rng(SEED + 2))),
]
fig, axes = plt.subplots(2, 4, figsize=(13, 6.8))
for ax, (title, p) in zip(axes.flat, examples, strict=True):
    img_a, lab_a, _ = Augmenter().apply(p, image0, label0)
    ax.imshow(img_a[WIN], cmap="gray", vmin=0, vmax=1)
    if title.split()[0] not in ("original", "brightness", "contrast", "gamma"):  # geometry moves the label: draw it
        ax.imshow(np.ma.masked_where(lab_a[WIN] != 0, lab_a[WIN]), cmap=RED, alpha=0.3)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.suptitle(
    "Gray values vary within the spread of the training slices (top: image only); rotation, flips and the full\n"
    "augmentation turn the whole tile, label with it (bottom: membrane label in red; 388x388 output windows)"
)
save_figure(fig, "03_gray_rotation", RESULTS)
plt.show()
plt.close(fig)

# %% [markdown]
# ## Where this departs from the paper
#
# - **Interpolation kernels.** The field is the paper's: a 3x3 grid, N(0, 10^2) px, bicubic (an
#   interpolating cubic spline with mirror-symmetric ends, the same as `elasticdeform`). The *image* is
#   resampled with Keys' bicubic convolution (a = -0.75, `torch.grid_sample`); the paper does not say how
#   it resampled the image. Labels use nearest neighbour, weight maps bilinear.
# - **Borders** are mirrored (as the overlap-tile strategy extrapolates), whatever the transform.
# - **Ranges the paper does not give** (rotation, flips, shift, brightness, contrast, gamma) are our
#   choices, justified above. The paper gives none for them.
# - **Drop-out** ("further implicit data augmentation") is part of the model, not of this module.
# - Nearest-neighbour resampling can change a label's topology: the table counts how often cells merge,
#   split or vanish under the paper's setting.

# %% [markdown]
# ## What this means
#
# At the paper's setting, on a 572 tile, elastic deformation is mild: it moves and gently bends the content, a
# little differently everywhere, and never folds it or merges cells. It shows the network the same kind of
# membranes in slightly different places and shapes, a cheap way to stretch 30 training slices. Whether that is
# "the key concept" for training on so few images cannot be seen in a picture: notebook 06's primary study tests
# it (no augmentation at all, and augmentation without the elastic part), and the README's claims ledger keeps
# the status.

# %% tags=["remove-input"] jupyter={"source_hidden": true}
display(Markdown(chapters.claims_markdown(chapters.read_primary(), ["no_augmentation", "no_elastic"])))
summary.update(
    Markdown(
        chapters.summary_markdown(
            "(section 3.1) that random elastic deformations, displacements drawn on a 3x3 grid with a 10 px "
            'standard deviation and interpolated bicubically, "seem to be the key concept" for training with very '
            "few annotated images.",
            f"the field is the paper's (spread {row.control_std_px:.2f} px at the control points) and gentle on a "
            f"{TILE} tile: a pixel moves {row.pixel_rms_px:.1f} px (rms per axis), no neighbourhood shrinks below "
            f"{row.min_jacobian_det:.0%} of its area, nothing folds. It changes {row.label_changed_frac:.1%} of the "
            f"label pixels, what a rigid shift by {equivalent[row.config]:.1f} px does to these thin membranes; per "
            f"tile of {row.cells_before:.0f} cells, {row.merged_per_tile:.2g} merge and {row.split_per_tile:.2g} split.",
            f"{N_FIELDS} random fields and {N_TILES} ISBI training tiles per setting; nothing trained here: whether "
            "augmentation helps training is tested in notebook 06 (see the end of this chapter).",
        )
    )
)

# %% [markdown]
# ## Appendix: speed
#
# Speed is not the paper's claim. `elasticdeform.deform_random_grid([image, label], sigma=10, points=3,
# order=[3, 0])` is the usual package (same field: a cubic B-spline through the 3x3 grid). Ours resamples with
# `torch`'s bicubic `grid_sample` (Keys' cubic convolution, no spline prefilter) and builds the coordinate map
# with one small matrix product. Timed side by side (`unet_repro.study.timing.interleaved_times`, median); times are
# reported, not compared. `benchmarks/augment.py` prints the same ratio and the `scipy.ndimage` route and keeps
# them in `results/benchmarks/augment.csv`, the one place this speed figure is kept.

# %%
try:
    import elasticdeform
except ImportError:  # a benchmark-only dependency: pip install --no-binary elasticdeform elasticdeform
    elasticdeform = None
    print("elasticdeform not installed: its timing is left empty")

methods = {"unet_repro": partial(elastic_deform, image0, label0, np.random.default_rng(SEED))}
if elasticdeform is not None:
    np.random.seed(SEED)  # elasticdeform draws from numpy's global state
    methods["elasticdeform"] = partial(
        elasticdeform.deform_random_grid, [image0, label0], sigma=10, points=3, order=[3, 0]
    )
times = interleaved_times(methods, rounds=N_TIMING, warmup=2)
ms_ours = 1e3 * float(np.median(times["unet_repro"]))
ms_ed = 1e3 * float(np.median(times["elasticdeform"])) if elasticdeform is not None else float("nan")
stats["ms_unet_repro"] = np.where(paper, ms_ours, np.nan)
stats["ms_elasticdeform"] = np.where(paper, ms_ed, np.nan)
stats["speedup"] = stats["ms_elasticdeform"] / stats["ms_unet_repro"]
print(f"{TILE}x{TILE} image + label: unet_repro {ms_ours:.1f} ms, elasticdeform {ms_ed:.1f} ms")
if elasticdeform is not None:
    print(f"expected: ratio >= 2 (the benchmark's target), got: {ms_ed / ms_ours:.1f}, match: {ms_ed / ms_ours >= 2}")

# %% tags=["remove-input"] jupyter={"source_hidden": true}
# How the table is compared on a rerun: every draw is seeded; each tolerance allows about 4 standard errors of
# its statistic (unet_repro.augment.deformation.table_kinds); timings are only reported.
print("written:", write_table(stats, "03_augmentation", RESULTS, kinds=table_kinds(measured)).name)
