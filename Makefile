# The two jobs: `make repro` (the whole pipeline on params.yaml) and `make test`.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: setup repro test ui serve

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $@

repro: setup
	dvc repro

test: setup
	python -m pytest -q

# Prefect server with its UI at http://127.0.0.1:4200 (stop with Ctrl-C).
ui: setup
	prefect server start --host 127.0.0.1

# Deployments the UI can trigger (run beside `make ui`).
serve: setup
	PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.serve
