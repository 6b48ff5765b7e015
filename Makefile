# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run` needs only the runtime dependencies; tests and lint add the dev extras.
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
BASE_IMAGE ?= python:3.11-slim

.PHONY: install run test lint format image clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(RUNTIME)

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(RUNTIME) $(DEV)

install: $(DEV)

run: $(RUNTIME)
	$(BIN)/syncgate serve

test: $(DEV)
	$(BIN)/pytest

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy syncgate app tests $(wildcard bench)

format: $(DEV)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The wheels of syncgate and its dependencies in dist/, then the image built from them.
image: | $(BIN)/python
	rm -rf dist build
	$(BIN)/pip wheel --quiet --wheel-dir dist .
	docker build --build-arg BASE_IMAGE=$(BASE_IMAGE) -t syncgate .

clean:
	rm -rf $(VENV) dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
