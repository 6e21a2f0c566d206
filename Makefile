# Two commands do all set-up on a fresh machine (see README.md):
#   make reproduce   run every notebook on the default profile (ci) and check/write results/
#   make test        run the test suite (it includes the ci reproduction)
# Both create .venv first if needed. TORCH pins the CPU build this project's machines carry; on a
# GPU machine use e.g. `make test TORCH=torch` (or any torch >= 2.2 you already have).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PROFILE ?= ci
# The ISBI 2012 data: a ../shared copy when there is one, else the package downloads and verifies it.
export UNET_REPRO_DATA ?= $(wildcard $(abspath ..)/shared/data/isbi2012)

.PHONY: reproduce test test-fast benchmarks clean sync

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q "$(TORCH)"
	$(VENV)/bin/python -m pip install -q -e ".[dev]"
	# elasticdeform (the augmentation benchmark's baseline): PyPI's wheel was built against NumPy 1 and
	# fails to import under NumPy 2, so it is built from source (seconds).
	$(VENV)/bin/python -m pip install -q --no-binary elasticdeform "elasticdeform>=0.5"
	touch $@

reproduce: $(VENV)/.installed
	$(VENV)/bin/python -m unet_repro.reproduce --profile $(PROFILE)

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -ra

test-fast: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -ra -m "not slow"

benchmarks: $(VENV)/.installed
	for b in benchmarks/*.py; do $(VENV)/bin/python $$b || exit 1; done

# notebooks/NN_*.py (py:percent) is the source: write its cells into the paired .ipynb (keeping the
# notebook's metadata and cell ids), then strip outputs. A later `jupytext --sync` then changes nothing.
sync: $(VENV)/.installed
	$(VENV)/bin/jupytext --update --to ipynb notebooks/[0-9][0-9]_*.py
	$(VENV)/bin/jupyter nbconvert --clear-output --inplace --log-level=WARN notebooks/[0-9][0-9]_*.ipynb

clean:
	rm -rf build $(VENV)
