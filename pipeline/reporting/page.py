"""The report page: one self-contained HTML document from :class:`~pipeline.reporting.facts.Facts`.

It renders what dbt computed (the ``reporting`` and ``quality`` relations): no figure is
computed here beyond sums for a caption.

Inline CSS, inline SVG, no script and no external resource of any kind, so the file opens
offline, from an e-mail attachment or a CI artefact. Pure: facts in, text out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from pipeline.reporting import svg
from pipeline.reporting.contract_section import CONTRACT_RELATIONS, data_contract
from pipeline.reporting.facts import Facts, Section

FUNNEL_STEPS = ("added", "activated", "started", "first lesson", "completed")
FUNNEL_COLUMNS = (
    "count_learners_added",
    "count_learners_activated",
    "count_learners_started",
    "count_learners_finished_first_lesson",
    "count_learners_completed",
)

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 0; background: #f6f7f9; }
header { background: #16407f; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; opacity: .85; }
main { padding: 8px 32px 40px; max-width: 1200px; }
section { background: #fff; border-radius: 6px; padding: 14px 20px; margin: 16px 0;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
h2 { font-size: 17px; margin: 4px 0 10px; }
h3 { font-size: 14px; margin: 10px 0 4px; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; }
.kpi { background: #fff; border-radius: 6px; padding: 10px 16px; min-width: 120px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.kpi b { display: block; font-size: 22px; }
.grid { display: flex; flex-wrap: wrap; gap: 8px 28px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid #e3e6ea;
  vertical-align: top; }
td.n, th.n { text-align: right; }
.missing { color: #a35a00; }
.muted { color: #666; }
code { font-size: 12px; }
"""


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, float):
        return f"{value:.1%}" if 0 <= value <= 1 else f"{value:,.1f}"
    return escape(str(value))


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """``columns`` are (key, heading); numeric columns are right-aligned."""

    def numeric(key: str) -> bool:
        return any(isinstance(row.get(key), int | float) for row in rows)

    head = "".join(
        f'<th class="{"n" if numeric(key) else ""}">{escape(heading)}</th>'
        for key, heading in columns
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"n" if numeric(key) else ""}">{_cell(row.get(key))}</td>'
            for key, _ in columns
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _missing(section: Section) -> str:
    return f'<p class="missing">Not available: {escape(section.error or "")}</p>'


def _name(row: dict[str, Any]) -> str:
    name = " ".join(part for part in (row.get("first_name"), row.get("last_name")) if part)
    return name or str(row.get("learner_id"))


def _kpis(facts: Facts) -> str:
    for section in (facts.summary, facts.deliveries):
        if section.error or not section.rows:
            return _missing(section)
    summary, deliveries = facts.summary.rows[0], facts.deliveries.rows[0]
    figures = [
        ("courses", summary["count_courses"]),
        ("learners", summary["count_learners"]),
        ("deliveries landed", deliveries["count_deliveries_landed"]),
        ("duplicates removed", deliveries["count_duplicates"]),
    ]
    if facts.receiver is not None:
        figures.append(("deliveries rejected", facts.receiver.rejected))
    return (
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi"><b>{value:,}</b>{escape(label)}</div>' for label, value in figures
        )
        + "</div>"
    )


def _funnel(facts: Facts) -> str:
    if facts.funnel.error:
        return _missing(facts.funnel)
    courses = [
        (row["course_title"] or f"course {row['course_id']}", [row[c] or 0 for c in FUNNEL_COLUMNS])
        for row in facts.funnel.rows
    ]
    chart = svg.funnel_chart("Learners at each funnel step, per course", FUNNEL_STEPS, courses)
    table = _table(
        facts.funnel.rows,
        [
            ("course_id", "course"),
            ("course_title", "title"),
            ("status", "status"),
            *zip(FUNNEL_COLUMNS, FUNNEL_STEPS, strict=True),
            ("completion_rate", "completed / added"),
        ],
    )
    return chart + table


def _dropoff(facts: Facts) -> str:
    if facts.dropoff.error:
        return _missing(facts.dropoff)
    by_course: dict[int, list[dict[str, Any]]] = {}
    for row in facts.dropoff.rows:
        by_course.setdefault(row["course_id"], []).append(row)
    charts = []
    for rows in by_course.values():
        title = rows[0]["course_title"] or f"course {rows[0]['course_id']}"
        activities = [
            (
                f"{row['position'] or '?'}. {row['activity_type']} {row['activity_id']}",
                row["count_learners_reached"],
                row["count_learners_finished"],
            )
            for row in rows
        ]
        chart = svg.dropoff_chart(f"Drop-off by activity: {title}", activities)
        charts.append(f"<div><h3>{escape(title)}</h3>{chart}</div>")
    if not charts:
        return '<p class="muted">No learner has reached an activity yet.</p>'
    return '<div class="grid">' + "".join(charts) + "</div>"


def _shown(section: Section) -> str:
    """ "the first N of " when a display limit cut the section's rows, else nothing."""
    return f"the first {len(section.rows)} of " if section.total > len(section.rows) else ""


def _people(section: Section, what: str, columns: list[tuple[str, str]]) -> str:
    if section.error:
        return _missing(section)
    if not section.rows:
        return f'<p class="muted">No {escape(what)}.</p>'
    rows = [{**row, "learner": _name(row)} for row in section.rows]
    return f"<p>Showing {_shown(section)}{section.total:,} {escape(what)}.</p>" + _table(
        rows, columns
    )


def _catalogue(facts: Facts) -> str:
    if facts.catalogue.error:
        return _missing(facts.catalogue)
    links: dict[int, list[str]] = {}
    for row in facts.links.rows:
        links.setdefault(row["course_id"], []).append(row["seamless_link"])
    rows = [
        {
            **row,
            "links": "<br>".join(
                f"<code>{escape(link)}</code>" for link in links.get(row["course_id"], [])
            ),
        }
        for row in facts.catalogue.rows
    ]
    columns = [
        ("course_id", "course"),
        ("course_key", "key"),
        ("course_title", "title"),
        ("group_id", "group"),
        ("status", "status"),
        ("count_modules", "modules"),
        ("count_lessons", "lessons"),
        ("count_assessments", "assessments"),
        ("count_surveys", "surveys"),
        ("count_teams", "teams"),
    ]
    table = _table(rows, columns)
    # The links are already escaped markup: render them in their own table.
    link_rows = "".join(
        f"<tr><td>{row['course_id']}</td><td>{_cell(row['course_title'])}</td>"
        f"<td>{row['links'] or '—'}</td></tr>"
        for row in rows
    )
    note = (
        '<p class="muted">Base seamless links, per live course and team: an integrator appends '
        "<code>&amp;e=&lt;externalUserId&gt;</code> and signs the URL (<code>&amp;sig=</code>).</p>"
    )
    missing_links = _missing(facts.links) if facts.links.error else ""
    return (
        table
        + "<h3>Seamless base links</h3>"
        + note
        + missing_links
        + f"<table><thead><tr><th>course</th><th>title</th><th>links</th></tr></thead>"
        f"<tbody>{link_rows}</tbody></table>"
    )


def _quality(facts: Facts) -> str:
    parts = []
    receiver = facts.receiver
    if receiver is None:
        parts.append(
            '<p class="muted">No receiver metrics: pass <code>--metrics</code> (a saved copy of '
            "the receiver's <code>/metrics</code>, or its URL) to show rejected deliveries.</p>"
        )
    else:
        parts.append(
            f"<p>Receiver (<code>{escape(receiver.source)}</code>): {receiver.accepted:,} "
            f"accepted, {receiver.rejected:,} rejected, {receiver.deferred:,} deferred (503).</p>"
        )
        bars = [
            svg.Bar(reason, count)
            for reason, count in sorted(
                receiver.rejected_by_reason.items(), key=lambda item: -item[1]
            )
            if count
        ]
        if bars:
            parts.append(svg.bar_chart("Rejected deliveries by reason", bars))
    if facts.deliveries.error:
        parts.append(_missing(facts.deliveries))
    elif facts.deliveries.rows:
        counts = facts.deliveries.rows[0]
        parts.append(
            f"<p>Warehouse: {counts['count_deliveries_landed']:,} deliveries landed, "
            f"{counts['count_distinct_deliveries']:,} distinct: "
            f"<b>{counts['count_duplicates']:,} duplicates</b> removed. "
            f"{counts['count_rejected_lines']:,} landed lines could not be read "
            f"(<code>quality.rejected_lines</code>).</p>"
        )
    if facts.rejected.error:
        parts.append(_missing(facts.rejected))
    elif facts.rejected.rows:
        parts.append("<h3>Landed lines the loader could not read</h3>")
        parts.append(
            _table(
                facts.rejected.rows,
                [("error", "error"), ("count_lines", "lines"), ("count_segments", "segments")],
            )
        )
    if facts.quarantined.error:
        parts.append(_missing(facts.quarantined))
    elif facts.quarantined.rows:
        parts.append("<h3>Deliveries kept aside (unknown event types, invalid payloads)</h3>")
        parts.append(
            _table(
                facts.quarantined.rows,
                [
                    ("event_type", "event type"),
                    ("invalid_reason", "reason"),
                    ("count_deliveries", "deliveries"),
                    ("count_copies", "copies"),
                ],
            )
        )
    else:
        parts.append('<p class="muted">No unknown event types or invalid payloads.</p>')
    for name, section in facts.other_quality.items():
        if name in CONTRACT_RELATIONS:  # laid out by their own section, "Data contract"
            continue
        parts.append(f"<h3>{escape(name.replace('_', ' ').capitalize())}</h3>")
        if section.error:
            parts.append(_missing(section))
        elif not section.rows:
            parts.append('<p class="muted">None.</p>')
        else:
            columns = [(key, key.replace("_", " ")) for key in section.rows[0]]
            parts.append(f"<p>Showing {_shown(section)}{section.total:,} rows.</p>")
            parts.append(_table(section.rows, columns))
    return "".join(parts)


def _compliance(facts: Facts) -> str:
    if facts.compliance.error:
        return _missing(facts.compliance)
    if not facts.compliance.rows:
        return '<p class="muted">No mandatory training is assigned to any team.</p>'
    teams = [
        (
            f"team {row['team_id']}",
            row["compliance_rate"],
            row["count_overdue"],
            row["count_assignments"],
        )
        for row in facts.compliance.rows
    ]
    chart = svg.compliance_chart("Compliance rate by team, with overdue counts", teams)
    table = _table(
        facts.compliance.rows,
        [
            ("team_id", "team"),
            ("count_learners", "learners"),
            ("count_assignments", "assigned"),
            ("count_completed", "completed"),
            ("count_completed_late", "of which late"),
            ("count_within_deadline", "not yet due"),
            ("count_overdue", "overdue"),
            ("compliance_rate", "compliant"),
        ],
    )
    return chart + table


def _trend(facts: Facts) -> str:
    if facts.weekly.error:
        return _missing(facts.weekly)
    if not facts.weekly.rows:
        return '<p class="muted">No learner has started a course yet.</p>'
    weeks = [
        (f"{row['week_start']:%d %b}", row["count_started"], row["count_completed"])
        for row in facts.weekly.rows
    ]
    total = sum(row["count_completed"] for row in facts.weekly.rows)
    return (
        f"<p>{total:,} course completions over {len(weeks)} weeks (weeks start on Monday, UTC)."
        "</p>" + svg.trend_chart("Courses started and completed per week", weeks)
    )


def _scores(facts: Facts) -> str:
    if facts.scores.error:
        return _missing(facts.scores)
    by_assessment: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in facts.scores.rows:
        by_assessment.setdefault((row["course_id"], row["activity_id"]), []).append(row)
    if not by_assessment:
        return '<p class="muted">No assessment has been finished yet.</p>'
    charts = []
    for rows in by_assessment.values():
        first = rows[0]
        title = first["course_title"] or f"course {first['course_id']}"
        name = f"{title}: assessment {first['activity_id']}"
        attempts = sum(row["count_attempts"] for row in rows)
        passed = sum(row["count_passed"] for row in rows)
        bands = [svg.Bar(str(row["band_start"]), row["count_attempts"]) for row in rows]
        chart = svg.histogram_chart(f"Score distribution: {name}", bands)
        charts.append(
            f'<div><h3>{escape(name)}</h3><p class="muted">{attempts:,} attempts, '
            f"{passed:,} passed</p>{chart}</div>"
        )
    return '<div class="grid">' + "".join(charts) + "</div>"


def render(facts: Facts, generated_at: datetime) -> str:
    learner_columns = [
        ("learner", "learner"),
        ("external_user_id", "external id"),
        ("course_title", "course"),
    ]
    stalled = _people(
        facts.stalled,
        "stalled learners (in progress, inactive too long)",
        [
            *learner_columns,
            ("last_activity_at", "last activity"),
            ("days_inactive", "days inactive"),
        ],
    )
    overdue = _people(
        facts.overdue,
        "overdue mandatory trainings",
        [*learner_columns, ("status", "status"), ("assigned_at", "assigned"), ("due_at", "due")],
    )
    sections = [
        ("funnel", "Funnel per course", _funnel(facts)),
        ("dropoff", "Drop-off by activity", _dropoff(facts)),
        ("stalled", "Stalled learners", stalled),
        ("overdue", "Overdue mandatory training", overdue),
        ("compliance", "Compliance by team", _compliance(facts)),
        ("trend", "Completions per week", _trend(facts)),
        ("scores", "Assessment scores", _scores(facts)),
        ("catalogue", "Course catalogue", _catalogue(facts)),
        ("quality", "Data quality", _quality(facts)),
        # The CONTRACT engineer's section (pipeline/reporting/contract_section.py).
        ("contract", "Data contract", data_contract(facts)),
    ]
    body = "".join(
        f'<section id="{key}"><h2>{escape(title)}</h2>{content}</section>'
        for key, title, content in sections
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request, not even to the file system
        "<title>eduMe learning report</title>"
        f"<style>{CSS}</style></head><body>"
        "<header><h1>eduMe learning report</h1>"
        f"<p>Generated {generated_at:%Y-%m-%d %H:%M} UTC from "
        f"<code>{escape(str(facts.source))}</code></p></header>"
        f"<main>{_kpis(facts)}{body}</main></body></html>\n"
    )
