# `make demo` and `make test` work on a fresh clone with only python3, pip and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint install clean dev screenshots

# Re-install when the project's metadata changes; otherwise reuse the venv.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/smsp demo

# The whole suite on two pytest-xdist workers (each its own emulator); `test-fast` leaves out
# the tests marked slow (subprocesses, a PostgreSQL server, kill, UI, wheel).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow"

# Refresh the README's screenshots of the Dagster UI (tests/test_ui.py, headless Chromium).
screenshots: $(STAMP)
	SMSP_SCREENSHOTS=1 $(BIN)/python -m pytest tests/test_ui.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# The emulator (port 8787, 1000 opt-outs, api key "dev") and `dagster dev` on 127.0.0.1:3000 with
# DAGSTER_HOME=dagster_home; Ctrl-C stops both.
dev: $(STAMP)
	bash scripts/dev.sh
