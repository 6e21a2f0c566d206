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
# # 05. Warping, Rand and pixel error: the ISBI 2012 evaluation
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-repro/unet-repro/blob/v0.2.0/notebooks/05_warping_error_evaluation.ipynb)
#
# Table 1 of the paper ranks the EM segmentation challenge entries by three numbers that the ISBI 2012
# challenge server computed: warping error, Rand error and pixel error. Section 3.3: *"The u-net
# (averaged over 7 rotated versions of the input data) achieves without any further pre- or
# postprocessing a warping error of 0.0003529 (the new best score, see Table 1) and a rand-error of
# 0.0382."* Table 1 adds the pixel error, 0.0611.
#
# No Python library computes these numbers the way the server did (it ran the Fiji classes of
# `trainableSegmentation.metrics`). `unet_repro.metrics` reimplements them exactly: thresholds,
# connectivity, simple-point warping, the classification of mismatches, the foreground-restricted Rand
# bookkeeping, and the watershed thinning of the later leaderboard's V_rand and V_info. This notebook
# shows what each metric rewards and forgives on small synthetic cases, then scores the model trained
# by notebook 04 on the held-out training slices 25-29.

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
run_path = ""  # folder holding heldout_prob.tif from notebook 04; empty means unet_repro.results.run_dir(profile)
drive = False  # on Colab: look for (and keep) the run on Google Drive, like notebook 04's drive option

# %%
from unet_repro.results import Stochastic, default_results_dir, save_figure, write_table
from unet_repro.study.records import seed_study_kinds

RESULTS = default_results_dir(profile, out_dir)

# %% tags=["remove-input"] jupyter={"source_hidden": true}
# The chapter's summary: the cell under "What this means" writes it here once every number in it is computed.
from IPython.display import Markdown, display

chapter_summary = display(Markdown("*The summary appears here once the notebook has run to its end.*"), display_id=True)

# %%
import json
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import ndimage

from unet_repro import metrics as M
from unet_repro.data.isbi2012 import load_isbi2012, split_train_heldout
from unet_repro.results import provenance, repo_root
from unet_repro.training.runs import ensure_run, run_folder

data = load_isbi2012()

# %% [markdown]
# ## The conventions, checked against the original
#
# The values that the original Java classes printed for a set of cases are kept with the tests, in
# `tests/data/isbi2012_metrics/` of the checkout (its README says where they come from; the tests compare
# every one of them, here we print them). The case built on ISBI slice 0 is rebuilt from the stack as that
# README describes. Outside a checkout (Colab installs the package only), this cell says so and skips it.

# %%
vectors = repo_root() / "tests" / "data" / "isbi2012_metrics" if repo_root() else None
if vectors is not None and (vectors / "expected.json").is_file():
    rows = []
    for case in json.loads((vectors / "expected.json").read_text())["cases"]:
        if (vectors / f"{case['name']}.npz").is_file():
            with np.load(vectors / f"{case['name']}.npz") as z:
                prob, lab = z["proposal"], z["label"]
        else:  # isbi_s00_blur1.5: slice 0 of the labels blurred (sigma 1.5), as the Java scored it
            lab = data.train_labels[0]
            prob = ndimage.gaussian_filter((lab > 0).astype(np.float32), 1.5, mode="nearest")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # syn_inverted is inverted on purpose
            got = M.isbi2012_scores(prob, lab)
        for key, value in got.items():
            rows.append(
                {
                    "case": case["name"],
                    "metric": key,
                    "java": case[key],
                    "ours": value,
                    "match": abs(value - case[key]) <= 1e-9,
                }
            )
    vec = pd.DataFrame(rows)
    print(
        f"expected: {len(vec)} values within 1e-9 of the Java output, got: {int(vec['match'].sum())}, "
        f"match: {bool(vec['match'].all())}"
    )
    assert vec["match"].all()
else:
    print(
        "not in a checkout of unet-repro (e.g. on Colab): tests/data/isbi2012_metrics/ with the Java's values "
        "is not here, so the comparison with the Java output is skipped"
    )

# %% [markdown]
# ## What each metric rewards and forgives
#
# Four proposals for one 96 x 96 crop of training slice 0, framed by two pixels of membrane so that a
# shift moves no cell across the border (binary proposals: every threshold gives the same segmentation):
#
# - **perfect**: the label itself;
# - **shifted**: every boundary moved one pixel to the right. Many pixels are wrong, but no cell is
#   split or merged;
# - **gap**: the membrane between two neighbouring cells erased over its whole length, a merge;
# - **false membrane**: a one-pixel line of membrane drawn across the largest cell, a split.
#
# The warping error warps the label towards the proposal by flipping *simple points* only (pixels
# whose flip changes no topology, most confident mismatch first), then counts the mismatches that remain
# and that split or merge cells. Hole and object additions and deletions remain too, but the challenge
# does not count them.

# %%
label = data.train_labels[0, 200:296, 150:246].copy()
label[:2, :] = label[-2:, :] = label[:, :2] = label[:, -2:] = 0  # a membrane frame: shifts stay inside
cells, n_cells = ndimage.label(label > 0, structure=ndimage.generate_binary_structure(2, 1))
perfect = (label > 0).astype(np.float32)

shifted = np.roll(perfect, 1, axis=1)
shifted[:, 0] = perfect[:, 0]

# gap: membrane pixels within 4 px of both of two neighbouring cells (the largest such pair)
sizes = np.bincount(cells.ravel())
sizes[0] = 0
near = {
    c: ndimage.binary_dilation(cells == c, iterations=4) for c in range(1, n_cells + 1)
}  # membranes are 2-8 px wide
pairs = [
    (a, b)
    for a in range(1, n_cells + 1)
    for b in range(a + 1, n_cells + 1)
    if ((near[a] & near[b]) & (label == 0)).sum() >= 20
]
a, b = max(pairs, key=lambda p: sizes[p[0]] + sizes[p[1]])
gap = perfect.copy()
gap[near[a] & near[b] & (label == 0)] = 1.0  # erase the membrane the two cells share

# false membrane: a vertical line through the largest cell, across it from membrane to membrane
big = int(np.argmax(sizes))
ys, xs = np.nonzero(cells == big)
col = int(np.median(xs))
false_membrane = perfect.copy()
false_membrane[(cells == big) & (np.arange(label.shape[1])[None, :] == col)] = 0.0

synthetic = {"perfect": perfect, "shifted": shifted, "gap": gap, "false membrane": false_membrane}
syn_rows = []
warps = {}
for name, prob in synthetic.items():
    s = M.isbi2012_scores(prob, label)
    w = M.warp_label(prob, label, 0.5)
    warps[name] = w
    syn_rows.append(
        {
            "case": name,
            **s,
            "merge_px": w.counts["merge"],
            "split_px": w.counts["split"],
            "other_mismatch_px": sum(v for k, v in w.counts.items() if k not in ("merge", "split")),
        }
    )
syn = pd.DataFrame(syn_rows)
syn

# %% tags=["remove-input"] jupyter={"source_hidden": true}
checks = [
    ("perfect: warping error", 0.0, syn.loc[0, "warping_error"]),
    ("shifted: warping error (pixel error > 0.02)", 0.0, syn.loc[1, "warping_error"]),
    ("gap: split pixels", 0, syn.loc[2, "split_px"]),
    ("false membrane: merge pixels", 0, syn.loc[3, "merge_px"]),
]
for what, expected, got in checks:
    print(f"{what}: expected: {expected}, got: {got}, match: {expected == got}")
    assert expected == got
assert syn.loc[1, "pixel_error"] > 0.02 and syn.loc[2, "merge_px"] > 0 and syn.loc[3, "split_px"] > 0
print(f"gap: expected: merge pixels > 0, got: {syn.loc[2, 'merge_px']}, match: True")
print(f"false membrane: expected: split pixels > 0, got: {syn.loc[3, 'split_px']}, match: True")
r = syn.set_index("case")
assert r["pixel_error"].idxmax() == "shifted" and r.loc["shifted", "warping_error"] == 0
assert (
    r.loc["shifted", "rand_error"] < r.loc["gap", "rand_error"]
    and r.loc["shifted", "rand_error"] < r.loc["false membrane", "rand_error"]
)
assert r.loc["gap", "pixel_error"] < r.loc["shifted", "pixel_error"] and r.loc["false membrane", "split_px"] == 1

# %%
display(
    Markdown(
        f"The shifted boundary costs the largest pixel error of the four ({r.loc['shifted', 'pixel_error']:.4f}) and "
        f"no warping error at all; its Rand error ({r.loc['shifted', 'rand_error']:.4f}) is not zero (the pixels "
        f"the shift moves from a cell onto membrane leave that cell in the proposal), but it is well below that of "
        f"the gap ({r.loc['gap', 'rand_error']:.4f}) and of the false membrane ({r.loc['false membrane', 'rand_error']:.4f}). "
        f"The false membrane leaves {int(r.loc['false membrane', 'split_px'])} split pixel after warping."
    )
)

# %% [markdown]
# The numbers above (computed, and checked by the asserts of the cell): the shifted boundary has the
# largest pixel error and no warping error, and a Rand error far below that of a merge or a split: pixel
# error punishes where a boundary lies, the topological metrics mostly whether cells stay apart. A gap of a
# few pixels merges two cells: small pixel error, but the Rand error jumps, because every pair of pixels
# across the two cells is now wrongly joined. The false membrane splits one cell; what is left of it after
# warping is counted as a split.

# %%
CLASS_COLOURS = {
    M.MERGE: "red",
    M.SPLIT: "magenta",
    M.HOLE_ADDITION: "orange",
    M.HOLE_DELETION: "yellow",
    M.OBJECT_ADDITION: "cyan",
    M.OBJECT_DELETION: "lime",
}
fig, axes = plt.subplots(len(synthetic), 3, figsize=(9.5, 3.1 * len(synthetic)))
for r, (name, prob) in enumerate(synthetic.items()):
    w = warps[name]
    axes[r, 0].imshow(label, cmap="gray")
    axes[r, 0].set_title("label (white = cell)" if r == 0 else "")
    axes[r, 1].imshow(prob, cmap="gray", vmin=0, vmax=1)
    row = syn.iloc[r]
    axes[r, 1].set_title(f"{name}\npixel {row.pixel_error:.3f}  Rand {row.rand_error:.3f}", fontsize=9)
    axes[r, 2].imshow(w.warped, cmap="gray")
    for flag, colour in CLASS_COLOURS.items():
        yy, xx = np.nonzero(w.classes == flag)
        if len(yy):
            axes[r, 2].scatter(xx, yy, s=14, c=colour, marker="s", label=M.MISMATCH_NAMES[flag])
    axes[r, 2].set_title(f"warped label + remaining mismatches\nwarping error {row.warping_error:.2e}", fontsize=9)
    if len(axes[r, 2].get_legend_handles_labels()[0]):
        axes[r, 2].legend(fontsize=7, loc="lower right", framealpha=0.8)
    for ax in axes[r]:
        ax.set_xticks([])
        ax.set_yticks([])
fig.suptitle("Synthetic proposals for a crop of training slice 0 (threshold 0.5)", y=1.0)
fig.tight_layout()
save_figure(fig, "05_synthetic_cases", RESULTS)
plt.show()
plt.close(fig)

# %% [markdown]
# ## The model of notebook 04 on the held-out slices
#
# The challenge never published the test labels, and its server no longer scores new submissions,
# so this reproduction scores slices 25-29 of the *training* stack, which notebook 04 held out from
# training. When no run of notebook 04 is found (a fresh Colab runtime), the next cell trains the profile
# first with `unet_repro.training.runs.ensure_run` (minutes for `ci`), with a progress bar.
#
# **This is a different protocol from Table 1** (30 test slices scored by the server, a
# model trained on all 30 training slices, averaged over 7 rotated inputs): the numbers below say how
# this model does on five slices it never saw, not what it would score on the leaderboard. The server's
# threshold rule is kept: each metric takes its best threshold on the block it is scored on, here on these five
# slices themselves (the `best_threshold_*` columns), each metric its own, as the server did on its test
# slices; that one choice looks at the test block. Notebook 04 also scores the model at thresholds fixed on
# the validation block, slices 20-24 (`results/04_fixed_thresholds.csv`).

# %%
held = split_train_heldout()[1]
assert held == list(range(25, 30))
folder = run_folder(profile, run_path, drive)
prob_path = ensure_run(profile, folder)  # a fresh runtime without notebook 04's run: train the profile first
import tifffile

heldout_prob = tifffile.imread(prob_path)
heldout_labels = data.train_labels[held]
print(provenance(prob_path.parent))
print(f"{prob_path}: {heldout_prob.dtype} {heldout_prob.shape}; labels: slices {held}")

t0 = time.perf_counter()
ev = M.evaluate(heldout_prob, heldout_labels)
eval_seconds = time.perf_counter() - t0
scores, best = ev.scores(), ev.best_thresholds()
print({k: round(v, 6) for k, v in scores.items()}, f"({eval_seconds:.1f} s)")

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
ax = axes[0]
ax.plot(ev.warping.thresholds, ev.warping.error, "o-", label="challenge (splits + mergers)")
ax.plot(ev.warping.thresholds, ev.warping.classic_error, "s--", label="classic Jain (all mismatches)")
ax.axhline(0.000353, color="gray", ls=":", label="paper, ISBI test set")
ax.set_yscale("symlog", linthresh=1e-5)
ax.set_ylim(0, None)  # 0 = no split or merge pixel left
ax.set_xlabel("threshold on P(cell)")
ax.set_title("warping error (lower is better)")
ax.legend(fontsize=8)
ax = axes[1]
ax.plot(ev.rand.thresholds, 1 - ev.rand.fscore, "o-", label="Rand error")
ax.plot(ev.pixel.thresholds, 1 - ev.pixel.fscore, "s-", label="pixel error")
ax.axhline(0.0382, color="C0", ls=":", label="paper Rand")
ax.axhline(0.0611, color="C1", ls=":", label="paper pixel")
ax.set_ylim(0, min(1.0, max(0.3, float(np.nanmax(1 - ev.pixel.fscore[1:-1])) * 1.2)))
ax.set_xlabel("threshold on P(cell)")
ax.set_title("1 - F (lower is better)")
ax.legend(fontsize=8)
ax = axes[2]
ax.plot(ev.v_rand.thresholds, ev.v_rand.fscore, "o-", label="V_rand")
ax.plot(ev.v_info.thresholds, ev.v_info.fscore, "s-", label="V_info")
ax.set_ylim(0.0, 1.02)
ax.set_xlabel("threshold on P(cell)")
ax.set_title("after membrane thinning (higher is better)")
ax.legend(fontsize=8)
fig.suptitle(f"Model of notebook 04 (profile {profile}) on held-out training slices {held[0]}-{held[-1]}")
fig.tight_layout()
save_figure(fig, "05_heldout_curves", RESULTS)
plt.show()
plt.close(fig)

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
w = M.warp_label(heldout_prob[0], heldout_labels[0], best["warping_error"])
axes[0].imshow(heldout_labels[0], cmap="gray")
axes[0].set_title(f"label, slice {held[0]}")
axes[1].imshow(heldout_prob[0], cmap="gray", vmin=0, vmax=1)
axes[1].set_title("P(cell) of the model")
axes[2].imshow(w.warped, cmap="gray")
for flag in (M.MERGE, M.SPLIT):
    yy, xx = np.nonzero(w.classes == flag)
    axes[2].scatter(xx, yy, s=10, c=CLASS_COLOURS[flag], marker="s", label=f"{M.MISMATCH_NAMES[flag]} ({len(yy)} px)")
axes[2].legend(fontsize=8, loc="lower right")
axes[2].set_title(f"warped label, threshold {best['warping_error']:.1f}")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
save_figure(fig, "05_heldout_warping", RESULTS)
plt.show()
plt.close(fig)

# %% [markdown]
# ### Where the topology errors are: splits and merges per held-out slice
#
# The warping error counts pixels whose flip would still split or merge a cell after the label has been
# warped towards the prediction as far as topology allows. Counted per slice at the stack's best warping
# threshold, as pixels and as events (connected groups of such pixels: one gap in a membrane is one merge):

# %%
from unet_repro.metrics.topology import topology_errors_by_slice

topo = topology_errors_by_slice(heldout_prob, heldout_labels, best["warping_error"])
topo["slice"] = [held[k] for k in topo["slice"]]
display(topo)
slice_pixels = heldout_labels[0].size
ours_px = scores["warping_error"] * slice_pixels
paper_px = 0.000353 * slice_pixels  # Table 1's warping error, as pixels of one 512 x 512 slice
display(
    Markdown(
        f"At threshold {best['warping_error']:.1f} the five held-out slices keep {int(topo.merges.sum())} merges "
        f"and {int(topo.splits.sum())} splits ({topo.merge_pixels.sum()} and {topo.split_pixels.sum()} pixels). "
        f"A warping error of {scores['warping_error']:.5f} is {ours_px:.0f} such pixels per 512 x 512 slice; the "
        f"paper's 0.000353 is {paper_px:.0f}. "
        + (
            "Most of ours are merges: gaps in thin membranes that join two cells, the mistake the border term "
            "of eq. 2 is meant to prevent (notebook 06's primary study tests whether it does, claim `no_border_term`)."
            if topo.merge_pixels.sum() > topo.split_pixels.sum()
            else "Most of ours are splits: membranes drawn through a cell, cutting it in two."
        )
    )
)

# %% [markdown]
# ### The merges and splits that cost the most
#
# The table above counts 4-connected groups of pixels, so one gap whose pixels touch only at corners counts
# several times. Below (`unet_repro.metrics.topology.topology_events`), the merge pixels of a slice that join
# the same cells are **one merge**, and the split pixels inside one cell are **one split**, that cell cut into
# the pieces the prediction leaves of it. Each event has a warping cost (its pixels) and a Rand-type cost: the
# pixel pairs it wrongly joins (across the merged cells) or separates (across the pieces). The crops show the
# largest merges and splits by pixels, at the stack's best warping threshold, 96 x 96 pixels around each.

# %%
from unet_repro.metrics.figures import event_crops_figure
from unet_repro.metrics.topology import topology_events

events = topology_events(heldout_prob, heldout_labels, best["warping_error"])
by_kind = events.groupby("kind").agg(events=("pixels", "size"), pixels=("pixels", "sum"), pairs=("pairs", "sum"))
display(by_kind)
TOP = 3
shown = [
    {**row, "name": f"slice {held[row['slice']]}, {row['kind']} {n + 1}"}
    for kind in ("merge", "split")
    for n, row in enumerate(events[events.kind == kind].head(TOP).to_dict("records"))
]
fig = event_crops_figure(
    data.train_images[held],
    heldout_prob,
    heldout_labels,
    shown,
    best["warping_error"],
    f"Test block {held[0]}-{held[-1]}, profile {profile}, warping threshold {best['warping_error']:.1f}: the {TOP} largest merges "
    f"by warping pixels (red), where the prediction misses a\nmembrane the label draws, and the {TOP} largest "
    "splits, where it draws membrane through a label cell",
)
save_figure(fig, "05_topology_events", RESULTS)
plt.show()
plt.close(fig)


# %%
lines = []
for row in shown:
    where = f"**{row['name']}** (row {row['y']}, column {row['x']}): {row['pixels']} warping pixels"
    if row["kind"] == "merge":
        lines.append(
            f"- {where}; it joins {row['parts']} label cells of {', '.join(f'{v:,}' for v in row['part_pixels'])} "
            f"pixels, {row['pairs']:,} pixel pairs wrongly put together."
        )
    else:
        lines.append(
            f"- {where}; it cuts a label cell of {sum(row['part_pixels']):,} pixels into {row['parts']} pieces (the "
            f"largest {row['part_pixels'][0]:,}), {row['pairs']:,} pixel pairs wrongly put apart."
        )
display(Markdown("\n".join(lines)))

# %% [markdown]
# ### Why our topology metrics trail the paper's, from these counts
#
# The warping error charges an event its pixels; the Rand error charges it pixel pairs, so a merge of two large
# cells costs it far more than many small slips. The Rand error is scored at its own best threshold, so its
# events are counted again there.

# %%
n_slices = len(held)
per_slice = events.pixels.sum() / n_slices
split_only = by_kind.loc["split", "pixels"] / (n_slices * slice_pixels) if "split" in by_kind.index else 0.0
merge_only = by_kind.loc["merge", "pixels"] / (n_slices * slice_pixels) if "merge" in by_kind.index else 0.0
top10 = events.head(10).pixels.sum() / max(events.pixels.sum(), 1)
rest_per_slice = events.pixels.iloc[10:].sum() / n_slices
events_rand = topology_events(heldout_prob, heldout_labels, best["rand_error"])
merges_rand = events_rand[events_rand.kind == "merge"].sort_values("pairs", ascending=False)
pairs_rand = events_rand.pairs.sum()
top_merges = merges_rand.head(10)
display(
    Markdown(
        f"On the test block ({held[0]}-{held[-1]}, profile {profile}) at the warping threshold "
        f"{best['warping_error']:.1f}: {int(by_kind['events'].sum())} events, {per_slice:.0f} warping pixels per "
        f"slice against the paper's {paper_px:.0f}. The splits alone give a warping error of {split_only:.5f} and "
        f"the merges alone {merge_only:.5f}, each above the paper's 0.000353: both kinds would have to shrink. The "
        f"gap is not a few large events: the 10 largest hold {top10:.0%} of the pixels, and without them "
        f"{rest_per_slice:.0f} pixels per slice remain, still {rest_per_slice / paper_px:.1f} times the paper's. "
        f"At the Rand error's threshold ({best['rand_error']:.1f}) the merges put {merges_rand.pairs.sum():,} pixel "
        f"pairs wrongly together, {merges_rand.pairs.sum() / max(pairs_rand, 1):.0%} of all the pairs the events "
        f"misplace, and the 10 merges with most pairs hold {top_merges.pairs.sum() / max(merges_rand.pairs.sum(), 1):.0%} "
        f"of them with {int(top_merges.pixels.sum())} warping pixels: each joins a cell of at least "
        f"{int(top_merges.part_pixels.str[0].min()):,} pixels to one of {int(top_merges.part_pixels.str[1].median()):,} "
        f"(median) through a gap of {int(top_merges.pixels.min())}-{int(top_merges.pixels.max())} pixels. "
        + (
            "The Rand error trails the paper's mostly because of these few short gaps between large cells"
            if top_merges.pairs.sum() > merges_rand.pairs.sum() / 2
            else "No few merges dominate the Rand error: its pairs are spread over many events"
        )
        + (
            "; the warping error because of many small splits and merges all over the slices."
            if top10 < 0.5
            else "; the warping error mostly because of its 10 largest events."
        )
    )
)

# %% [markdown]
# What the `cpu` profile changes, from the committed tables of both profiles (`results/05_evaluation.csv`,
# `results/cpu/05_evaluation.csv`):

# %%
tables = {
    p: (repo_root() / "results" / d / "05_evaluation.csv") if repo_root() else None
    for p, d in (("ci", ""), ("cpu", "cpu"))
}
if all(t is not None and t.is_file() for t in tables.values()):
    ours = {p: pd.read_csv(t).iloc[-1] for p, t in tables.items()}
    has_counts = all({"merge_pixels", "split_pixels"} <= set(pd.read_csv(t).columns) for t in tables.values())
    display(
        Markdown(
            f"On the test block, the `cpu` profile's Rand error is {ours['cpu'].rand_error:.4f} against `ci`'s "
            f"{ours['ci'].rand_error:.4f} ({ours['cpu'].rand_error / ours['ci'].rand_error:.0%} of it), its warping "
            f"error {ours['cpu'].warping_error:.6f} against {ours['ci'].warping_error:.6f}. "
            + (
                "The tables hold the split and merge counts of both."
                if has_counts
                else "The committed tables hold no split or merge counts for either profile, so which events the "
                "`cpu` profile removes cannot be read from them. The counts above show only how the two metrics can "
                "part: closing the few short gaps between large cells would lower the Rand error much more than the "
                "warping error."
            )
        )
    )
else:
    print("the committed tables of both profiles are in a checkout of the repository: skipped")

# %% [markdown]
# ## Paper vs this reproduction
#
# Table 1 of the paper gives warping, Rand and pixel error; V_rand and V_info came later (the
# leaderboard after 2015), so the paper has no number for them.

# %%
PAPER = {"warping_error": 0.000353, "rand_error": 0.0382, "pixel_error": 0.0611}
ORDER = ["warping_error", "rand_error", "pixel_error", "v_rand", "v_info"]
table = pd.DataFrame(
    [
        {
            "source": "paper (ISBI test set, Table 1)",
            **{k: PAPER.get(k, np.nan) for k in ORDER},
            **{f"best_threshold_{k}": np.nan for k in ORDER},
            "eval_seconds": np.nan,
        },
        {
            "source": f"this reproduction (held-out slices 25-29, profile {profile})",
            **{k: scores[k] for k in ORDER},
            **{f"best_threshold_{k}": best[k] for k in ORDER},
            "eval_seconds": eval_seconds,
        },
    ]
)
# Metric columns: the tolerance of the ci seed study (notebook 04 shows it), the same as in 04's table.
# Thresholds: the best of the 0.1-spaced thresholds moves by whole steps with the weights; the seed study
# records no thresholds, so this one stays a judgement (three steps).
kinds = {
    **seed_study_kinds(ORDER, profile),
    **{
        f"best_threshold_{k}": Stochastic(
            0.3,
            "the best of the 0.1-spaced thresholds moves with the weights "
            "(a judgement: the seed study records no thresholds)",
        )
        for k in ORDER
    },
    "eval_seconds": "measured",
}
write_table(table, "05_evaluation", RESULTS, kinds=kinds)
write_table(syn, "05_synthetic_cases", RESULTS)
table.set_index("source")[ORDER].T

# %% tags=["remove-input"]
run_summary = prob_path.parent / "metrics.json"
run_tta = json.loads(run_summary.read_text()).get("tta", "none") if run_summary.is_file() else "none"
averaging = {
    "none": "no rotation averaging (the paper averaged 7 rotated versions)",
    "rot4": "an average over 4 rotations (the paper: 7 rotated versions)",
    "d4": "an average over the 8 rotations and flips (the paper: 7 rotated versions)",
}[run_tta]
display(
    Markdown(
        "The reproduction's column is not comparable one to one with the paper's: other slices, a five-slice "
        f"average instead of thirty, {averaging}"
        + (", and a much shorter training than the paper's" if profile != "paper" else "")
        + ". What *is* the same is the yardstick: every number here is computed the way the challenge server "
        "computed Table 1."
    )
)

# %% [markdown]
# ## What this means
#
# The yardstick is the challenge's own, checked against its Java implementation, so the gap to Table 1 is the
# model's, not the metric's. On pixels this small, short-trained model is close to the paper; on topology it is
# not: it leaves splits and merges all over the slices, and a few short gaps between large cells drive its Rand
# error. Whether the paper's remedies for exactly these mistakes work (the border term of the weighted loss
# against merges, averaging over rotations) is tested in notebook 06's pre-registered primary study; the README's
# claims ledger keeps the status.

# %% tags=["remove-input"] jupyter={"source_hidden": true}
from unet_repro.study import chapters

display(Markdown(chapters.claims_markdown(chapters.read_primary(), ["no_border_term", "tta_d4"])))
java_checked = (
    f"; the metrics match the Java's {len(vec)} values to 1e-9" if vectors is not None and "vec" in globals() else ""
)
chapter_summary.update(
    Markdown(
        chapters.summary_markdown(
            "(section 3.3, Table 1) a warping error of 0.000353, a Rand error of 0.0382 and a pixel error of 0.0611 "
            "on the ISBI 2012 test set, as the challenge server scored them.",
            f"on the test block (slices {held[0]}-{held[-1]}), profile {profile}: warping error "
            f"{scores['warping_error']:.5f} ({ours_px:.0f} split or merge pixels per slice, the paper's "
            f"{paper_px:.0f}), Rand error {scores['rand_error']:.3f}, pixel error {scores['pixel_error']:.4f}; "
            f"{int(by_kind['events'].sum())} merges and splits at the warping error's threshold, each metric at its "
            "best threshold on that block.",
            f"the model of notebook 04 (profile {profile}, one seed), five held-out slices of the training stack, "
            f"not the challenge's thirty test slices{java_checked}.",
        )
    )
)
