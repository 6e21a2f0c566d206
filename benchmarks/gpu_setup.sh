#!/usr/bin/env bash
# Set-up shared by the GPU scripts (sourced, never run): a bare GPU machine with no internet. Installs
# papermill/ipykernel from .whl/ when the machine lacks them (benchmarks/gpu_wheels.sh fetches them), the
# project itself (pip install -e ., no index, no dependencies), and checks the runtime dependencies.
# Leaves ROOT, PY and start (the epoch second it began) set, the working directory at the checkout.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 UNET_REPRO_PROGRESS=0
export UNET_REPRO_DATA="${UNET_REPRO_DATA:-$ROOT/data/isbi2012}"
start=$(date +%s)
echo "${GPU_SCRIPT:-gpu}: $(date -u +%FT%TZ) in $ROOT, data $UNET_REPRO_DATA"
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
            && echo "${GPU_SCRIPT:-gpu}: installed ${#missing[@]} wheels from .whl/" \
            || echo "${GPU_SCRIPT:-gpu}: installing .whl/ failed; notebooks may be skipped"
    fi
fi
if ! "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>/tmp/gpu_paper_pip.log; then
    echo "${GPU_SCRIPT:-gpu}: pip install -e . failed ($(tail -1 /tmp/gpu_paper_pip.log)); using PYTHONPATH=$ROOT"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import unet_repro, scipy, pandas, matplotlib, tqdm, tifffile, skimage, numba" \
    || { echo "${GPU_SCRIPT:-gpu}: a runtime dependency is missing (see above)"; exit 1; }
if ! "$PY" -c "import papermill, ipykernel" 2>/dev/null; then
    echo "${GPU_SCRIPT:-gpu}: papermill/ipykernel missing: notebooks 04 and 05 will be skipped"
elif [ ! -d "$HOME/.local/share/jupyter/kernels/python3" ]; then
    "$PY" -m ipykernel install --user --name python3 >/dev/null 2>&1 || true
fi
echo "${GPU_SCRIPT:-gpu}: set-up took $(( $(date +%s) - start )) s"
