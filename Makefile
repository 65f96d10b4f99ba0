# `make demo` and `make test` work on a fresh machine with only Python 3.11: they create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast bench clean

# The stamp makes a second `make test` skip the install unless setup.py or the pins changed. The runtime
# dependencies are held to the training image's pins (cluster/requirements.txt), so the suite tests what the
# image runs.
$(VENV)/.installed: setup.py cluster/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c cluster/requirements.txt -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python scripts/demo.py

# The suite runs in TEST_WORKERS processes (pytest-xdist): a test often waits on a process or server it started,
# so two processes keep two cores busy. A module runs whole in one process (tests/conftest.py groups them).
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test: $(VENV)/.installed
	$(PYTEST)

# The edit-test loop: every test but those marked slow (trainings, exports, new processes, servers; see
# tests/conftest.py), in a few minutes.
test-fast: $(VENV)/.installed
	$(PYTEST) -m "not slow"

# The benchmarks also need the `bench` extra: KerasHub for generation_speed.py, the real tables of tabular.py.
bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -c cluster/requirements.txt -e '.[test,bench]'
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs build *.egg-info
