# Two commands on a fresh machine (Python 3.11 + make):
#   make demo   installs everything into .venv, starts the embedded lab and runs the scripted demo
#   make test   installs the dev extras and runs the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint check lab-up lab-down clean

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"LabOps needs Python 3.11, found {sys.version.split()[0]}: set PYTHON=/path/to/python3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m knowledge.build_assets
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/labops demo

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .

check: lint test

lab-up: $(STAMP)
	$(BIN)/labops lab up

lab-down: $(STAMP)
	$(BIN)/labops lab down

clean:
	-test -x $(BIN)/labops && $(BIN)/labops lab down
	rm -rf $(VENV) .labops build *.egg-info .mypy_cache .ruff_cache .pytest_cache
