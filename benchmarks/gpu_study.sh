#!/usr/bin/env bash
# Notebook 06's study on a GPU, for a bare GPU machine with no internet.
#
#   bash benchmarks/gpu_study.sh [--dry-run] [GRID.toml ...]
#
# Default grids: studies/06_primary.toml (the pre-registered primary study, 10 seeds), studies/06_long.toml
# (the long-budget part, which 2 CPU cores can hardly afford), then studies/06_ablations.toml. Every run trains with --device cuda, several at a time (the study's networks
# are small; GPU_STUDY_WORKERS, default 6), and leaves its record in results/06_ablations/runs_cuda/: a GPU
# study is paired within itself (CPU and GPU round differently), so its records never mix with the CPU
# study's in results/06_ablations/runs/. Records are copied to $OUT when set. Resumable: a second call skips
# finished records (on a fresh machine, carry results/06_ablations/runs_cuda back first). Needs what
# benchmarks/gpu_setup.sh needs and the ISBI 2012 TIFFs in $UNET_REPRO_DATA (default data/isbi2012).
# --dry-run: a two-step grid on the CPU into build/gpu_study_dry_run/ (checks the script).
set -euo pipefail
GPU_SCRIPT=gpu_study.sh
# shellcheck source=benchmarks/gpu_setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/gpu_setup.sh"
RUNS=results/06_ablations/runs_cuda
DEVICE=cuda
WORKERS="${GPU_STUDY_WORKERS:-6}"
grids=()
if [ "${1:-}" = "--dry-run" ]; then
    shift
    DEVICE=cpu WORKERS=2 RUNS=build/gpu_study_dry_run/runs
    mkdir -p build/gpu_study_dry_run
    printf 'seeds = [0, 1]\n[base]\nbase_channels = 2\niterations = 2\ntile = 188\ncheckpoint_every = 0\n[[config]]\nname = "tiny"\n' \
        > build/gpu_study_dry_run/tiny.toml
    grids=(build/gpu_study_dry_run/tiny.toml)
fi
[ "$#" -gt 0 ] && grids=("$@")
[ "${#grids[@]}" -gt 0 ] || grids=(studies/06_primary.toml studies/06_long.toml studies/06_ablations.toml)
status=0
for grid in "${grids[@]}"; do
    echo "gpu_study.sh: $grid on $DEVICE, $WORKERS at a time"
    "$PY" -m unet_repro.sweep "$grid" --device "$DEVICE" --workers "$WORKERS" --runs-dir "$RUNS" \
        --work-dir build/gpu_study --no-progress || status=1
done
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT/$RUNS" && cp "$RUNS"/*.json "$OUT/$RUNS"/ 2>/dev/null || true
fi
echo "gpu_study.sh: $(find "$RUNS" -name '*.json' | wc -l) records in $RUNS; total $(( $(date +%s) - start )) s"
exit "$status"
