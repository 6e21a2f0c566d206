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
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 UNET_REPRO_PROGRESS=0
export UNET_REPRO_DATA="${UNET_REPRO_DATA:-$ROOT/data/isbi2012}"
start=$(date +%s)
echo "gpu_paper.sh: $(date -u +%FT%TZ) in $ROOT, data $UNET_REPRO_DATA"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"

if compgen -G ".whl/*.whl" >/dev/null; then  # packages the machine lacks (papermill, ipykernel, ...)
    # only the distributions not installed already, so that none of the machine's own versions is shadowed
    mapfile -t missing < <("$PY" - .whl/*.whl <<'PYEOF'
import re, sys
from importlib import metadata
for wheel in sys.argv[1:]:
    name = re.split(r"-\d", wheel.rsplit("/", 1)[-1], maxsplit=1)[0]
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        print(wheel)
PYEOF
)
    if [ "${#missing[@]}" -gt 0 ]; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/gpu_paper_site "${missing[@]}" \
            && export PYTHONPATH="/tmp/gpu_paper_site${PYTHONPATH:+:$PYTHONPATH}" \
            && echo "gpu_paper.sh: installed ${#missing[@]} wheels from .whl/" \
            || echo "gpu_paper.sh: installing .whl/ failed; notebooks may be skipped"
    fi
fi
if ! "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>/tmp/gpu_paper_pip.log; then
    echo "gpu_paper.sh: pip install -e . failed ($(tail -1 /tmp/gpu_paper_pip.log)); using PYTHONPATH=$ROOT"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import unet_repro, scipy, pandas, matplotlib, tqdm, tifffile, skimage, numba" \
    || { echo "gpu_paper.sh: a runtime dependency is missing (see above)"; exit 1; }
if ! "$PY" -c "import papermill, ipykernel" 2>/dev/null; then
    echo "gpu_paper.sh: papermill/ipykernel missing: notebooks 04 and 05 will be skipped"
elif [ ! -d "$HOME/.local/share/jupyter/kernels/python3" ]; then
    "$PY" -m ipykernel install --user --name python3 >/dev/null 2>&1 || true
fi
echo "gpu_paper.sh: set-up took $(( $(date +%s) - start )) s"
"$PY" benchmarks/gpu_paper.py "$@"
echo "gpu_paper.sh: total $(( $(date +%s) - start )) s"
