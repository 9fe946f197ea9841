"""Exports: each mart as parquet (atomic, BI types) and query.duckdb, readable during writes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
from export_schema import arrow_type, bi_problems, read_export

from pipeline import export_partitioned
from pipeline.export import export_marts, mart_parquet_glob
from pipeline.export_partitioned import (
    EMPTY_MONTH,
    KEEP_SUPERSEDED_S,
    remove_superseded_versions,
)
from pipeline.loader.ndjson import DDL
from pipeline.settings import REPO_ROOT

HOLD_WRITE_CONNECTION = (
    "import sys, time, duckdb\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('open', flush=True)\n"
    "time.sleep(float(sys.argv[2]))"
)


def make_warehouse(path: Path, sql: str) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.execute(sql)
    return path


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return make_warehouse(
        tmp_path / "edume.duckdb",
        "create table marts.fct_example as select 7::utinyint as tiny, 12::hugeint as huge, "
        "3::ubigint as big, timestamp '2026-11-29 05:00:00' as occurred_at, 'x' as label",
    )


def test_marts_export_as_parquet_with_bi_friendly_types(tmp_path: Path, warehouse: Path) -> None:
    export_marts(warehouse, tmp_path / "exports")

    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        relation = f"read_parquet('{tmp_path / 'exports' / 'fct_example.parquet'}')"
        types = dict(
            (row[0], row[1]) for row in con.execute(f"describe select * from {relation}").fetchall()
        )
        occurred = con.execute(f"select epoch(occurred_at) from {relation}").fetchone()[0]

    assert types == {
        "tiny": "SMALLINT",
        "huge": "BIGINT",
        "big": "BIGINT",
        "occurred_at": "TIMESTAMP WITH TIME ZONE",
        "label": "VARCHAR",
    }
    assert occurred == 1_795_928_400  # 2026-11-29T05:00:00Z: naive warehouse time read as UTC


def test_query_file_answers_while_another_process_holds_the_warehouse(
    tmp_path: Path, warehouse: Path
) -> None:
    export_marts(warehouse, tmp_path / "exports")
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_CONNECTION, str(warehouse), "10"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "open"
        with pytest.raises(duckdb.IOException, match="lock"):  # the warehouse itself is locked
            duckdb.connect(str(warehouse), read_only=True)

        with duckdb.connect(str(tmp_path / "exports" / "query.duckdb"), read_only=True) as con:
            answer = con.execute("select label, tiny from fct_example").fetchall()

        assert answer == [("x", 7)]
    finally:
        writer.kill()
        writer.wait()


def test_a_failed_export_keeps_the_previous_files(tmp_path: Path, warehouse: Path) -> None:
    exports = tmp_path / "exports"
    export_marts(warehouse, exports)
    before = (exports / "fct_example.parquet").read_bytes()
    make_warehouse(  # 2**64 - 1 does not fit a BI-friendly BIGINT: the export must refuse it
        warehouse,
        "create or replace table marts.fct_example as select 18446744073709551615::ubigint as big",
    )

    with pytest.raises(duckdb.ConversionException):
        export_marts(warehouse, exports)

    assert (exports / "fct_example.parquet").read_bytes() == before
    assert sorted(p.name for p in exports.iterdir()) == ["fct_example.parquet", "query.duckdb"]


def test_a_new_export_replaces_the_files_and_drops_no_temp_files(
    tmp_path: Path, warehouse: Path
) -> None:
    exports = tmp_path / "exports"
    export_marts(warehouse, exports)
    make_warehouse(warehouse, "create table marts.dim_other as select 1 as other_id")

    result = export_marts(warehouse, exports)

    assert result.rows == {"dim_other": 1, "fct_example": 1}
    assert sorted(p.name for p in exports.iterdir()) == [
        "dim_other.parquet",
        "fct_example.parquet",
        "query.duckdb",
    ]
    with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as con:
        assert con.execute("select other_id from dim_other").fetchall() == [(1,)]


# --- the large fact, exported by month ----------------------------------------------------------


class ActivityWarehouse:
    """A real DuckDB warehouse with the loader's raw table and a stand-in for dbt's build of
    ``marts.fct_learner_activity`` (one row per distinct delivery, its envelope timestamp as
    ``occurred_at``), so each :meth:`load` is a micro-batch as the pipeline makes one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.batches = 0
        with duckdb.connect(str(path)) as con:
            con.execute(DDL)
            con.execute("create schema if not exists marts")

    def load(
        self, stamps: list[str], *, redeliver: int = 0, received_at: str | None = None
    ) -> None:
        """One loader batch: a new event per timestamp, plus ``redeliver`` copies of the
        earliest bodies already loaded (received at ``received_at``, else now); then the mart
        rebuilt."""
        self.batches += 1
        batch = self.batches
        with duckdb.connect(str(self.path)) as con:
            con.execute("set TimeZone = 'UTC'")
            loaded_at = f"timestamp '2026-12-01 00:00:00' + to_seconds({batch})"
            copy_received_at = f"timestamp '{received_at}'" if received_at else loaded_at
            con.execute(
                f"""insert into raw.edume_events (delivery_id, received_at, auth_mode,
                    event_type, event_timestamp, body, segment, line_number, loaded_at)
                select sha256('{batch}-' || n), {loaded_at}, 'hmac', 'learner.activity.started',
                    stamp::timestamp, '{{}}', 'segment-{batch}', n, {loaded_at}
                from (select unnest($stamps) as stamp, generate_subscripts($stamps, 1) as n)""",
                {"stamps": stamps},
            )
            con.execute(
                f"""insert into raw.edume_events (delivery_id, received_at, auth_mode,
                    event_type, event_timestamp, body, segment, line_number, loaded_at)
                select delivery_id, {copy_received_at}, auth_mode, event_type, event_timestamp,
                    body, 'segment-{batch}', line_number + 1000000, {loaded_at}
                from (select * from raw.edume_events where loaded_at < {loaded_at}
                      order by event_timestamp limit {redeliver})"""
            )
            con.execute(
                """create or replace table marts.fct_learner_activity as
                select delivery_id as learner_event_id, event_timestamp as occurred_at,
                    min(received_at) as received_at, 7::utinyint as score
                from raw.edume_events group by all"""
            )

    def rows(self) -> list[tuple]:
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(
                "select learner_event_id, epoch(occurred_at), epoch(received_at), score "
                "from marts.fct_learner_activity order by all"
            ).fetchall()


def exported_rows(exports: Path) -> list[tuple]:
    with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as con:
        return con.execute(
            "select learner_event_id, epoch(occurred_at), epoch(received_at), score "
            "from fct_learner_activity order by all"
        ).fetchall()


def month_files(exports: Path) -> dict[str, list[Path]]:
    link = exports / "fct_learner_activity"
    return {
        folder.name: sorted(folder.glob("*.parquet")) for folder in sorted(link.glob("month=*"))
    }


@pytest.fixture
def activity(tmp_path: Path) -> ActivityWarehouse:
    warehouse = ActivityWarehouse(tmp_path / "edume.duckdb")
    warehouse.load(["2024-01-05 10:00:00", "2024-01-20 11:00:00", "2024-02-03 09:00:00"])
    warehouse.load(["2024-03-30 23:59:59", "2024-02-14 12:00:00"])
    return warehouse


def test_a_large_fact_is_exported_as_monthly_partitions_behind_the_same_view(
    tmp_path: Path, activity: ActivityWarehouse
) -> None:
    exports = tmp_path / "exports"

    result = export_marts(activity.path, exports)

    assert (exports / "fct_learner_activity").is_symlink()
    assert list(month_files(exports)) == ["month=2024-01", "month=2024-02", "month=2024-03"]
    assert not (exports / "fct_learner_activity.parquet").exists()
    assert exported_rows(exports) == activity.rows()
    assert result.rows["fct_learner_activity"] == 5
    assert result.bytes_written == sum(p.stat().st_size for p in result.files_written)
    with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as con:
        columns = [row[0] for row in con.execute("describe fct_learner_activity").fetchall()]
    assert columns == ["learner_event_id", "occurred_at", "received_at", "score"]  # no `month`


def test_an_empty_fact_is_one_empty_file_with_its_columns_until_its_first_rows(
    tmp_path: Path,
) -> None:
    # A new deployment whose first batch held no learner event (course events only).
    warehouse = ActivityWarehouse(tmp_path / "edume.duckdb")
    warehouse.load([])
    exports = tmp_path / "exports"

    empty = export_marts(warehouse.path, exports)

    assert empty.rows["fct_learner_activity"] == 0
    assert list(month_files(exports)) == [EMPTY_MONTH]
    with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from fct_learner_activity").fetchone() == (0,)
        columns = [row[0] for row in con.execute("describe fct_learner_activity").fetchall()]
    assert columns == ["learner_event_id", "occurred_at", "received_at", "score"]

    warehouse.load(["2024-01-05 10:00:00"])
    export_marts(warehouse.path, exports)

    assert list(month_files(exports)) == ["month=2024-01"]  # the empty file is not carried on
    assert exported_rows(exports) == warehouse.rows()


def test_a_micro_batch_appends_its_new_rows_and_links_every_untouched_file(
    tmp_path: Path, activity: ActivityWarehouse
) -> None:
    exports = tmp_path / "exports"
    export_marts(activity.path, exports)
    before = {month: files[0].stat().st_ino for month, files in month_files(exports).items()}
    # A new event in an old month (out of order), and two re-deliveries that change no row.
    activity.load(["2024-02-28 08:00:00"], redeliver=2)

    result = export_marts(activity.path, exports)

    (written,) = result.files_written
    assert written.parent.name == "month=2024-02"
    assert written.stat().st_size == result.bytes_written
    after = month_files(exports)
    assert {month: files[0].stat().st_ino for month, files in after.items()} == before
    assert len(after["month=2024-02"]) == 2  # the old file, linked, and the appended one
    assert exported_rows(exports) == activity.rows()


def test_a_changed_row_rewrites_its_month_as_one_file(
    tmp_path: Path, activity: ActivityWarehouse
) -> None:
    exports = tmp_path / "exports"
    export_marts(activity.path, exports)
    # A copy received earlier than the one loaded (its segment was loaded late): the row's
    # received_at changes, in month 2024-01.
    activity.load([], redeliver=1, received_at="2023-12-31 00:00:00")

    result = export_marts(activity.path, exports)

    assert {p.parent.name for p in result.files_written} == {"month=2024-01"}
    assert len(month_files(exports)["month=2024-01"]) == 1
    assert exported_rows(exports) == activity.rows()


def test_a_batch_that_touched_nothing_makes_no_new_version(
    tmp_path: Path, activity: ActivityWarehouse
) -> None:
    exports = tmp_path / "exports"
    export_marts(activity.path, exports)
    version = os.readlink(exports / "fct_learner_activity")

    result = export_marts(activity.path, exports)

    assert os.readlink(exports / "fct_learner_activity") == version
    assert not [p for p in result.files_written if p.parent.name.startswith("month=")]


def test_incremental_exports_equal_a_full_export_of_the_same_warehouse(
    tmp_path: Path, activity: ActivityWarehouse
) -> None:
    incremental, full = tmp_path / "incremental", tmp_path / "full"
    export_marts(activity.path, incremental)
    for day in range(1, 6):
        activity.load([f"2024-0{day % 3 + 1}-1{day} 06:00:00", "2024-04-01 00:00:00"], redeliver=1)
        export_marts(activity.path, incremental)

    export_marts(activity.path, full)

    assert exported_rows(incremental) == exported_rows(full) == activity.rows()
    assert list(month_files(incremental)) == list(month_files(full))


def test_a_rebuilt_warehouse_is_exported_in_full(
    tmp_path: Path, activity: ActivityWarehouse
) -> None:
    exports = tmp_path / "exports"
    export_marts(activity.path, exports)
    with duckdb.connect(str(activity.path)) as con:  # raw rows deleted: the watermark breaks
        con.execute("delete from raw.edume_events where event_timestamp < '2024-02-01'")
    activity.load([])

    export_marts(activity.path, exports)

    assert list(month_files(exports)) == ["month=2024-02", "month=2024-03"]
    assert exported_rows(exports) == activity.rows()


def test_an_old_single_file_export_is_replaced_by_the_monthly_layout(
    tmp_path: Path, activity: ActivityWarehouse
) -> None:
    # An existing deployment: every mart as <name>.parquet, query.duckdb reading that file.
    exports = tmp_path / "exports"
    exports.mkdir()
    legacy = exports / "fct_learner_activity.parquet"
    with duckdb.connect() as con:
        con.execute(f"copy (select 'old' as learner_event_id) to '{legacy}' (format parquet)")
    with duckdb.connect(str(exports / "query.duckdb")) as con:
        con.execute(f"create view fct_learner_activity as select * from read_parquet('{legacy}')")

    export_marts(activity.path, exports)

    assert not legacy.exists()
    assert exported_rows(exports) == activity.rows()


def test_superseded_versions_are_removed_once_no_reader_can_still_need_them(
    tmp_path: Path, activity: ActivityWarehouse
) -> None:
    exports = tmp_path / "exports"
    export_marts(activity.path, exports)
    activity.load(["2024-03-02 00:00:00"])
    export_marts(activity.path, exports)
    versions = exports / ".fct_learner_activity.versions"
    current = os.readlink(exports / "fct_learner_activity").rsplit("/", 1)[-1]
    assert sorted(p.name for p in versions.iterdir()) == ["v00000001", "v00000002"]  # kept a while

    remove_superseded_versions(versions, current, now=lambda: time.time() + KEEP_SUPERSEDED_S + 1)

    assert sorted(p.name for p in versions.iterdir()) == [current]


def test_a_reader_sees_one_batch_version_never_a_mix_of_two(
    tmp_path: Path, activity: ActivityWarehouse
) -> None:
    # Each batch adds one event to every month, so a query that mixed two versions' months
    # would count a total no committed version ever had.
    months = [f"2024-{month:02d}-15 12:00:00" for month in range(1, 13)]
    exports = tmp_path / "exports"
    export_marts(activity.path, exports)
    committed = {len(exported_rows(exports))}
    answers: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():  # a new connection each time, as a polling analyst does
            with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as con:
                query = "select count(*) from fct_learner_activity"
                answers.append(con.execute(query).fetchone()[0])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(15):
            activity.load(months)
            export_marts(activity.path, exports)
            committed.add(len(activity.rows()))
    finally:
        done.set()
        reader.join()

    assert set(answers) <= committed, sorted(set(answers) - committed)
    assert len(set(answers)) > 1, "the reader never saw a new batch"


def test_a_connection_keeps_its_snapshot_while_batches_land(
    tmp_path: Path, activity: ActivityWarehouse
) -> None:
    exports = tmp_path / "exports"
    export_marts(activity.path, exports)
    with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as con:
        before = con.execute("select count(*) from fct_learner_activity").fetchone()
        activity.load(["2024-01-02 00:00:00"])
        export_marts(activity.path, exports)

        assert con.execute("select count(*) from fct_learner_activity").fetchone() == before
    assert len(exported_rows(exports)) == before[0] + 1


# --- quality and reporting, comments, and what pyarrow reads ------------------------------------


@pytest.fixture
def documented(tmp_path: Path) -> Path:
    """A warehouse whose marts carry comments (as dbt's persist_docs leaves them), with quality
    and reporting relations beside them."""
    return make_warehouse(
        tmp_path / "documented.duckdb",
        """
        create table marts.dim_thing as select 1::ubigint as thing_id, 'a' as title,
            timestamp '2026-01-02 03:04:05' as seen_at, '{"k": 1}'::json as payload,
            true as is_live, 1.5::decimal(9, 2) as price;
        comment on table marts.dim_thing is 'Grain: one row per thing.';
        comment on column marts.dim_thing.thing_id is 'The thing''s id.';
        comment on column marts.dim_thing.title is 'Its title.';
        comment on column marts.dim_thing.seen_at is 'When it was seen (UTC).';
        comment on column marts.dim_thing.payload is 'What it said.';
        comment on column marts.dim_thing.is_live is 'Whether it is live.';
        comment on column marts.dim_thing.price is 'Its price.';
        create schema quality;
        create table quality.rejected_lines as select 'seg' as segment, 3::hugeint as lines;
        comment on column quality.rejected_lines.lines is 'Lines rejected.';
        create schema reporting;
        create view reporting.things_per_day as select 1 as things;
        """,
    )


def test_quality_and_reporting_are_exported_apart_with_views_in_their_schemas(
    tmp_path: Path, documented: Path
) -> None:
    exports = tmp_path / "exports"

    result = export_marts(documented, exports)

    assert (exports / "quality" / "rejected_lines.parquet").is_file()
    assert (exports / "reporting" / "things_per_day.parquet").is_file()
    assert result.rows == {
        "dim_thing": 1,
        "quality.rejected_lines": 1,
        "reporting.things_per_day": 1,
    }
    with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as con:
        assert con.execute("select lines from quality.rejected_lines").fetchall() == [(3,)]
        assert con.execute("select things from reporting.things_per_day").fetchall() == [(1,)]


def test_every_view_column_in_the_query_file_carries_the_warehouse_comment(
    tmp_path: Path, documented: Path
) -> None:
    exports = tmp_path / "exports"
    export_marts(documented, exports)
    sql = (
        "select schema_name, table_name, column_name, comment from duckdb_columns() "
        "where schema_name in ('main', 'marts', 'quality') and table_name in "
        "('dim_thing', 'rejected_lines') order by all"
    )
    with duckdb.connect(str(documented), read_only=True) as con:
        expected = [(t, c, m) for _, t, c, m in con.execute(sql).fetchall()]
        view_comment = "select comment from duckdb_views() where view_name = 'dim_thing'"

    with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as con:
        seen = [(t, c, m) for _, t, c, m in con.execute(sql).fetchall()]
        assert con.execute(view_comment).fetchall() == [("Grain: one row per thing.",)]

    assert seen == expected
    assert all(comment for table, _, comment in seen if table == "dim_thing")


def test_pyarrow_reads_every_export_with_the_declared_columns_and_bi_types(
    tmp_path: Path, documented: Path, activity: ActivityWarehouse
) -> None:
    exports = tmp_path / "exports"
    relations = {}
    for warehouse in (documented, activity.path):
        relations.update(
            {
                path.name.removesuffix(".parquet"): path
                for path in export_marts(warehouse, exports).parquet_files
            }
        )

    schema = read_export(relations["dim_thing"]).schema
    assert [(field.name, field.type) for field in schema] == (
        [
            ("thing_id", arrow_type("bigint")),
            ("title", arrow_type("varchar")),
            ("seen_at", arrow_type("timestamptz")),
            ("payload", arrow_type("varchar")),
            ("is_live", arrow_type("boolean")),
            ("price", arrow_type("decimal(9,2)")),
        ]
    )
    activity_table = read_export(relations["fct_learner_activity"])
    assert activity_table.column_names == [
        "learner_event_id",
        "occurred_at",
        "received_at",
        "score",
    ]
    assert activity_table.num_rows == len(activity.rows())
    for name, path in relations.items():
        assert bi_problems(read_export(path).schema) == [], name


def test_a_month_with_too_many_appended_files_is_compacted_into_one(
    tmp_path: Path, activity: ActivityWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_partitioned, "MAX_FILES_PER_MONTH", 3)
    exports = tmp_path / "exports"
    export_marts(activity.path, exports)
    counts = []
    for day in range(10, 14):
        activity.load([f"2024-03-{day} 00:00:00"])
        export_marts(activity.path, exports)
        counts.append(len(month_files(exports)["month=2024-03"]))

    assert counts == [2, 3, 1, 2]
    assert exported_rows(exports) == activity.rows()


def test_mart_parquet_glob_reads_a_mart_whatever_its_layout(
    tmp_path: Path, activity: ActivityWarehouse, warehouse: Path
) -> None:
    exports = tmp_path / "exports"
    export_marts(activity.path, exports)
    export_marts(warehouse, exports)

    with duckdb.connect() as con:
        for mart, rows in (("fct_learner_activity", 5), ("fct_example", 1)):
            pattern = mart_parquet_glob(exports, mart)
            query = f"select count(*) from read_parquet('{pattern}', hive_partitioning = false)"
            assert con.execute(query).fetchone() == (rows,), mart
