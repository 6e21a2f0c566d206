# Two commands do all set-up on a fresh machine (see README.md):
#   make reproduce   run every notebook on the default profile (ci) and check/write results/
#   make test        run the test suite (it includes the ci reproduction)
# Both create .venv first if needed; neither needs a C compiler. The ISBI 2012 data is downloaded on
# first use into the user cache folder, ~/.cache/unet-repro on Linux (or read from $UNET_REPRO_DATA when set).
#
# TORCH is the PyTorch requirement pip installs. The default pins the version this project's committed
# ci tables were made with (CPU results are bit-identical only under the same build); override it on
# the command line, e.g. `make test TORCH=torch` (your platform's newest build) or TORCH="torch>=2.2".
# TORCH_INDEX, when set, is the wheel index torch comes from: on a Linux machine without a GPU,
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
# gets the CPU-only build (about 200 MB instead of the CUDA build's gigabytes); macOS and GPU machines
# leave it empty and get PyPI's default build.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
PROFILE ?= ci

.PHONY: reproduce test test-fast benchmarks lint format sync readme clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(VENV)/bin/python -m pip install -q -e ".[dev]"
	touch $@

# What only the benchmarks need: elasticdeform (the augmentation benchmark's baseline). PyPI's wheel was
# built against NumPy 1 and fails to import under NumPy 2, so it is built from source (needs a C compiler).
$(VENV)/.benchmarks: $(VENV)/.installed
	$(VENV)/bin/python -m pip install -q --no-binary elasticdeform "elasticdeform>=0.5"
	touch $@

reproduce: $(VENV)/.installed
	$(VENV)/bin/python -m unet_repro.reproduce --profile $(PROFILE)

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -ra

test-fast: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -ra -m "not slow"

benchmarks: $(VENV)/.benchmarks
	for b in benchmarks/*.py; do $(VENV)/bin/python $$b || exit 1; done

# ruff (configured in pyproject.toml): lint and formatting are checked, never changed, by `make lint`;
# `make format` applies both. `make lint` also checks the prose policy (scripts/lint_prose.py).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python scripts/lint_prose.py

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# notebooks/NN_*.py (py:percent) is the source: write its cells into the paired .ipynb (keeping the
# notebook's metadata and cell ids), then strip outputs. A later `jupytext --sync` then changes nothing.
sync: $(VENV)/.installed
	$(VENV)/bin/jupytext --update --to ipynb notebooks/[0-9][0-9]_*.py
	$(VENV)/bin/jupyter nbconvert --clear-output --inplace --log-level=WARN notebooks/[0-9][0-9]_*.ipynb

# The README's blocks with numbers (claims ledger, paper vs ours, exploratory ablations, study cost), written
# from the committed tables in results/ (a test checks the README equals what this writes).
readme: $(VENV)/.installed
	$(VENV)/bin/python -m unet_repro.readme README.md results

clean:
	rm -rf build $(VENV)
