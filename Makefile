# The two commands of the README, and the steps behind them.
#   make up    — install what is missing, then run the embedded floor (smart up)
#   make test  — install what is missing, then ruff, mypy and the whole test suite
# Both are safe to run again: each step does nothing when its work is already done.

VENV      := .venv
PYTHON    := python3
BIN       := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: up test test-busy lint typecheck pytest install system-packages crds clean

up: install
	$(BIN)/smart up $(UP_ARGS)

test: install lint typecheck pytest

install: system-packages $(INSTALLED)

system-packages:
	@scripts/install-system-packages system-packages.txt

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

# The whole suite with both cores kept busy beside it (stress-ng), as on a shared machine: the
# suite must pass so, because tests wait for states with generous deadlines, never for a time.
test-busy: install
	stress-ng --cpu 2 --quiet & busy=$$!; \
	$(MAKE) lint typecheck pytest; status=$$?; kill $$busy; wait $$busy 2>/dev/null; exit $$status

lint: install
	$(BIN)/ruff check smart tests
	$(BIN)/ruff format --check smart tests
	$(BIN)/lint-imports --no-cache

typecheck: install
	$(BIN)/mypy

# Two workers (pytest-xdist): most of a test's time is spent waiting on servers it started, so two
# at once finish the suite in little more than half the time on CI's two cores. Each worker looks for
# free ports in its own slice (smart/testing/plugin.py). PYTEST_ARGS="-n 0" runs in one process.
PYTEST_ARGS ?= -n 2 --dist worksteal
pytest: install
	$(BIN)/pytest $(PYTEST_ARGS)

crds: install
	$(BIN)/smart crds

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
