"""What the report (and the demo's summary) shows, read from the warehouse, read-only.

:func:`collect` opens the DuckDB file with ``read_only=True`` and runs one query per section.
A section whose table is missing (a partial build) carries the error instead of its rows, so
the report still renders and says what is missing. No HTML here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipeline.reporting.metrics import ReceiverMetrics
from pipeline.warehouse_lock import warehouse_lock

STALLED_LIMIT = 50
OVERDUE_LIMIT = 50
LOCK_TIMEOUT_S = 600.0


def _say_waiting(message: str) -> None:
    print(f"report: {message}", file=sys.stderr, flush=True)


@dataclass
class Section:
    """Rows of one query as dicts, or the reason there are none."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    total: int = 0  # rows before any display limit


@dataclass
class Facts:
    warehouse: Path
    totals: Section
    funnel: Section
    dropoff: Section
    stalled: Section
    overdue: Section
    catalogue: Section
    links: Section
    quarantined: Section
    receiver: ReceiverMetrics | None


QUERIES: dict[str, str] = {
    "totals": """
        select
            (select count(*) from raw.edume_events) as count_deliveries_landed,
            (select count(distinct delivery_id) from raw.edume_events) as count_distinct_deliveries,
            (select count(*) from raw.edume_rejected_lines) as count_rejected_lines,
            (select count(*) from marts.dim_courses) as count_courses,
            (select count(*) from marts.dim_learners) as count_learners,
            (select max(received_at) from raw.edume_events) as last_received_at
    """,
    "funnel": """
        select c.course_id, c.course_title, c.status, f.count_learners_added,
            f.count_learners_activated, f.count_learners_started,
            f.count_learners_finished_first_lesson, f.count_learners_completed, f.completion_rate
        from marts.fct_learner_funnel f join marts.dim_courses c using (course_id)
        order by f.count_learners_added desc, c.course_id
    """,
    "dropoff": """
        select d.course_id, c.course_title, d.activity_id, d.position, d.activity_type,
            d.count_learners_reached, d.count_learners_finished, d.count_learners_stalled,
            d.dropoff_rate
        from marts.fct_course_dropoff d join marts.dim_courses c using (course_id)
        where d.count_learners_reached > 0
        order by d.course_id, d.position nulls last, d.activity_id
    """,
    "stalled": """
        select p.learner_id, l.external_user_id, l.first_name, l.last_name, p.course_id,
            c.course_title, p.last_activity_at, p.last_activity_id, p.days_inactive,
            count(*) over () as total
        from marts.fct_learner_course_progress p
        join marts.dim_learners l using (learner_id)
        join marts.dim_courses c using (course_id)
        where p.is_stalled
        order by p.days_inactive desc, p.learner_id, p.course_id
        limit {stalled_limit}
    """,
    "overdue": """
        select t.learner_id, l.external_user_id, l.first_name, l.last_name, t.course_id,
            c.course_title, t.status, t.assigned_at, t.due_at, count(*) over () as total
        from marts.fct_training_compliance t
        join marts.dim_learners l using (learner_id)
        join marts.dim_courses c using (course_id)
        where t.is_overdue
        order by t.due_at, t.learner_id, t.course_id
        limit {overdue_limit}
    """,
    "catalogue": """
        select course_id, course_key, course_title, group_id, status, count_modules,
            count_lessons, count_assessments, count_surveys, count_teams, last_changed_at
        from marts.dim_courses order by course_id
    """,
    "links": """
        select course_id, team_id, seamless_link
        from marts.course_seamless_links order by course_id, team_id
    """,
    "quarantined": """
        select coalesce(event_type, '(none)') as event_type, invalid_reason,
            count(*) as count_deliveries, sum(count_copies) as count_copies
        from intermediate.int_events_quarantined
        group by all order by count_deliveries desc, event_type
    """,
}


def _run(connection: duckdb.DuckDBPyConnection, sql: str) -> Section:
    try:
        cursor = connection.execute(sql)
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except duckdb.Error as exc:
        return Section(error=str(exc).splitlines()[0])
    total = rows[0].pop("total", len(rows)) if rows else 0
    for row in rows[1:]:
        row.pop("total", None)
    return Section(rows=rows, total=total)


def collect(warehouse: Path, receiver: ReceiverMetrics | None = None) -> Facts:
    """Every section's rows. Raises ``FileNotFoundError`` when the warehouse does not exist and
    :class:`~pipeline.warehouse_lock.WarehouseLockTimeout` when a writer holds it too long."""
    if not warehouse.is_file():
        raise FileNotFoundError(f"no warehouse at {warehouse}: run `edume-pipeline materialize`")
    limits = {"stalled_limit": STALLED_LIMIT, "overdue_limit": OVERDUE_LIMIT}
    # A running load or build holds the file: wait for it rather than fail on DuckDB's file lock.
    with warehouse_lock(warehouse, timeout_s=LOCK_TIMEOUT_S, on_wait=_say_waiting):
        connection = duckdb.connect(str(warehouse), read_only=True)
        try:
            sections = {
                name: _run(connection, sql.format(**limits)) for name, sql in QUERIES.items()
            }
        finally:
            connection.close()
    return Facts(warehouse=warehouse, receiver=receiver, **sections)
