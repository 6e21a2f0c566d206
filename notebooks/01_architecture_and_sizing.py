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
# # 01. The architecture and its tile arithmetic
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-repro/unet-repro/blob/v0.2.0/notebooks/01_architecture_and_sizing.ipynb)
#
# Section 2 of the paper: *"The network architecture is illustrated in Figure 1. It consists of a
# contracting path (left side) and an expansive path (right side). The contracting path follows the
# typical architecture of a convolutional network. It consists of the repeated application of two 3x3
# convolutions (unpadded convolutions), each followed by a rectified linear unit (ReLU) and a 2x2 max
# pooling operation with stride 2 for downsampling. [...] In total the network has 23 convolutional layers."*
#
# This chapter derives every number of Fig. 1 by hand (`unet_repro.model.sizing`, pure arithmetic), then checks
# it against the torch model (`unet_repro.model.unet.UNet`): the feature-map sizes, the 23 layers, the parameter
# count, and the FLOPs of one tile. Then it asks which tile sizes are valid, how 572-pixel tiles cover a
# 512x512 ISBI slice (the overlap-tile strategy of Fig. 2), and why the paper favours large tiles.

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

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from unet_repro.model import sizing
from unet_repro.model.unet import UNet, count_flops, trace_feature_maps
from unet_repro.study import chapters

# %% tags=["remove-input"] jupyter={"source_hidden": true}
# The chapter's summary: the cell under "What this means" writes it here once every number in it is computed.
summary = display(Markdown("*The summary appears here once the notebook has run to its end.*"), display_id=True)

# %% [markdown]
# ## Fig. 1 by hand
# Each unpadded 3x3 convolution removes one pixel on every side (size - 2), each 2x2 max pooling halves
# the size, each 2x2 up-convolution doubles it and halves the channels. A k x k convolution from C to C'
# channels has k*k*C*C' weights plus C' biases and costs 2*k*k*C*C' FLOPs per output pixel (one multiply
# and one add per weight). `sizing.feature_maps` walks the network with exactly these rules and nothing else.

# %%
TILE = 572
hand = pd.DataFrame([vars(r) for r in sizing.feature_maps(TILE)])
hand.insert(0, "index", range(len(hand)))
hand

# %% [markdown]
# The numbers in the `size` and `channels` columns are the ones printed in Fig. 1 (572 -> 570 -> 568, ...,
# 28x28x1024 at the bottom, 388x388x2 at the output). Now the model: a forward hook on every convolution of
# `UNet()` records what it really produces (on the meta device, so nothing is computed).

# %%
model = UNet()  # the paper's defaults: 64 base channels, depth 4, valid padding, 2x2 up-convolutions
traced = trace_feature_maps(model, TILE)
hand_convs = hand[hand.layer.isin(["conv3x3+ReLU", "upconv2x2", "conv1x1"])]
hand_seq = [(size, ch) for size, ch in zip(hand_convs["size"], hand_convs["channels"], strict=False)]
model_seq = [(size, ch) for _, size, ch in traced]
print(
    f"convolutional layers: expected 23, by hand {len(hand_convs)}, in the model {len(traced)}, "
    f"match: {len(hand_convs) == len(traced) == 23}"
)
print(f"feature-map sizes and channels, layer by layer, match: {hand_seq == model_seq}")
assert len(traced) == 23 and hand_seq == model_seq

# %% [markdown]
# ### Parameters: 31,030,658
# The paper does not print the parameter count; it follows from Fig. 1. By hand, stage by stage, against
# `sum(p.numel())` of the model's parameters:

# %%
hand_stage = hand.groupby("stage", sort=False)["params"].sum()
model_stage = model.stage_parameters()
stages = pd.DataFrame({"by hand": hand_stage.drop("input"), "model": pd.Series(model_stage)})
stages["match"] = stages["by hand"] == stages["model"]
total_hand, total_model = int(hand["params"].sum()), sum(p.numel() for p in model.parameters())
print(stages)
print(
    f"\ntotal parameters: expected 31030658, by hand {total_hand}, model {total_model}, "
    f"match: {total_hand == total_model == 31030658}"
)
assert total_hand == total_model == 31030658 and stages["match"].all()

# %% [markdown]
# ### FLOPs of one 572x572 tile
# `torch.utils.flop_counter` counts 2 FLOPs per multiply-add of every convolution (ReLU, pooling and
# concatenation count nothing). Counting on the meta device costs no arithmetic.

# %%
flops_hand, flops_torch = int(hand["flops"].sum()), count_flops(model.config, TILE)
print(
    f"FLOPs per 572x572 tile: by hand {flops_hand:,}, torch's counter {flops_torch:,}, "
    f"match: {flops_hand == flops_torch}  ({flops_torch / 1e9:.1f} GFLOPs)"
)
assert flops_hand == flops_torch

architecture = hand[["index", "stage", "layer", "size", "channels", "params", "flops"]].copy()
write_table(architecture, "01_architecture", RESULTS)

# %% [markdown]
# ## Which tile sizes are valid?
# *"To allow a seamless tiling of the output segmentation map, it is important to select the input tile
# size such that all 2x2 max-pooling operations are applied to a layer with an even x- and y-size."*
# (section 2). For depth 4 that is every size that is 12 modulo 16, starting at 188 (output 4x4):

# %%
valid = sizing.valid_input_sizes(150, 800)
print(valid)
print(f"all = 12 mod 16 from 188: {valid == list(range(188, 801, 16))}; output of 188: {sizing.output_size(188)}")
assert valid == list(range(188, 801, 16)) and sizing.output_size(188) == 4
try:
    UNet(base_channels=4)(__import__("torch").zeros(1, 1, 512, 512))
except ValueError as err:
    print("a 512x512 input is refused:", err)

# %% [markdown]
# The context border is the same for every tile size: an output pixel of a 572 tile is computed from a
# 92-pixel margin on each side, `(572 - 388) / 2`. The largest input window any one output pixel depends
# on (`sizing.receptive_field`) is 204 pixels wide, since pooling windows are aligned to the tile.

# %%
print(f"border: {sizing.border(TILE)} px per side, receptive field: {sizing.receptive_field()} px")
assert sizing.border(TILE) == 92 and sizing.receptive_field() == 204

# %% [markdown]
# ## Why large tiles: efficiency vs tile size
# *"To minimize the overhead and make maximum use of the GPU memory, we favor large input tiles over a
# large batch size"* (section 3). A valid-padding U-Net throws away a border of 92 pixels on each side of
# every tile: the fraction of input pixels that end up with a prediction, and the FLOPs spent per output
# pixel, both improve with the tile size.

# %%
sizes = [s for s in valid if s <= 764]
rows = []
for s in sizes:
    out = sizing.output_size(s)
    flops = count_flops(model.config, s)
    rows.append(
        {
            "input": s,
            "output": out,
            "efficiency": round(out**2 / s**2, 6),
            "gflops": round(flops / 1e9, 3),
            "mflops_per_output_pixel": round(flops / out**2 / 1e6, 3),
        }
    )
tiles = pd.DataFrame(rows)
write_table(tiles, "01_tile_sizes", RESULTS)
tiles[tiles.input.isin([188, 284, 380, 476, 572, 668, 764])]

# %%
by_input = tiles.set_index("input")
r572, r188 = by_input.loc[TILE], by_input.loc[188]
fig, ax = plt.subplots(1, 2, figsize=(10, 3.9))
ax[0].plot(tiles.input, tiles.efficiency, "o-", ms=3)
ax[0].set(xlabel="input tile size (px)", ylabel="output pixels / input pixels", title="tile efficiency")
ax[1].plot(tiles.input, tiles.mflops_per_output_pixel, "o-", ms=3, color="C1")
ax[1].set(
    xlabel="input tile size (px)", ylabel="MFLOPs per output pixel", title="cost per predicted pixel", yscale="log"
)
for a in ax:
    a.axvline(TILE, color="grey", ls="--", lw=1)
    a.text(TILE + 6, 0.9, "paper: 572", color="grey", transform=a.get_xaxis_transform())
fig.suptitle(
    f"Large tiles waste less: a {TILE} tile predicts {r572.efficiency:.0%} of its input pixels, a 188 tile "
    f"{r188.efficiency:.2%}, at {r188.mflops_per_output_pixel / r572.mflops_per_output_pixel:.0f}x the cost per pixel"
)
fig.tight_layout()
save_figure(fig, "01_tile_efficiency", RESULTS)
plt.show()
plt.close(fig)

print(
    f"572 tile: {r572.efficiency:.1%} of the input pixels get a prediction, "
    f"{r572.mflops_per_output_pixel:.2f} MFLOPs per output pixel; a 188 tile: "
    f"{r188.mflops_per_output_pixel:.0f} MFLOPs per output pixel"
)

# %% [markdown]
# ## The overlap-tile strategy on a 512x512 ISBI slice (Fig. 2)
# *"To predict the pixels in the border region of the image, the missing context is extrapolated by
# mirroring the input image."* Output windows of 388 pixels are placed on a grid of multiples of 16
# (`sizing.tile_layout`), so that every tile sees the slice on the same pooling grid and the stitched
# prediction equals the prediction of one big tile exactly (tested in `tests/test_inference.py`). A 512x512
# slice needs two windows per axis, at 0 and 128 (overlapping by 260 pixels); each 572x572 input tile reaches 92 pixels beyond its
# window, and wherever that is beyond the slice the input is the slice's mirror image.

# %%
from unet_repro.data.isbi2012 import load_isbi2012
from unet_repro.model.sizing import mirror_canvas

image = load_isbi2012().train_images[0]
starts, out, b = sizing.tile_layout(image.shape[0], TILE)
extent = starts[-1] + out
mirrored = mirror_canvas(image, (extent, extent), b)  # the canvas overlap-tile prediction cuts tiles from
overlap = pd.DataFrame(
    [
        {
            "slice_size": image.shape[0],
            "tile_input": TILE,
            "tile_output": out,
            "border": b,
            "tiles_per_axis": len(starts),
            "tiles": len(starts) ** 2,
            "window_starts": " ".join(map(str, starts)),
            "predicted_extent": extent,
            "input_pixels_processed": len(starts) ** 2 * TILE**2,
            "input_per_output_pixel": round(len(starts) ** 2 * TILE**2 / image.size, 4),
        }
    ]
)
write_table(overlap, "01_overlap_tile", RESULTS)
print(f"windows at {starts} per axis, overlapping by {out - (starts[1] - starts[0])} px")
assert starts == [0, 128] and out - (starts[1] - starts[0]) == 260
overlap.T

# %%
fig, ax = plt.subplots(figsize=(6.5, 6.5))
ax.imshow(mirrored, cmap="gray", extent=(-b, extent + b, extent + b, -b))
ax.add_patch(plt.Rectangle((0, 0), 512, 512, fill=False, ec="white", lw=2.5, ls=":"))
for k, (y, x) in enumerate([(y, x) for y in starts for x in starts]):
    c = f"C{k}"
    ax.add_patch(plt.Rectangle((x, y), out, out, fill=False, ec=c, lw=2))
    ax.add_patch(plt.Rectangle((x - b, y - b), TILE, TILE, fill=False, ec=c, lw=1, ls="--"))
ax.set(
    xlim=(-b - 5, extent + b + 5),
    ylim=(extent + b + 5, -b - 5),
    title=f"{len(starts) ** 2} tiles cover a 512x512 slice: inputs of {TILE} (dashed) around outputs of {out} "
    f"(solid)\noverlapping by {out - (starts[1] - starts[0])} px; outside the slice (dotted) the input is mirrored",
)
save_figure(fig, "01_overlap_tile", RESULTS)
plt.show()
plt.close(fig)

print(
    f"{len(starts) ** 2} tiles of {TILE}x{TILE} cover the 512x512 slice: {overlap.input_per_output_pixel[0]} input "
    f"pixels are processed per predicted pixel."
)

# %% [markdown]
# ## Valid vs same padding, and the other variants
# Many re-implementations pad the convolutions ("same") so that the output has the size of the input,
# use bilinear up-sampling, or add batch normalisation. None of these is the paper's network; the package
# offers each as an argument and keeps the paper's as the default. Same padding needs an input that is a
# multiple of 16; it predicts every input pixel but the border pixels see zero padding instead of image
# context, which is why the paper uses valid convolutions and mirroring instead. For a like-for-like cost
# comparison: FLOPs per output pixel.

# %%
variants = {
    "paper (valid, up-conv)": dict(),
    "same padding": dict(padding="same"),
    "bilinear up-sampling": dict(upsampling="bilinear"),
    "batch norm": dict(batch_norm=True),
}
rows = []
for name, kw in variants.items():
    m = UNet(**kw)
    n = TILE if m.config.padding == "valid" else 576
    o = sizing.output_size(n, padding=m.config.padding)
    f = count_flops(m.config, n)
    rows.append(
        {
            "variant": name,
            "input": n,
            "output": o,
            "params": sum(p.numel() for p in m.parameters()),
            "gflops": round(f / 1e9, 3),
            "mflops_per_output_pixel": round(f / o**2 / 1e6, 3),
        }
    )
variants_table = pd.DataFrame(rows)
write_table(variants_table, "01_variants", RESULTS)
v = variants_table.set_index("variant")
assert v.loc["same padding", "params"] == v.loc["paper (valid, up-conv)", "params"] == 31030658
assert v.loc["same padding", "mflops_per_output_pixel"] < v.loc["paper (valid, up-conv)", "mflops_per_output_pixel"]
assert v.loc["bilinear up-sampling", "params"] < v.loc["paper (valid, up-conv)", "params"]
variants_table

# %% [markdown]
# The same-padding network has the same 31,030,658 parameters (asserted above); on a 576 tile it predicts all 576x576
# pixels for fewer FLOPs per pixel than a 572 valid tile (the table), but its border predictions are made
# from zero-padded context. The bilinear variant has fewer parameters (its 1x1 convolutions replace the 2x2
# up-convolutions); batch norm adds a scale and a shift per channel and drops the convolution biases.

# %% tags=["remove-input"] jupyter={"source_hidden": true}
print(f"tables written to {RESULTS}:", sorted(p.name for p in RESULTS.glob("01_*.csv")))

# %% [markdown]
# ## What this means
#
# Fig. 1 is fully determined by a handful of rules, and the model follows them: the layer sizes, the layer
# count and the parameter count are the paper's network exactly, not an approximation of it (the README's
# claims ledger lists this claim as *exact*). The tile arithmetic explains the paper's preference for large
# tiles: a valid-padding network throws away a fixed border, so small tiles pay for context they never
# predict. Whether that preference, or the variants above, changes what the network learns is not arithmetic:
# notebook 06's primary study tests it, and the README's claims ledger keeps the status.

# %% tags=["remove-input"] jupyter={"source_hidden": true}
display(Markdown(chapters.claims_markdown(chapters.read_primary(), ["small_tiles_batch4", "same_padding", "bilinear"])))
summary.update(
    Markdown(
        chapters.summary_markdown(
            f"(section 2, Fig. 1) that a network of {len(traced)} convolutional layers, unpadded, maps a {TILE}x{TILE} "
            f"tile to a {sizing.output_size(TILE)}x{sizing.output_size(TILE)} segmentation; it prints no parameter "
            "count.",
            f"the same network derived by hand and counted in the torch model, layer by layer: {len(traced)} layers, "
            f"{total_model:,} parameters, {flops_torch / 1e9:.1f} GFLOPs per {TILE} tile, a {sizing.border(TILE)}-px "
            f"border lost per side. Valid tiles are {valid[0]}, {valid[1]}, ... (every 16 px); a {TILE} tile predicts "
            f"{r572.efficiency:.0%} of its input, and {overlap.tiles[0]} tiles cover a 512x512 ISBI slice.",
            "the paper's network itself (64 base channels), counted, not run: nothing trained (ISBI slice 0 only "
            "illustrates the tiling).",
        )
    )
)
