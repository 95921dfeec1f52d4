# Two commands for a newcomer: `make repro` and `make test`. Both set up .venv when it is missing
# or older than pyproject.toml / requirements.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup repro test test-slow test-all bench lint clean-venv

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -c requirements.lock -e .
	@touch $(STAMP)

setup: $(STAMP)

repro: $(STAMP)
	@start=$$(date +%s); $(BIN)/dvc repro && echo "dvc repro finished in $$(( $$(date +%s) - start )) s"
	@bin/cgen track flush
	@bin/cgen where

test: $(STAMP)
	$(BIN)/pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/pytest -m slow -q

test-all: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	@test -f data/prepared/train.pt || $(BIN)/dvc repro prepare
	bin/cgen bench

lint: $(STAMP)
	$(BIN)/ruff check pipeline stages tests scripts

clean-venv:
	rm -rf $(VENV)
