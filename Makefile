# The two commands a newcomer needs: `make demo` (the main job) and `make test` (every test).
# Both create .venv/ when it is missing; nothing else needs installing by hand.
# Each target installs only what it needs: the main environment (requirements.txt: DuckDB, dbt,
# Dagster, pandas, pyarrow) for the demo and production; Spark (requirements-spark.txt) and the
# test, lint and fuzz tools (requirements-dev.txt) only for the targets that use them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint serve materialize dagster spark bench fuzz system-deps clean docs

# The Dagster instance config that queues warehouse writers (one at a time).
DAGSTER_HOME ?= $(CURDIR)/dagster_home

# Bytecode is compiled at install: every dbt, Dagster and receiver subprocess starts 1.5-2 s
# sooner than when it recompiles ~1,250 modules (PYTHONDONTWRITEBYTECODE is common in CI).
# --no-deps: the files are complete, exact closures (scripts/compile-requirements); nothing else
# gets in.
INSTALL := $(UV) pip install -q --compile-bytecode --python $(BIN)/python --no-deps

$(UV):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9

$(STAMP): requirements.txt pyproject.toml | $(UV)
	$(INSTALL) -r requirements.txt -e .
	@touch $@

$(SPARK_STAMP): requirements-spark.txt $(STAMP)
	$(INSTALL) -r requirements-spark.txt
	@touch $@

$(DEV_STAMP): requirements-dev.txt $(STAMP)
	$(INSTALL) -r requirements-dev.txt
	@touch $@

demo: $(STAMP)
	$(BIN)/edume-pipeline demo

# What the tests drive and the demo never needs, from Debian's packages when absent: Node.js
# (signature reference), a Java 17 runtime (Spark), chromium (report) and wrk (load).
# `scripts/ensure-system-deps --dry-run` shows what it would install.
system-deps:
	@bash scripts/ensure-system-deps

# The suite runs on TEST_WORKERS processes (pytest-xdist), each taking a whole test file at a time
# (--dist loadfile: a file's module fixtures are built once). Most of a test's time is spent
# waiting on the processes it starts (receivers, dbt, Spark, Dagster), so two workers fit two cores.
# `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2
test: $(STAMP) $(SPARK_STAMP) $(DEV_STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

serve: $(STAMP)
	$(BIN)/edume-pipeline serve

materialize: $(STAMP)
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/edume-pipeline materialize

dagster: $(STAMP)
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/dagster dev -w workspace.yaml

# Everything on one machine: the receiver (EDUME_PORT, default 8000), Dagster's UI and daemon
# (EDUME_UI_PORT, default 3000, on 127.0.0.1) and the live worker; Ctrl-C stops every part.
.PHONY: up
up: $(STAMP)
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/edume-pipeline up

# Production on Spark (EDUME_ENGINE=spark) needs the Spark engine installed first: `make spark`.
spark: $(SPARK_STAMP)

bench: $(SPARK_STAMP) system-deps
	$(BIN)/python bench/receiver.py
	$(BIN)/python bench/loader.py
	$(BIN)/python bench/dbt_build.py
	$(BIN)/python bench/simulate.py
	$(BIN)/python bench/spark_vs_duckdb.py

# Coverage-guided fuzzing (atheris/libFuzzer, see fuzz/README.md): every target FUZZ_SECONDS.
# system-deps: the signature target's oracle is Node.js.
FUZZ_SECONDS ?= 60
fuzz: $(DEV_STAMP) system-deps
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS)

# The dbt docs site as one offline HTML file: $(DOCS_DIR)/static_index.html (open it in a
# browser). It needs no warehouse connection, so it works while a run holds the warehouse lock:
# `dbt parse` writes the manifest and the catalog is left empty (--empty-catalog, --no-compile);
# each mart's column types come from its enforced contract, descriptions from the model files.
# No call leaves the machine (dbt_project.yml turns dbt's usage stats and version check off).
DOCS_DIR ?= $(CURDIR)/dbt_project/target/docs
DBT_DOCS_ARGS = --project-dir dbt_project --profiles-dir dbt_project \
	--target-path $(DOCS_DIR) --log-path $(DOCS_DIR)/logs
docs: $(STAMP)
	DO_NOT_TRACK=1 $(BIN)/dbt parse $(DBT_DOCS_ARGS)
	DO_NOT_TRACK=1 $(BIN)/dbt docs generate --static --empty-catalog --no-compile $(DBT_DOCS_ARGS)
	@echo "dbt docs: $(DOCS_DIR)/static_index.html"

clean:
	rm -rf warehouse exports demo dbt_project/target dbt_project/logs
