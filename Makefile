# `make demo` and `make test` work on a fresh clone with only python3, pip and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast test-slow test-all test-matrix lint install clean dev screenshots soak mutation

# Re-install when the project's metadata changes; otherwise reuse the venv.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/smsp demo

# Three lanes on two pytest-xdist workers (each its own emulator), every test in one of them:
# `test` (4 to 6 minutes on 2 cores) leaves out the slow lane (subprocesses, a PostgreSQL
# server, kill, UI, wheel), which `test-slow` runs and CI runs too (.ci/run); `test-fast`
# (under a minute) also leaves out the heavy tests (Dagster runs, property tests over random
# histories, a million entries, 200,000 plan targets). `test-all` is the three at once. The
# slowest 20 tests are listed at the end. Each test's Dagster instance is a copy of one migrated
# per worker (tests/instances.py).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow" --durations=20

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow and not heavy" --durations=20

test-slow: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m slow --durations=20

test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=20

# The stateful test of opt-out invariants (tests/test_state_machine.py) with a larger budget
# than make test gives it.
soak: $(STAMP)
	SMSP_SOAK=1 $(BIN)/python -m pytest -p no:randomly tests/test_state_machine.py

# Mutation testing of the deletion guard, the plans and the phone-number normaliser (mutmut);
# too slow for every CI run. Scores and the surviving mutants: docs/mutation.md.
mutation: $(STAMP)
	bash scripts/mutation.sh

# The wheel as users install it, in a fresh virtualenv per cell outside the repository (uv):
# newest dependencies on Python 3.13 and 3.12, the lowest allowed on 3.11, the ducklake extra's
# pinned set; each runs the README's step-by-step path and the suite (scripts/matrix.py).
# One or a few cells: make test-matrix CELLS=newest-3.13,lowest-3.11
CELLS ?=
test-matrix: $(STAMP)
	$(BIN)/python scripts/matrix.py $(if $(CELLS),--cells $(CELLS))

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
