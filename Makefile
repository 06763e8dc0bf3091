# Everything needs only Python 3.11+ and make: the virtualenv and the pinned
# dependencies (constraints.txt) are set up on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: serve test lint unit test-sqlite test-postgres bench bench-quick client-sync ui-screenshots clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## Start tickwork on the embedded SQLite database ./tickwork.db
serve: $(STAMP)
	$(BIN)/tickwork serve

## Every check and the whole test suite, on SQLite and on PostgreSQL
test: lint test-sqlite test-postgres

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test-sqlite: $(STAMP)
	TICKWORK_TEST_DATABASE=sqlite $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test-postgres: $(STAMP)
	TICKWORK_TEST_DATABASE=$(PG_URL) $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

## Regenerate the synchronous client from the asynchronous one (src/tickwork/client/_sync)
client-sync: $(STAMP)
	$(BIN)/python -m tests.unit.client.unasync_client

## The screenshots of docs/ui.md, taken by the browser tests (docs/ui/*.png)
ui-screenshots: $(STAMP)
	TICKWORK_UI_SCREENSHOTS=docs/ui TICKWORK_TEST_DATABASE=sqlite $(BIN)/python -m pytest \
	  -p no:cacheprovider tests/e2e/test_ui_browser.py -q

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
