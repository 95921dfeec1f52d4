# Two commands for a newcomer: `make repro` and `make test`. Both set up .venv when it is missing
# or older than pyproject.toml / requirements.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup repro test test-slow test-long test-all bench lint clean-venv

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -c requirements.lock -e .
	@touch $(STAMP)

setup: $(STAMP)

repro: $(STAMP)
	@bin/cgen repro
	@bin/cgen track flush
	@bin/cgen where
	@bin/cgen machine

test: $(STAMP)
	$(BIN)/pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/pytest -m "slow and not long" -q

# the slow tests CI has no time for (the cifar10_wrn profile end to end: about 30 minutes here)
test-long: $(STAMP)
	$(BIN)/pytest -m long -q

test-all: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	@test -f data/prepared/train.pt || $(BIN)/dvc repro prepare
	bin/cgen bench

lint: $(STAMP)
	$(BIN)/ruff check pipeline stages tests scripts

clean-venv:
	rm -rf $(VENV)

# Beyond one machine. A DVC remote, once per clone (kept out of git by --local), e.g.
#   .venv/bin/dvc remote add --local -d storage /mnt/shared/cg-remote
# then `make push` / `make pull` (REMOTE=name picks another remote than the default).
# These three need .venv (`make setup`) but never reinstall: in a clone whose .venv is a symlink to
# another checkout's, a reinstall would point that environment's editable install at the clone.
.PHONY: push pull mlflow-server
# push and pull say so when no remote is configured, instead of failing over every file
NEED_REMOTE = $(BIN)/dvc remote list | grep -q . || { echo "make $@: no DVC remote is configured; add one with: .venv/bin/dvc remote add --local -d storage /path/to/remote (docs/scale.md, Running at scale)" >&2; exit 2; }

push:
	@$(NEED_REMOTE)
	$(BIN)/dvc push $(if $(REMOTE),-r $(REMOTE))

pull:
	@$(NEED_REMOTE)
	$(BIN)/dvc pull $(if $(REMOTE),-r $(REMOTE))

# The shared MLflow server (options: scripts/mlflow_server.sh --help), e.g. PORT=5001
mlflow-server:
	scripts/mlflow_server.sh $(if $(PORT),--port $(PORT))
