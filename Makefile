# Two commands on a fresh machine with python3: `make run` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME := $(abspath data/dagster_home)

.PHONY: run test ui validate benchmark device-bundle

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

# For benchmarks/device_benchmark.sh on a lent GPU machine: the wheels its image lacks (it has
# PyTorch, pandas, scikit-learn, transformers; no Dagster, no package index), at the versions this
# venv resolves, for its Python 3.12; and a link to the datasets, whose folders a call carries.
DEVICE_WHEELS := dagster==1.13.27 dagster-pipes==1.13.27 dagster-shared==1.13.27 alembic==1.20.1 \
	antlr4-python3-runtime==4.13.2 coloredlogs==14.0 humanfriendly==10.0 docstring-parser==0.18.0 \
	python-dotenv==1.2.4 structlog==26.1.0 toposort==1.10 universal-pathlib==0.3.11 pathlib-abc==0.5.2 \
	watchdog==6.0.0 mako==1.4.3 sqlalchemy==2.1.9 pydantic==2.14.4 pydantic-core==2.50.5 \
	annotated-types==0.8.0 typing-inspection==0.4.5 tomli==2.5.0 tomlkit==0.15.3 \
	grpcio-health-checking==1.81.1 pytz==2026.6 tzdata==2026.6 platformdirs==4.14.9
device-bundle:
	mkdir -p .device/whl && ln -sfn ../../shared/datasets .device/datasets
	python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d .device/whl $(DEVICE_WHEELS)
