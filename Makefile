# One command per target; CI calls `make test` too.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test fuzz lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $@

run: $(VENV)/.installed
	mkdir -p var
	$(BIN)/maeve-api serve

test: $(VENV)/.installed
	$(BIN)/pytest

# The contract tests at a larger volume than the default run (about 20 times the cases).
fuzz: $(VENV)/.installed
	MAEVE_CONTRACT_EXAMPLES=$${MAEVE_CONTRACT_EXAMPLES:-800} $(BIN)/pytest tests/contract --hypothesis-show-statistics

bench: $(VENV)/.installed
	command -v wrk >/dev/null && command -v hey >/dev/null || (apt-get update && apt-get install -y wrk hey)
	$(BIN)/python -m bench.run

lint: $(VENV)/.installed
	$(BIN)/ruff check maeve_api handlers storage tests bench
	$(BIN)/mypy maeve_api handlers storage bench

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
