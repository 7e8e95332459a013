# The two commands that matter: `make run` (or `make demo`) and `make test`.
# Everything runs from a local virtualenv (.venv) and needs no Docker: Kafka runs from the
# Apache Kafka jars (Java 17 + Maven), AWS is moto, DataHub GMS is the test double in devstack/.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NPM_STAMP := frontend-patch/node_modules/.installed
# The run panel as a DataHub micro-frontend, served by the api (api/lambda_trigger_api/mfe.py).
MFE_ENTRY := api/lambda_trigger_api/mfe_dist/remoteEntry.js
MFE_SOURCES := $(wildcard frontend-patch/src/*.ts frontend-patch/src/*.tsx frontend-patch/mfe/src/*) frontend-patch/mfe/build.mjs

.PHONY: help venv run demo test test-py test-frontend lint typecheck fmt lock clean bench mfe

help:
	@echo "make run     local stack + api + consumer until Ctrl-C"
	@echo "make demo    start the stack, trigger one dataset through the api, print the status, exit"
	@echo "make mfe     build the micro-frontend bundle the api serves at /api/ingestion/mfe/remoteEntry.js"
	@echo "make test    lint, type checks, every Python test (unit, integration on real Kafka, Prometheus, browser) and the frontend tests"

$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

$(NPM_STAMP): frontend-patch/package.json frontend-patch/package-lock.json
	cd frontend-patch && npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

$(MFE_ENTRY): $(NPM_STAMP) $(MFE_SOURCES)
	cd frontend-patch && node mfe/build.mjs

mfe: $(MFE_ENTRY)

run: $(STAMP) $(MFE_ENTRY)
	$(PY) -m devstack up --with-services

demo: $(STAMP) $(MFE_ENTRY)
	$(PY) -m devstack demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# tests/deploy needs helm: built once from the Go module proxy into ~/.cache (deploy/helm/install-helm.sh).
test-py: $(STAMP) $(NPM_STAMP) $(MFE_ENTRY)
	bash deploy/helm/install-helm.sh > /dev/null
	$(VENV)/bin/pytest

test-frontend: $(NPM_STAMP)
	cd frontend-patch && npm test && npx tsc --noEmit

test: lint typecheck test-frontend test-py

# benchmarks.burst: many runs at once (issue 24; its own last-line keys, docs/benchmarks.md).
# Last: benchmarks.side_by_side, whose last line is the summary
# (ratio_vs_bare=... ratio_vs_actions=... pickup_p99_ms=... invoke_p99_ms=... rss_mib=...).
bench: $(STAMP)
	$(PY) -m benchmarks.consumer_filter
	$(PY) -m benchmarks.gms_double_writes
	$(PY) -m benchmarks.burst
	$(PY) -m benchmarks.side_by_side

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Regenerate the pinned lock after changing pyproject.toml's dependencies.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^datahub-lambda-trigger' > requirements-dev.lock

clean:
	rm -rf $(VENV) .devstack .pytest_cache .mypy_cache .ruff_cache frontend-patch/node_modules api/lambda_trigger_api/mfe_dist
