# The two set-up commands of README.md: `make run` and `make test`. Both work on a fresh machine with python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/relay.example.yaml

.PHONY: run test lint bench clean

$(BIN)/mentor-relay: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/mentor-relay
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/mentor-relay
	$(BIN)/mentor-relay --config $(CONFIG) serve

test: $(VENV)/.dev
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check relay tests bench
	$(BIN)/mypy relay

bench: $(VENV)/.dev
	$(BIN)/python bench/throughput.py --messages 3000

clean:
	rm -rf $(VENV) var .pytest_cache
