# The README's two commands: `make demo` and `make test`. Each creates .venv when missing and
# reinstalls only when pyproject.toml changed (stamp files), so a second run starts at once.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# pip compiles every installed module ahead (a third of a fresh install: 114 s, 78 s without),
# and that must stay: with PYTHONDONTWRITEBYTECODE set, as on this machine, nothing compiled
# later is kept, and every process the tests start compiled torch again (pytest 681 -> 757 s).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --editable .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/imgclf demo

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest -n auto --dist loadscope --no-loadscope-reorder  # a worker per core; see tests/conftest.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist
