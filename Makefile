# Common tasks. `make help` lists them.
PY ?= python3

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

install:  ## editable install with test tools
	$(PY) -m pip install -e '.[test]'

test:  ## the whole suite on the embedded PostgreSQL
	$(PY) -m pytest

test-external:  ## the whole suite on the PostgreSQL at 127.0.0.1:5432
	WB_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres $(PY) -m pytest

lint:  ## ruff, and mypy on the pure protocol package
	$(PY) -m ruff check .
	$(PY) -m mypy protocol

serve:  ## run a node on the embedded database
	wb serve

docs:  ## regenerate .env.example, the table in docs/settings.md and docs/cli.md
	$(PY) -m service.settings_docs > .env.example
	$(PY) -m service.settings_docs --markdown docs/settings.md
	$(PY) -m ops.cli_docs > docs/cli.md

screenshots:  ## refresh docs/screenshots/ (admin console, approvals, feed; desktop and phone)
	$(PY) -m tests.browser.screenshots

bench:  ## run the benchmarks under bench/
	for f in bench/bench_*.py; do $(PY) $$f; done

.PHONY: help install test test-external lint serve docs screenshots bench
