# Two commands on a fresh machine with python3: `make run` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME := $(abspath data/dagster_home)

.PHONY: run test ui validate benchmark

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# Simulate the plant and materialize the whole asset graph (default profile).
run: $(VENV)/.installed
	$(PY) -m mfg_pipeline.cli run

# Public-data benchmark: the public profile end to end (data half, simulator sensor corpus, models),
# then data/reports/public_benchmark.md and .json. Options: make benchmark ARGS="--only cwru --skip-data".
benchmark: $(VENV)/.installed
	$(PY) -m benchmarks.public_benchmark $(ARGS)

# The whole test suite (tiny scale, CPU).
test: $(VENV)/.installed
	$(PY) -m pytest

# DAGSTER_HOME must be an existing absolute directory for every dagster command.
$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME) && touch $@

validate: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster definitions validate -w workspace.yaml

# The Dagster UI on http://127.0.0.1:3000 with the persistent instance under data/dagster_home.
ui: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	env --default-signal=INT,TERM $(VENV)/bin/dagster dev -w workspace.yaml
