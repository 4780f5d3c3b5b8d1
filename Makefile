# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= examples/quickstart.yaml

.PHONY: venv install dev demo serve test lint typecheck unit integration bench browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

demo: install
	$(BIN)/switchyard serve --config $(CONFIG)

lint: dev
	$(BIN)/ruff check gateway providers policies local_runtime tests benchmarks
	$(BIN)/ruff format --check gateway providers policies local_runtime tests benchmarks

typecheck: dev
	$(BIN)/mypy

test: dev lint typecheck browser
	$(BIN)/python -m pytest -q -p no:cacheprovider

browser:
	bash scripts/install-browser.sh

bench: install
	bash benchmarks/setup.sh
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .switchyard .pytest_cache .mypy_cache .ruff_cache
