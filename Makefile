# bayes_qse: the front door.  `make demo` and `make test` work on a fresh machine with only Python.
# ArviZ 1.x needs Python >= 3.12; on 3.11 pip silently picks ArviZ 0.x, so we look for 3.12+ first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JAX_PLATFORMS ?= cpu
export MPLBACKEND ?= Agg

PYTHON ?= $(shell for p in python3.12 python3.13 $(HOME)/.pyenv/versions/3.12*/bin/python3.12 \
	/root/.pyenv/versions/3.12*/bin/python3.12 $(HOME)/.pyenv/versions/3.13*/bin/python3.13 python3; do \
	if $$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then \
	echo $$p; break; fi; done)

.PHONY: venv demo test test-fast bench lint format clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@if [ -z "$(PYTHON)" ]; then echo "error: Python >= 3.12 not found (ArviZ 1.x needs it); set PYTHON=/path/to/python3.12" >&2; exit 2; fi
	@echo "using $(PYTHON) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,dev,sweep]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bayes-qse demo --out demo_out

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup

test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check bayes_qse tests experiments benchmarks
	$(VENV)/bin/ruff format --check bayes_qse tests experiments benchmarks
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix bayes_qse tests experiments benchmarks
	$(VENV)/bin/ruff format bayes_qse tests experiments benchmarks

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache
