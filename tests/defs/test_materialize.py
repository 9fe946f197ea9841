"""``edume-pipeline materialize`` end to end, with a real dbt build on a copy of the project.

The tests share one module-scoped pipeline (landing, warehouse, exports, dbt project copy) and two
runs: a good one, then one with a broken model while readers query the exports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from materialize_kit import Pipeline, copy_dbt_project

from bench.synthetic import write_backlog
from pipeline.export import DESIGNED_MARTS, mart_parquet_glob

# Dagster's STEP_START event, as its console logger prints it into the run's output.
DBT_STEP_STARTED = 'Started execution of step "edume_dbt_models"'


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("materialize")
    made = Pipeline.under(root, copy_dbt_project(root / "dbt_project"))
    write_backlog(made.landing, events=600, per_segment=200)
    return made


@pytest.fixture(scope="module")
def first_run(pipeline: Pipeline) -> subprocess.CompletedProcess[str]:
    return pipeline.materialize()


def test_materialize_loads_builds_and_exports_every_mart(
    pipeline: Pipeline, first_run: subprocess.CompletedProcess[str]
) -> None:
    assert first_run.returncode == 0, first_run.stdout[-3000:] + first_run.stderr[-3000:]
    assert "materialize: OK" in first_run.stdout
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        marts = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        }
        built = {m: con.execute(f'select count(*) from marts."{m}"').fetchone()[0] for m in marts}
        loaded = con.execute("select count(*) from raw.edume_events").fetchone()[0]
    assert loaded == 600
    assert set(DESIGNED_MARTS) <= marts
    assert exported_row_counts(pipeline.exports, marts) == built


def exported_row_counts(exports: Path, marts: set[str]) -> dict[str, int]:
    """Rows of each mart's export, whatever its layout (one file, or monthly partitions)."""
    with duckdb.connect() as con:
        return {
            mart: con.execute(
                "select count(*) from read_parquet(?, hive_partitioning = false)",
                [mart_parquet_glob(exports, mart)],
            ).fetchone()[0]
            for mart in marts
        }


@dataclass
class WatchedRun:
    """A materialize run with a broken dbt model, and what readers saw while it ran."""

    returncode: int
    output: str
    exports_before: dict[str, bytes]
    exports_after: dict[str, bytes]
    answers_during_dbt: int  # reads begun after the dbt step started, ended before the run did


@pytest.fixture(scope="module")
def broken_run(pipeline: Pipeline, first_run: subprocess.CompletedProcess[str]) -> WatchedRun:
    """After the good first run: new events, a model that fails, and readers polling meanwhile."""
    before = pipeline.export_snapshot()
    write_backlog(pipeline.landing, events=100, per_segment=100, first_index=600, prefix="late")
    (pipeline.dbt_project / "models" / "marts" / "fct_broken.sql").write_text(
        "select cast('not a number' as integer) as broken_id\n"
    )
    log = pipeline.root / "broken-run.log"
    run = pipeline.start(log)
    # A hang guard, not a speed limit: 8 builds sharing 2 cores have taken this run past 4 min.
    deadline = time.monotonic() + 600
    answers_during_dbt = 0
    try:
        while run.poll() is None and time.monotonic() < deadline:
            dbt_started = DBT_STEP_STARTED in log.read_text()
            read_every_export(pipeline.exports)
            answers_during_dbt += dbt_started and run.poll() is None
            time.sleep(0.25)  # poll like a dashboard refresh, leaving the cores to the run
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)  # the whole run: dbt's process holds the warehouse
        run.wait()
    return WatchedRun(
        run.returncode,
        log.read_text(),
        before,
        pipeline.export_snapshot(),
        answers_during_dbt,
    )


def read_every_export(exports: Path) -> None:
    """What an analyst does: query every view of query.duckdb, and every parquet file directly."""
    with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as con:
        views = con.execute(
            "select schema_name, view_name from duckdb_views() where not internal"
        ).fetchall()
        for schema, view in views:
            con.execute(f'select count(*) from "{schema}"."{view}"').fetchone()
    with duckdb.connect() as con:
        for path in exports.glob("*.parquet"):
            con.execute(f"select count(*) from read_parquet('{path}')").fetchone()


def test_readers_answer_without_lock_errors_while_materialize_runs(broken_run: WatchedRun) -> None:
    # read_every_export raises (and fails the fixture) on any lock error. Counted: reads made
    # while the run's dbt step ran (an event in its log), not a number of polls, which would
    # measure the machine's speed. One poll (0.25 s) is shorter than dbt's own start-up.
    assert broken_run.answers_during_dbt >= 1, broken_run.output[-3000:]


def test_failing_dbt_build_exits_non_zero_and_names_the_failure(broken_run: WatchedRun) -> None:
    assert broken_run.returncode != 0
    assert "FAILED step edume_dbt_models" in broken_run.output


def test_failing_dbt_build_keeps_the_last_good_exports(broken_run: WatchedRun) -> None:
    assert broken_run.exports_after == broken_run.exports_before


def test_failing_dbt_build_still_loads_the_raw_events(
    pipeline: Pipeline, broken_run: WatchedRun
) -> None:
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        assert con.execute("select count(*) from raw.edume_events").fetchone()[0] == 700
