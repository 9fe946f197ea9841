"""Each asset check warns on data made for it, and ``materialize`` reports it; every table and
incremental dbt asset reports a row count equal to its ``count(*)`` (views are exempt).

One real run over a landing made to trip all three checks: every delivery was received a month
ago (stale), 2 % of the lines are not JSON (rejected), and some bodies carry an unknown type.
"""

from __future__ import annotations

import ast
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from materialize_kit import Pipeline, copy_dbt_project

from bench.synthetic import EPOCH, event_body, landed_lines, write_segment
from pipeline.defs.checks import raw_events_freshness
from pipeline.defs.resources import EdumePaths
from pipeline.loader.ndjson import load_landing

GOOD_LINES = 490
BAD_LINES = 10  # 2 % of 500: over the 1 % the check allows
UNKNOWN_TYPE = "learner.teleported"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("checks")
    made = Pipeline.under(root, copy_dbt_project(root / "dbt_project"))
    bodies = [event_body(i) for i in range(GOOD_LINES - 5)]
    bodies += [event_body(i, event_type=UNKNOWN_TYPE) for i in range(GOOD_LINES, GOOD_LINES + 5)]
    lines = list(landed_lines(bodies, received_at=EPOCH))  # a month before the tests run
    lines[100:100] = [b"this line is not json\n"] * BAD_LINES
    write_segment(made.landing, "stale-and-dirty", lines)
    return made


@pytest.fixture(scope="module")
def run(pipeline: Pipeline) -> subprocess.CompletedProcess[str]:
    return pipeline.materialize()


def warned_checks(output: str) -> set[str]:
    return set(re.findall(r"check \S+:(\w+) did not pass \(WARN\)", output))


def test_materialize_succeeds_and_reports_each_check_that_warned(
    run: subprocess.CompletedProcess[str],
) -> None:
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert {"raw_events_are_fresh", "rejected_lines_are_rare", "no_unknown_event_types"} <= (
        warned_checks(run.stdout)
    )


def test_materialize_shows_progress_not_dagster_debug_lines(
    pipeline: Pipeline, run: subprocess.CompletedProcess[str]
) -> None:
    progress = re.findall(r"progress: +[\d.]+s +step \S+ +dbt (\d+)/(\d+)", run.stdout)
    log = pipeline.log_file.read_text()

    assert progress
    assert progress[-1][0] == progress[-1][1]  # the last line counts every model and seed
    assert " - DEBUG - " not in run.stdout + run.stderr
    assert " - DEBUG - " in log
    # The loader's own log line, captured into the run's event log (a managed Python logger).
    assert re.search(
        r"raw__edume_events - .*line\(s\) rejected into raw\.edume_rejected_lines", log
    )


def reported_row_counts(output: str) -> dict[str, int]:
    """``materialized <schema>/<name> {...}`` lines -> the ``dagster/row_count`` they carry."""
    counts = {}
    for key, meta in re.findall(r"^  materialized (\S+) (\{.*\})$", output, re.MULTILINE):
        row_count = ast.literal_eval(meta).get("dagster/row_count")
        if row_count is not None:
            counts[key] = row_count
    return counts


def test_every_table_and_incremental_model_reports_its_row_count(
    pipeline: Pipeline, run: subprocess.CompletedProcess[str]
) -> None:
    reported = reported_row_counts(run.stdout)
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        relations = con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_schema in ('staging', 'intermediate', 'marts', 'quality', 'reporting')"
        ).fetchall()
        tables = {
            f"{schema}/{name}": con.execute(f'select count(*) from {schema}."{name}"').fetchone()[0]
            for schema, name, kind in relations
            if kind == "BASE TABLE"
        }
    views = {f"{schema}/{name}" for schema, name, kind in relations if kind == "VIEW"}

    assert tables
    assert {key: reported.get(key) for key in tables} == tables
    assert not views & reported.keys()  # exempt: counting a view runs its whole query


def loaded_warehouse(tmp_path: Path, received_at: datetime) -> EdumePaths:
    landing, warehouse = tmp_path / "landing", tmp_path / "edume.duckdb"
    write_segment(landing, "s", landed_lines([event_body(1)], received_at), received_at=received_at)
    load_landing(landing, warehouse)
    return EdumePaths(landing_dir=str(landing), warehouse=str(warehouse), export_dir="unused")


def test_freshness_check_passes_on_a_delivery_received_now(tmp_path: Path) -> None:
    paths = loaded_warehouse(tmp_path, datetime.now(UTC))

    assert raw_events_freshness(paths, timedelta(hours=24)).passed


def test_freshness_check_fails_on_a_delivery_older_than_its_window(tmp_path: Path) -> None:
    paths = loaded_warehouse(tmp_path, datetime.now(UTC) - timedelta(hours=25))

    result = raw_events_freshness(paths, timedelta(hours=24))

    assert not result.passed
    assert result.metadata["age_hours"].value > 24
