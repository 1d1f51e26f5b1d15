# One command per target; CI calls `make test` too. `make help` lists them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help run check-config test fuzz lint bench clean
.DEFAULT_GOAL := help

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $@

run: $(VENV)/.installed ## serve the API on :9410, OCPI on :9411 and OCPP on :9310 (MAEVE_* variables pass through)
	mkdir -p var
	$(BIN)/maeve-api serve

check-config: $(VENV)/.installed ## validate the MAEVE_* environment and print what `make run` would serve
	$(BIN)/maeve-api check-config

# mongoeco's environment (tests/mongoeco_engine.py, Python 3.13) is made before the tests, not by the first test that
# needs it; without Python 3.13 this says so and its tests are skipped, saying why.
test: $(VENV)/.installed ## install if needed and run every test, on every core (about a minute once installed, on 2 idle cores)
	$(BIN)/python -m tests.mongoeco_engine > /dev/null || true
	$(BIN)/pytest

# The contract tests at a larger volume than the default run (40 times the cases).
fuzz: $(VENV)/.installed ## the contract tests at 800 generated cases per operation
	MAEVE_CONTRACT_EXAMPLES=$${MAEVE_CONTRACT_EXAMPLES:-800} $(BIN)/pytest tests/contract --hypothesis-show-statistics

bench: $(VENV)/.installed ## the benchmark (needs wrk and hey); results in bench/results/, BENCH_DOCS=1 also docs/
	$(BIN)/python -m bench.run

lint: $(VENV)/.installed ## ruff and mypy
	$(BIN)/ruff check maeve_api handlers storage tests bench
	$(BIN)/mypy maeve_api handlers storage bench

clean: ## remove the virtual environment, var/ and the caches
	rm -rf $(VENV) .venv-mongoeco .venv-mongoeco.lock var build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
