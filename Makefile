# Fruits! image pipeline — the commands a developer needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= ../shared
SAMPLE ?= $(SHARED)/data/fruits360-sample
# Real phone photos (a second source, with its fruit_map.csv): trained on when present.
GROCERY ?= $(SHARED)/data/grocery-store-real
SHARED_WEIGHTS := $(SHARED)/models/mobilenet_v2_1.0_224_imagenet_no_top.weights.h5
# Without a local weights file the jobs use Keras' own ImageNet download (needs internet).
WEIGHTS ?= $(if $(wildcard $(SHARED_WEIGHTS)),$(SHARED_WEIGHTS),imagenet)
OUTPUT ?= output
PYTEST_ARGS ?=
BENCH_ARGS ?=
SERVICE_BENCH_ARGS ?=
# make serve: MODEL=<train output folder> or POINTER=<current-model pointer URI>; neither: the
# model promoted under $(OUTPUT), else the last local run's.
MODEL ?=
POINTER ?=
HOST ?= 127.0.0.1
PORT ?= 8000
# Absolute: Airflow task processes and spark-submit run from other folders.
DATA_ENV = FRUITS_SAMPLE_DIR="$(abspath $(SAMPLE))" FRUITS_WEIGHTS="$(abspath $(SHARED_WEIGHTS))"

.PHONY: help install run serve test bench bench-service lint format clean constraints

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(VENV)/.installed  ## create .venv and install the project with pinned versions

$(VENV)/.installed: pyproject.toml constraints.txt scripts/ensure-java.sh
	scripts/ensure-java.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

run: install  ## set up and run the local pipeline on the Fruits-360 sample and the grocery photos
	$(BIN)/fruits-local --input "$(SAMPLE)" $(if $(wildcard $(GROCERY)),--input "$(GROCERY)") \
		--output "$(OUTPUT)" --weights "$(WEIGHTS)"

serve: install  ## serve the last local run's model (or MODEL=… / POINTER=…) on http://127.0.0.1:8000
	FRUITS_WEIGHTS="$(WEIGHTS)" $(BIN)/fruits-serve --output "$(OUTPUT)" --host $(HOST) --port $(PORT) \
		$(if $(MODEL),--model "$(MODEL)") $(if $(POINTER),--pointer "$(POINTER)")

# `make lint` first: deterministic (pinned tools) and under a minute even with a cold mypy cache.
test: install lint  ## lint, then the whole test suite (real Spark, TensorFlow, Airflow, moto, Chromium)
	scripts/install-browser.sh
	$(DATA_ENV) $(BIN)/pytest $(PYTEST_ARGS)

bench: install  ## benchmarks: featurization, broadcast, PCA, end to end, service load (tables)
	$(DATA_ENV) $(BIN)/python bench/benchmark.py $(BENCH_ARGS)
	$(DATA_ENV) $(BIN)/python bench/service_load.py $(SERVICE_BENCH_ARGS)

bench-service: install  ## the prediction service's load test alone (bench/service_load.py)
	$(DATA_ENV) $(BIN)/python bench/service_load.py $(SERVICE_BENCH_ARGS)

SHELL_SCRIPTS := jobs/fruits_airflow/bootstrap/*.sh scripts/*.sh .ci/run

lint: install  ## ruff lint and format check, mypy (strict), shellcheck when installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@if command -v shellcheck >/dev/null; then shellcheck $(SHELL_SCRIPTS); \
	else echo "shellcheck not installed: shell scripts not checked (apt-get install shellcheck)"; fi

format: install  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:  ## remove outputs and caches (keeps .venv)
	rm -rf $(OUTPUT) .pytest_cache .ruff_cache .mypy_cache spark-warehouse

constraints: install  ## re-pin constraints.txt from the current .venv
	{ head -2 constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^fruits-pipeline'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
