# Two commands set everything up on a fresh machine:
#   make demo   - runs the whole pipeline on the embedded default dataset
#   make test   - runs the test suite
#   make lint   - ruff (lint and format check) and mypy, as CI runs them before the tests
# Each bootstraps a local virtual environment (.venv) the first time.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-slow lint bench clean

venv: $(STAMP)

# torch==2.13.0 first: on these machines pip takes the CPU build lying on disk;
# an unpinned torch would pull a multi-GB CUDA build. Where that exact version is
# unavailable, the range in pyproject.toml decides.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0 || true
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/earlyphase demo

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check earlyphase tests benchmarks
	$(VENV)/bin/ruff format --check earlyphase tests benchmarks
	$(VENV)/bin/mypy earlyphase

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis .ruff_cache .mypy_cache
