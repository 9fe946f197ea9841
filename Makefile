# The two commands a newcomer needs: `make demo` (the main job) and `make test` (every test).
# Both create .venv/ when it is missing; nothing else needs installing by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint serve materialize dagster bench fuzz system-deps clean

# The Dagster instance config that queues warehouse writers (one at a time).
DAGSTER_HOME ?= $(CURDIR)/dagster_home

# Bytecode is compiled at install: every dbt, Dagster and receiver subprocess starts 1.5-2 s
# sooner than when it recompiles ~1,250 modules (PYTHONDONTWRITEBYTECODE is common in CI).
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.txt -e . --no-deps
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edume-pipeline demo

# What the tests drive and the demo never needs, from Debian's packages when absent: Node.js
# (signature reference), a Java 17 runtime (Spark), chromium (report) and wrk (load).
# `scripts/ensure-system-deps --dry-run` shows what it would install.
system-deps:
	@bash scripts/ensure-system-deps

test: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

serve: $(STAMP)
	$(BIN)/edume-pipeline serve

materialize: $(STAMP)
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/edume-pipeline materialize

dagster: $(STAMP)
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/dagster dev -w workspace.yaml

bench: $(STAMP) system-deps
	$(BIN)/python bench/receiver.py
	$(BIN)/python bench/loader.py
	$(BIN)/python bench/dbt_build.py
	$(BIN)/python bench/simulate.py
	$(BIN)/python bench/spark_vs_duckdb.py

# Coverage-guided fuzzing (atheris/libFuzzer, see fuzz/README.md): every target FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS)

clean:
	rm -rf warehouse exports demo dbt_project/target dbt_project/logs
