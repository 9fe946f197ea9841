"""Benchmark: the cost of the export after a micro-batch of at most 100 events, as the warehouse
grows (issue #11 goal 3: the whole micro-batch at 5M events costs at most 1.5x its cost at 100k).

For each size, a DuckDB warehouse is generated in SQL: ``raw.edume_events`` (the loader's DDL)
with N events and the marts the export reads, at the sizes dbt builds them from such traffic
(``fct_learner_activity``: one row per event, over months of 5 s apart events like
``bench/dbt_build.py``; one learner per 20 events, each in 2 courses, whose progress is a view
over an aggregate stamped with ``built_at``; 200 courses). Then one
full export (the same-run baseline), then ``--batches`` micro-batches, each drawn like real
traffic (``--spread``: 80 new events of existing learners with timestamps scattered over the
old months, out of order, plus 20 re-deliveries of bodies already loaded; or ``recent``: the 80
new events in the newest month), the marts updated as dbt would (the batch's learners' progress
rows restamped), and ``export_marts`` timed.
Prints per size: the full export, the median micro-batch export (all marts), how many months of
``fct_learner_activity`` got a file (appended or rewritten), how many buckets of
``fct_learner_course_progress`` were rewritten (the batch's learners' own), the bytes written (all
marts), and the ratio to the smallest size.

    .venv/bin/python bench/export.py [--events 100000 1000000 5000000] [--batches 5]
        [--spread old|recent] [--keep DIR]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.export import export_marts
from pipeline.loader.ndjson import DDL

EVENTS_PER_LEARNER = 20
COURSES = 200
START = "timestamp '2024-01-01'"
PROGRESS_AGGREGATE = "intermediate.int_learner_course_progress_aggregated"


def _activity_sql(rows_sql: str) -> str:
    """Mart rows (fct_learner_activity's columns) for raw rows ``rows_sql`` of (i, stamp)."""
    return f"""
    select sha256('event-' || i) as learner_event_id, learner_id, course_id,
        course_id * 10 as module_id, i % 3 as activity_id,
        ['learner.activity.started', 'learner.activity.finished'][i % 2 + 1] as event_type,
        'lesson' as activity_type, stamp as occurred_at, stamp + to_seconds(2) as received_at,
        (i % 101)::integer as score, i % 2 = 0 as is_passed
    from ({rows_sql})
    """


def _rows_sql(first: int, count: int, learners: int, stamp: str) -> str:
    return f"""
    select i, i % {learners} + 100000 as learner_id, 14000 + (i // 10) % {COURSES} as course_id,
        {stamp} as stamp
    from range({first}, {first + count}) as t(i)
    """


def generate(warehouse: Path, events: int) -> None:
    """The raw table and the marts a warehouse of ``events`` events holds after dbt."""
    learners = max(events // EVENTS_PER_LEARNER, 1)
    rows = _rows_sql(0, events, learners, f"{START} + to_seconds(i * 5)")
    with duckdb.connect(str(warehouse)) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(DDL)
        con.execute("create schema if not exists marts")
        con.execute(
            f"""insert into raw.edume_events (delivery_id, received_at, auth_mode, event_type,
                event_timestamp, body, segment, line_number, loaded_at)
            select sha256('event-' || i), stamp + to_seconds(2), 'hmac', 'learner.activity.started',
                stamp, '{{}}', 'bench-' || (i // 10000), i % 10000 + 1, timestamp '2026-01-01'
            from ({rows})"""
        )
        con.execute(f"create table marts.fct_learner_activity as {_activity_sql(rows)}")
        con.execute(
            f"""create table marts.dim_learners as
            select range + 100000 as learner_id, 'emp-' || range as external_user_id,
                1297 as group_id, {START} + to_seconds(range) as added_at,
                {START} + to_seconds(range * 2) as last_activity_at, 2 as count_courses_started,
                1 as count_courses_completed
            from range({learners})"""
        )
        # As dbt builds it: a view adding the as_of columns over an incremental aggregate whose
        # rows carry the built_at of the run that wrote them.
        con.execute("create schema if not exists intermediate")
        con.execute(
            f"""create table {PROGRESS_AGGREGATE} as
            select l + 100000 as learner_id, 14000 + (l + k) % {COURSES} as course_id,
                {START} + to_seconds(l) as started_at, null::timestamp as completed_at,
                3 as lessons_completed, {START} + to_seconds(l * 2) as last_activity_at,
                'in_progress' as status, timestamp '2026-01-01' as built_at
            from range({learners}) as a(l), range(2) as b(k)"""
        )
        con.execute(
            f"""create view marts.fct_learner_course_progress as
            select * exclude (built_at),
                date_diff('day', last_activity_at, timestamp '2026-01-01') as days_inactive,
                status = 'in_progress' and days_inactive >= 7 as is_stalled
            from {PROGRESS_AGGREGATE}"""
        )
        con.execute(
            f"""create table marts.dim_courses as
            select 14000 + range as course_id, 'Course ' || range as title, 'published' as status
            from range({COURSES})"""
        )
        con.execute(
            f"""create table marts.fct_learner_funnel as
            select 14000 + range as course_id, 100 as learners_added, 90 as learners_activated,
                80 as learners_started, 70 as learners_first_lesson, 60 as learners_completed
            from range({COURSES})"""
        )


def add_micro_batch(warehouse: Path, events: int, batch: int, spread: str) -> None:
    """One loader batch of 80 new events and 20 re-deliveries, and the mart as dbt leaves it."""
    learners = max(events // EVENTS_PER_LEARNER, 1)
    first = events + 1_000_000 + batch * 80
    if spread == "old":  # scattered over every month already loaded: old months, out of order
        stamp = f"{START} + to_seconds(((i * 7919) % {events}) * 5 + 1)"
    else:  # the newest month only
        stamp = f"{START} + to_seconds({events} * 5 - (i % 80) * 60)"
    rows = _rows_sql(first, 80, learners, stamp)
    loaded_at = f"timestamp '2026-01-02' + to_seconds({batch})"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(
            f"""insert into raw.edume_events (delivery_id, received_at, auth_mode, event_type,
                event_timestamp, body, segment, line_number, loaded_at)
            select sha256('event-' || i), now()::timestamp, 'hmac', 'learner.activity.started',
                stamp, '{{}}', 'micro-{batch}', i - {first} + 1, {loaded_at}
            from ({rows})"""
        )
        con.execute(
            f"""insert into raw.edume_events (delivery_id, received_at, auth_mode, event_type,
                event_timestamp, body, segment, line_number, loaded_at)
            select delivery_id, now()::timestamp, auth_mode, event_type, event_timestamp, body,
                'micro-{batch}', line_number + 1000, {loaded_at}
            from raw.edume_events using sample reservoir(20 rows) repeatable ({batch + 1})"""
        )
        con.execute(f"insert into marts.fct_learner_activity {_activity_sql(rows)}")
        con.execute(  # the touched learners' progress, as the incremental aggregate rewrites it
            f"""update {PROGRESS_AGGREGATE} set lessons_completed = lessons_completed + 1,
                built_at = {loaded_at}
            where learner_id in (select distinct learner_id from ({rows}))"""
        )


@dataclass(frozen=True)
class Figures:
    events: int
    full_s: float
    micro_s: float
    months_rewritten: float
    months: int
    buckets_rewritten: float
    buckets: int
    megabytes_written: float


def measure(root: Path, events: int, batches: int, spread: str) -> Figures:
    warehouse, exports = root / f"edume-{events}.duckdb", root / f"exports-{events}"
    generate(warehouse, events)
    started = time.perf_counter()
    export_marts(warehouse, exports)
    full_s = time.perf_counter() - started
    micro, rewritten, buckets, written = [], [], [], []
    for batch in range(batches):
        add_micro_batch(warehouse, events, batch, spread)
        started = time.perf_counter()
        result = export_marts(warehouse, exports)
        micro.append(time.perf_counter() - started)
        rewritten.append(len({p.parent for p in result.files_written if "month=" in str(p)}))
        buckets.append(len({p.parent for p in result.files_written if "bucket=" in str(p)}))
        written.append(result.bytes_written / 1e6)
    months = len(list((exports / "fct_learner_activity").glob("month=*")))
    return Figures(
        events,
        full_s,
        statistics.median(micro),
        statistics.median(rewritten),
        months,
        statistics.median(buckets),
        len(list((exports / "fct_learner_course_progress").glob("bucket=*"))),
        statistics.median(written),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--spread", choices=("old", "recent"), default="old")
    parser.add_argument("--keep", type=Path, help="generate under this directory and keep it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="edume-bench-export-") as scratch:
        root = args.keep or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        results = []
        for events in args.events:
            figures = measure(root, events, args.batches, args.spread)
            results.append(figures)
            print(
                f"{events:>9,} events: full export {figures.full_s:6.2f} s; after a micro-batch "
                f"({args.spread} months) {figures.micro_s:6.3f} s: "
                f"{figures.months_rewritten:g} of {figures.months} months got a file, "
                f"{figures.buckets_rewritten:g} of {figures.buckets} progress buckets were "
                f"rewritten, {figures.megabytes_written:.1f} MB written",
                flush=True,
            )
        base = results[0]
        for figures in results[1:]:
            print(
                f"ratio {figures.events:,} / {base.events:,}: micro-batch export "
                f"{figures.micro_s / base.micro_s:.2f} (target for the whole micro-batch <= 1.5 "
                f"at 5M vs 100k); full export {figures.full_s / base.full_s:.2f}"
            )


if __name__ == "__main__":
    main()
