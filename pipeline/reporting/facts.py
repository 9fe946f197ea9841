"""What the report (and the demo's summary) shows, read from the exports' ``query.duckdb``.

The figures are computed by dbt (``dbt_project/models/reporting`` and ``models/quality``) and
exported beside the marts; here they are only read, ordered and limited. ``query.duckdb`` holds
views over parquet files and is never written by a run in place (the export renames a new one
over it), so it is opened read-only at any time, without waiting for the warehouse's lock.

:func:`collect` runs one query per section. A section whose relation is missing (an export from
before these models, a partial build) carries the error instead of its rows, so the report still
renders and says what is missing. No HTML here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipeline.reporting.metrics import ReceiverMetrics

STALLED_LIMIT = 50
OVERDUE_LIMIT = 50
OTHER_QUALITY_LIMIT = 50
QUERY_DATABASE = "query.duckdb"
# The quality relations the report lays out itself; any other one in schema `quality` (such as
# the payload-contract deviations) is shown as a plain table.
KNOWN_QUALITY = ("delivery_counts", "rejected_lines", "quarantined_events")


@dataclass
class Section:
    """Rows of one query as dicts, or the reason there are none."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    total: int = 0  # rows before any display limit


@dataclass
class Facts:
    source: Path
    summary: Section
    deliveries: Section
    funnel: Section
    dropoff: Section
    stalled: Section
    overdue: Section
    compliance: Section
    weekly: Section
    scores: Section
    catalogue: Section
    links: Section
    rejected: Section
    quarantined: Section
    receiver: ReceiverMetrics | None
    other_quality: dict[str, Section] = field(default_factory=dict)


QUERIES: dict[str, str] = {
    "summary": "select * from reporting.report_summary",
    "deliveries": "select * from quality.delivery_counts",
    "funnel": """
        select * from reporting.course_funnel order by count_learners_added desc, course_id
    """,
    "dropoff": """
        select * from reporting.activity_dropoff
        order by course_id, position nulls last, activity_id
    """,
    "stalled": """
        select *, count(*) over () as total from reporting.stalled_learners
        order by days_inactive desc, learner_id, course_id
        limit {stalled_limit}
    """,
    "overdue": """
        select *, count(*) over () as total from reporting.overdue_trainings
        order by due_at, learner_id, course_id
        limit {overdue_limit}
    """,
    "compliance": "select * from reporting.team_compliance order by compliance_rate, team_id",
    "weekly": "select * from reporting.weekly_completions order by week_start",
    "scores": """
        select * from reporting.assessment_scores
        order by course_id, position nulls last, activity_id, band_start
    """,
    # The marts are top-level views of query.duckdb: plain lists, no figure to compute.
    "catalogue": """
        select course_id, course_key, course_title, group_id, status, count_modules,
            count_lessons, count_assessments, count_surveys, count_teams, last_changed_at
        from dim_courses order by course_id
    """,
    "links": "select course_id, team_id, seamless_link from course_seamless_links "
    "order by course_id, team_id",
    "rejected": "select * from quality.rejected_lines order by count_lines desc, error",
    "quarantined": """
        select * from quality.quarantined_events order by count_deliveries desc, event_type
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


def _other_quality(connection: duckdb.DuckDBPyConnection) -> dict[str, Section]:
    names = connection.execute(
        "select table_name from information_schema.tables where table_schema = 'quality' "
        "order by table_name"
    ).fetchall()
    return {
        name: _run(
            connection,
            f'select *, count(*) over () as total from quality."{name}" '
            f"limit {OTHER_QUALITY_LIMIT}",
        )
        for (name,) in names
        if name not in KNOWN_QUALITY
    }


def collect(export_dir: Path, receiver: ReceiverMetrics | None = None) -> Facts:
    """Every section's rows from ``<export_dir>/query.duckdb``. Raises ``FileNotFoundError``
    when there is no such file (nothing exported yet)."""
    database = export_dir / QUERY_DATABASE
    if not database.is_file():
        raise FileNotFoundError(
            f"no exports at {database}: run `edume-pipeline materialize` (or `make demo`) first"
        )
    limits = {"stalled_limit": STALLED_LIMIT, "overdue_limit": OVERDUE_LIMIT}
    with duckdb.connect(str(database), read_only=True) as connection:
        sections = {name: _run(connection, sql.format(**limits)) for name, sql in QUERIES.items()}
        other = _other_quality(connection)
    return Facts(source=database, receiver=receiver, other_quality=other, **sections)
