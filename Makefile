# mois-sam2-nf -- set-up, demo and tests.  `make demo` and `make test` are the two commands of the README.
# Versions live in requirements.lock only; the venv is rebuilt when it (or pyproject.toml) changes.

PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
DEMO_RAW ?= data/demo/raw
export PYTHONHASHSEED := 0

.PHONY: venv demo test lint bench help

help:
	@echo "make demo   set up .venv, build the demo cohort, evaluate MOIS-SAM2, SAM2 and region growing, write the report"
	@echo "make test   set up .venv and run the test suite"
	@echo "make lint   set up .venv, run ruff (pycodestyle + pyflakes) on the code, tests and benchmarks, mypy on the package"
	@echo "make bench  run the performance benchmarks (each prints one JSON line)"

venv: $(STAMP)

# torch first (from the pinned wheels), then sam2 without build isolation (no CUDA extension), then the rest.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet $$(grep -E '^(torch|torchvision)==' requirements.lock)
	SAM2_BUILD_CUDA=0 $(BIN)/python -m pip install --quiet --no-build-isolation $$(grep -E '^sam2==' requirements.lock)
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# The main job: demo cohort + previews, MOIS-SAM2 and SAM2 (shipped demo weights) and region growing on ts1-ts4, the
# prompted-lesion sweep on ts1-ts2, report.
demo: $(STAMP)
	$(BIN)/mois-sam2-nf synth --preset demo --out $(DEMO_RAW) --seed 0
	$(BIN)/mois-sam2-nf preview --raw $(DEMO_RAW) --out data/demo/previews
	PATH="$(CURDIR)/$(BIN):$$PATH" DATA_ROOT=$(DEMO_RAW) evaluation/experiment_launchers/run_demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check model_code tests benchmarks monai_label_app
	$(BIN)/mypy

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done
