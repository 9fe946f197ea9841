"""The live worker's as_of: its batches measure the time-dependent columns at one moment until
``refresh_s`` has passed, so a batch's export rewrites only the buckets of the learners it wrote;
a refresh then moves as_of to now.

In-process (the worker's own ``run_batch`` and ``refresh``: real Dagster runs, real ``dbt build``,
real exports), so the bucket size can be made small enough for a 12-learner company to fill
several buckets. No timing is asserted.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline import export_bucketed
from pipeline.live.worker import LiveWorker
from pipeline.simulator.deliveries import Noise, stream_bodies
from pipeline.simulator.generate import default_end, journeys
from pipeline.simulator.post import land_bodies

pytestmark = [pytest.mark.slow]

SEED = 20261203
AS_OF = re.compile(r"cast\('([0-9: .-]+)' as timestamp\)", re.IGNORECASE)


def progress_as_of(warehouse: Path) -> str:
    """The as_of literal the progress mart's view was built with."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (sql,) = con.execute(
            "select sql from duckdb_views() where view_name = 'fct_learner_course_progress'"
        ).fetchone()
    (moment,) = set(AS_OF.findall(sql))
    return moment


def progress_files(exports: Path) -> list[Path]:
    return sorted((exports / "fct_learner_course_progress").glob("bucket=*/*.parquet"))


@pytest.fixture
def worker(live_worker: LiveWorker, monkeypatch: pytest.MonkeyPatch) -> LiveWorker:
    monkeypatch.setattr(export_bucketed, "ROWS_PER_BUCKET", 4)
    return live_worker


def test_batches_share_as_of_until_a_refresh_moves_it(worker: LiveWorker) -> None:
    truth, batches = journeys(12, SEED, default_end())
    bodies = list(stream_bodies(batches, Noise(), SEED, truth))
    exports = worker.settings.export_dir
    land_bodies(worker.landing, bodies[:-5], datetime.now(UTC))
    first = worker.run_batch(worker.poll())
    assert first is not None and first.success
    as_of = progress_as_of(worker.warehouse)

    land_bodies(worker.landing, bodies[-5:], datetime.now(UTC))  # the last few events
    second = worker.run_batch(worker.poll())

    assert second is not None and second.success
    assert progress_as_of(worker.warehouse) == as_of
    after = progress_files(exports)
    linked = [path for path in after if path.stat().st_nlink > 1]  # the previous version's
    assert 0 < len(linked) < len(after), "the batch rewrote every bucket, or none"
    with duckdb.connect(str(worker.warehouse), read_only=True) as con:
        (negative,) = con.execute(
            "select count(*) from marts.fct_learner_course_progress where days_inactive < 0"
        ).fetchone()
    assert negative == 0

    worker.as_of_moved -= worker.options.refresh_s  # as if an hour had passed
    assert worker.as_of_is_due()
    refreshed = worker.refresh()

    assert refreshed.success
    assert progress_as_of(worker.warehouse) > as_of
    assert not [path for path in progress_files(exports) if path.stat().st_nlink > 1]


def test_a_batch_reports_each_table_as_dbt_built_it(worker: LiveWorker) -> None:
    """Row count and columns on every table's materialization, logged by dbt as it built the
    table (macros/table_metadata.sql); views carry neither."""
    truth, batches = journeys(6, SEED, default_end())
    land_bodies(
        worker.landing, list(stream_bodies(batches, Noise(), SEED, truth)), datetime.now(UTC)
    )
    report = worker.run_batch(worker.poll())
    assert report is not None and report.success

    with duckdb.connect(str(worker.warehouse), read_only=True) as con:
        relations = con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_schema in ('intermediate', 'marts', 'quality', 'reporting')"
        ).fetchall()
        tables = {
            (schema, name): (
                con.execute(f'select count(*) from {schema}."{name}"').fetchone()[0],
                [tuple(row[:2]) for row in con.execute(f'describe {schema}."{name}"').fetchall()],
            )
            for schema, name, kind in relations
            if kind == "BASE TABLE"
        }
    views = [(schema, name) for schema, name, kind in relations if kind == "VIEW"]
    reported = {}
    for schema, name in [*tables, *views]:
        event = worker.instance.get_latest_materialization_event(dg.AssetKey([schema, name]))
        assert event is not None, (schema, name)
        metadata = event.asset_materialization.metadata
        if "dagster/row_count" in metadata:
            columns = metadata["dagster/column_schema"].value.columns
            reported[(schema, name)] = (
                metadata["dagster/row_count"].value,
                [(column.name, column.type) for column in columns],
            )

    assert tables and views
    assert reported == tables
