# Everything here needs only python3 and make: the first target that wants the virtual
# environment creates it from uv.lock with a pinned uv, installed into .tools/.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test check format lint typecheck bench clean binary binary-test soak

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(VENV)/.installed

# `make run PORT=5174` serves on another port (EXPERIMENT_ITEMS_PORT works too). A database
# that does not exist yet gets the demo evaluation first, so that http://127.0.0.1:5173/ has
# something to show (serve --demo-if-new); one that exists is served as it is, never changed.
# `make run DEMO=0` starts a new database empty.
run: install
	$(BIN)/experiment-items serve $(if $(filter 0,$(DEMO)),,--demo-if-new) $(if $(PORT),--port $(PORT))

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

# The reliability tests at full size (tests/soak/harness.py, scaled()): more fuzzed cases, 25
# SIGKILL cycles, more concurrent clients. Each prints its figures; 8 to 15 minutes on a 2-core machine.
soak: install
	SOAK=1 $(BIN)/pytest tests/test_reliability_*.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache build dist

bench: install
	$(UV) sync --frozen --python $(PYTHON) --group bench
	$(BIN)/python bench/run.py

# The single-file executable, dist/experiment-items. It is built from its own environment under
# build/ (the runtime dependencies and the `binary` group only): the shared .venv stays as
# `make install` made it, and nothing from the dev tools can slip into the executable.
BINARY_VENV := build/venv

binary: $(UV)
	UV_PROJECT_ENVIRONMENT=$(BINARY_VENV) $(UV) sync --frozen --python $(PYTHON) --no-dev --group binary
	$(BINARY_VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN \
		--distpath dist --workpath build/pyinstaller packaging/experiment-items.spec

# Builds it, then runs its tests, which `make test` runs only when dist/experiment-items exists.
binary-test: binary install
	EXPERIMENT_ITEMS_BINARY=dist/experiment-items $(BIN)/pytest tests/test_binary.py
