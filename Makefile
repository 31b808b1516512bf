# gme_data: two entry points (see README). Each does its own set-up.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export GME_DATA_HOME ?= $(CURDIR)/var
export DAGSTER_HOME ?= $(CURDIR)/var/dagster_home
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export GME_DATA_REPORTS_PORT ?= 3001
export GME_DATA_REPORTS_URL ?= http://127.0.0.1:$(GME_DATA_REPORTS_PORT)

.PHONY: setup demo materialize ui test lint screenshots clean

setup:
	bash scripts/setup.sh

## Install, materialize the whole asset graph on the bundled sample (offline), then open the Dagster UI.
demo: setup materialize ui

materialize:
	$(PY) -m dagster_project.demo

ui:
	@echo "Dagster UI on http://127.0.0.1:$${GME_DATA_UI_PORT:-3000}, quality reports on $(GME_DATA_REPORTS_URL) (Ctrl-C or SIGTERM stops all of it)"
	exec $(PY) -m dagster_project.ui --port $${GME_DATA_UI_PORT:-3000} --reports-port $(GME_DATA_REPORTS_PORT)

## Install and run the whole test suite (what CI runs).
test: setup
	bash scripts/setup-system.sh
	bash scripts/setup-swift.sh
	bash scripts/test.sh

lint:
	$(VENV)/bin/ruff check gme_data assets dagster_project quality tests benchmarks scripts
	PYTHONPATH=$(CURDIR) $(VENV)/bin/lint-imports

## Regenerate the operator's-guide screenshots (real dagster dev + headless Chromium).
screenshots:
	$(PY) scripts/screenshots.py

clean:
	rm -rf var
