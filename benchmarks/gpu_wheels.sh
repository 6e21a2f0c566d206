#!/usr/bin/env bash
# Fetch, on a machine with internet, the wheels that benchmarks/gpu_paper.sh needs on a GPU machine without it
# (papermill and ipykernel with the dependencies such an image may lack), into .whl/ (keep it out of git:
# `echo /.whl/ >> .git/info/exclude`). Target: CPython 3.12 on x86-64 Linux (override with PYVER=3.11 etc.).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYVER="${PYVER:-3.12}"
mkdir -p "$ROOT/.whl"
plat=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    plat+=(--platform "$p")
done
"${PYTHON:-python3}" -m pip download -q --only-binary=:all: --python-version "$PYVER" --implementation cp \
    "${plat[@]}" -d "$ROOT/.whl" papermill ipykernel
ls "$ROOT/.whl" | wc -l | xargs echo "wheels in .whl/:"
du -sh "$ROOT/.whl"
