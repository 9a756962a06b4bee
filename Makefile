# One task runner for developers, CI (.ci/run) and the README. `make help` lists the targets.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: help venv kafka lint format typecheck test test-unit ci demo bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)  ## create .venv and install the project with its dev tools

kafka: venv  ## fetch Apache Kafka from Maven Central into the cache (once)
	$(VENV)/bin/gateway broker install

lint: venv  ## ruff lint and format check, architecture contracts (import-linter)
	$(VENV)/bin/ruff check gateway connectors tests bench conftest.py
	$(VENV)/bin/ruff format --check gateway connectors tests bench conftest.py
	$(VENV)/bin/lint-imports

format: venv  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix gateway connectors tests bench
	$(VENV)/bin/ruff format gateway connectors tests bench

typecheck: venv  ## mypy --strict
	$(VENV)/bin/mypy

test: venv kafka  ## all tests; starts and stops its own Kafka broker unless KAFKA_BOOTSTRAP_SERVERS is set
	$(PY) -m pytest

test-unit: venv  ## tests that need no broker
	$(PY) -m pytest -m "unit or contract"

ci: lint typecheck test  ## what .ci/run runs

demo: venv kafka  ## run the gateway on its bundled sample data, then stop
	$(VENV)/bin/gateway demo

bench: venv kafka  ## benchmarks (print figures)
	$(PY) bench/run_all.py

clean:  ## remove the venv and caches (not the Kafka cache)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
