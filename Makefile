# Everything here needs only python3 and make: the first target that wants the virtual
# environment creates it from uv.lock with a pinned uv, installed into .tools/.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test check format lint typecheck bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/experiment-items serve

test: install
	$(BIN)/pytest

format: install
	$(BIN)/ruff format app tests
	$(BIN)/ruff check --fix app tests

lint: install
	$(BIN)/ruff format --check app tests
	$(BIN)/ruff check app tests

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache

bench: install
	$(UV) sync --frozen --python $(PYTHON) --group bench
	$(BIN)/python bench/run.py
