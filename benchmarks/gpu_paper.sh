#!/usr/bin/env bash
# The GPU check of the paper profile, for a bare GPU machine with no internet (about 8 minutes on an H200).
#
#   bash benchmarks/gpu_paper.sh [--dry-run] [--train-minutes 4] [--no-notebooks]
#
# Needs: python3 with torch (CUDA), numpy, scipy, pandas, matplotlib, tqdm, tifffile, scikit-image, numba
# (the project's runtime dependencies; nothing is downloaded); the ISBI 2012 TIFFs in $UNET_REPRO_DATA
# (default: data/isbi2012 in the checkout, ignored by git); for notebooks 04 and 05 also papermill and
# ipykernel, which a machine without them can take as wheels in .whl/ (benchmarks/gpu_wheels.sh fetches
# them on a machine with internet). Installs the project (pip install -e ., no index, no dependencies),
# then runs benchmarks/gpu_paper.py: throughput, training, test-block prediction, results/paper/, and a copy
# of everything under $OUT when that is set. --dry-run does the same on the CPU with tiny settings.
set -euo pipefail
GPU_SCRIPT=gpu_paper.sh
# shellcheck source=benchmarks/gpu_setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/gpu_setup.sh"
"$PY" benchmarks/gpu_paper.py "$@"
echo "gpu_paper.sh: total $(( $(date +%s) - start )) s"
