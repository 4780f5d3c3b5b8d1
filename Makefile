# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= examples/quickstart.yaml

.PHONY: venv install dev native demo serve test lint typecheck unit integration bench browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[native]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed native
dev: $(VENV)/.dev-installed native

# The request path's synchronous modules compiled with mypyc into build/native/ (scripts/build_native.py).
# Rebuilt when one of them changes; the gateway checks their hashes at start and runs the sources
# whenever the build does not match them. Without a C compiler the build fails and the gateway runs
# interpreted, as it does with SWITCHYARD_NATIVE=0.
NATIVE_SOURCES := $(shell $(PYTHON) scripts/build_native.py --list)
build/native/manifest.json: scripts/build_native.py $(NATIVE_SOURCES) | $(VENV)/.installed
	$(BIN)/python scripts/build_native.py || echo "switchyard: compiled modules not built; the gateway runs interpreted" >&2
native: build/native/manifest.json

demo: install
	$(BIN)/switchyard serve --config $(CONFIG)

lint: dev
	$(BIN)/ruff check gateway providers policies local_runtime tests benchmarks scripts
	$(BIN)/ruff format --check gateway providers policies local_runtime tests benchmarks scripts

typecheck: dev
	$(BIN)/mypy

# The whole suite runs with the compiled modules (when they built), then the unit tests and the
# integration tests closest to them again with every module interpreted (what `pip install` ships).
INTERPRETED_TESTS := tests/unit tests/integration/test_bad_input_fuzz.py tests/integration/test_stream_lifecycle.py \
	tests/integration/test_openai_passthrough.py tests/integration/test_failover.py
test: dev lint typecheck browser
	$(BIN)/python -m pytest -q -p no:cacheprovider
	SWITCHYARD_NATIVE=0 $(BIN)/python -m pytest -q -p no:cacheprovider $(INTERPRETED_TESTS)

browser:
	bash scripts/install-browser.sh

bench: install
	bash benchmarks/setup.sh
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .switchyard .pytest_cache .mypy_cache .ruff_cache build
