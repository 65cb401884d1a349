# Both targets create .venv on first use; nothing else needs to be installed by hand but Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/aoai-obs --config examples/demo.yaml demo

test: $(STAMP)
	$(BIN)/ruff check collector dashboards alerts tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks.backfill
	$(BIN)/python -m benchmarks.queries_per_cycle
	$(BIN)/python -m benchmarks.dashboards
	$(BIN)/python -m benchmarks.bill_import

clean:
	rm -rf $(VENV) .demo build *.egg-info
