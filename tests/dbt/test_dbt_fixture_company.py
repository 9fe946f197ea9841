"""The fixture company (fixture_company.py) through the real loader and a real `dbt build`
(every model, data test and unit test), checked against hand-computed marts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fixture_company import company_deliveries
from warehouse_harness import land_and_load, query

from pipeline.export import DESIGNED_MARTS

pytestmark = pytest.mark.slow


def ts(text: str) -> datetime:
    """A UTC instant: mart timestamps are ``timestamptz``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory, make_dbt) -> Path:
    root = tmp_path_factory.mktemp("company")
    warehouse = root / "edume.duckdb"
    land_and_load(root / "landing", warehouse, company_deliveries())
    make_dbt(warehouse)("build")
    return warehouse


def one(warehouse: Path, sql: str, *parameters: object) -> tuple:
    rows = query(warehouse, sql, parameters)
    assert len(rows) == 1, rows
    return rows[0]


def test_course_renamed_twice_out_of_order_keeps_the_latest_title(warehouse: Path) -> None:
    assert one(
        warehouse,
        "select course_title, course_key, status, last_changed_at "
        "from marts.dim_courses where course_id = 14150",
    ) == (
        "Reboarding your workforce",
        "reboarding_your_workforce4900",
        "published",
        ts("2024-01-10 09:00:00"),
    )


def test_removed_team_is_no_longer_assigned_and_kept_team_dates_from_first_assignment(
    warehouse: Path,
) -> None:
    assert query(
        warehouse,
        "select course_id, team_id, assigned_at "
        "from marts.course_team_assignments order by course_id, team_id",
    ) == [
        (200, 3495, ts("2024-01-01 07:00:00")),
        (14150, 3493, ts("2024-01-04 09:00:00")),
    ]


def test_deleted_course_keeps_its_row_with_status_deleted_and_no_teams(warehouse: Path) -> None:
    assert one(
        warehouse,
        "select status, is_live, count_teams, count_modules "
        "from marts.dim_courses where course_id = 14147",
    ) == ("deleted", False, 0, 1)


def test_course_seen_only_in_learner_events_appears_with_unknown_status(warehouse: Path) -> None:
    assert one(
        warehouse,
        "select course_title, status, has_course_events, first_seen_at "
        "from marts.dim_courses where course_id = 300",
    ) == ("Ghost course", "unknown", False, ts("2024-01-21 09:00:00"))


def test_catalogue_counts_structure_in_course_order(warehouse: Path) -> None:
    assert one(
        warehouse,
        "select count_modules, count_lessons, count_assessments, "
        "count_surveys, count_teams from marts.dim_courses where course_id = 14150",
    ) == (2, 1, 1, 1, 1)
    assert query(
        warehouse,
        "select activity_id, activity_type, is_published, position "
        "from marts.dim_course_activities where course_id = 14150 order by position",
    ) == [(8558, "lesson", True, 1), (2642, "survey", True, 2), (6743, "assessment", True, 3)]
    assert query(
        warehouse,
        "select module_id, position from marts.dim_course_modules "
        "where course_id = 14150 order by position",
    ) == [(15010, 1), (15011, 2)]


def test_seamless_links_exist_only_for_live_courses_and_current_teams(warehouse: Path) -> None:
    assert query(
        warehouse, "select course_id, team_id, seamless_link from marts.course_seamless_links"
    ) == [(14150, 3493, "https://learn.edume.com/e/c/14150?g=3493")]


def test_learner_without_learner_added_still_has_a_profile(warehouse: Path) -> None:
    assert one(
        warehouse,
        "select external_user_id, first_name, last_name, added_at, "
        "team_ids, count_teams, first_seen_at, count_courses, count_courses_started "
        "from marts.dim_learners where learner_id = 90213",
    ) == ("emp-00174", "Zoë", "Ñúñez", None, None, 0, ts("2024-01-20 09:00:00"), 2, 2)


def test_learner_profile_has_milestones_and_counts(warehouse: Path) -> None:
    assert one(
        warehouse,
        "select external_user_id, group_id, team_ids, added_at, activated_at, "
        "first_activity_at, last_activity_at, count_courses_completed "
        "from marts.dim_learners where learner_id = 90211",
    ) == (
        "emp-00172",
        1297,
        "3493",
        ts("2024-01-07 10:00:00"),
        ts("2024-01-07 11:00:00"),
        ts("2024-01-08 09:00:00"),
        ts("2024-01-09 12:00:00"),
        1,
    )


def test_a_body_delivered_three_times_counts_once(warehouse: Path) -> None:
    assert one(warehouse, "select count(*) from marts.fct_learner_activity") == (24,)
    assert one(
        warehouse,
        "select count(*) from marts.fct_learner_activity where learner_id = "
        "90211 and activity_id = 8558 and event_type = 'learner.activity.finished'",
    ) == (1,)


def test_assessment_score_and_standalone_survey_are_recorded(warehouse: Path) -> None:
    assert one(
        warehouse,
        "select score, is_passed from marts.fct_learner_activity "
        "where activity_id = 6743 and event_type = 'learner.activity.finished'",
    ) == (85.0, True)
    assert one(
        warehouse,
        "select course_id, module_id, activity_type from "
        "marts.fct_learner_activity where activity_id = 7777",
    ) == (None, None, "survey")


def test_progress_status_lessons_inactivity_and_stall(warehouse: Path) -> None:
    assert query(
        warehouse,
        "select learner_id, course_id, status, count_lessons_done, "
        "last_activity_id, days_inactive, is_stalled "
        "from marts.fct_learner_course_progress order by learner_id, course_id",
    ) == [
        (90211, 14150, "completed", 1, 2642, 32, False),
        (90212, 14150, "in_progress", 0, 8558, 31, True),
        (90213, 300, "in_progress", 0, 9001, 19, True),
        (90213, 14150, "in_progress", 1, 8558, 20, True),
        (90214, 200, "not_started", 0, None, None, False),
        (90215, 14150, "in_progress", 0, 8558, 4, False),
        (90216, 14147, "not_started", 0, None, None, False),
    ]


def test_funnel_counts_each_learner_up_to_the_furthest_step(warehouse: Path) -> None:
    assert query(
        warehouse,
        "select course_id, count_learners_added, count_learners_activated, "
        "count_learners_started, count_learners_finished_first_lesson, "
        "count_learners_completed from marts.fct_learner_funnel order by course_id",
    ) == [
        (200, 1, 0, 0, 0, 0),
        (300, 1, 1, 1, 0, 0),
        (14147, 1, 0, 0, 0, 0),
        (14150, 4, 4, 4, 2, 1),
    ]


def test_dropoff_counts_reached_finished_and_stalled_per_activity(warehouse: Path) -> None:
    assert query(
        warehouse,
        "select course_id, activity_id, position, count_learners_reached, "
        "count_learners_finished, count_learners_stalled, dropoff_rate "
        "from marts.fct_course_dropoff order by course_id, activity_id",
    ) == [
        (200, 20002, 1, 0, 0, 0, None),
        (300, 9001, None, 1, 0, 1, 1.0),
        (14150, 2642, 2, 1, 1, 0, 0.0),
        (14150, 6743, 3, 1, 1, 0, 0.0),
        (14150, 8558, 1, 4, 2, 2, 0.5),
    ]


def test_compliance_lists_learners_assigned_through_a_current_team(warehouse: Path) -> None:
    assert query(
        warehouse,
        "select learner_id, course_id, status, assigned_at, due_at, "
        "completed_at, is_overdue from marts.fct_training_compliance order by learner_id",
    ) == [
        (
            90211,
            14150,
            "completed",
            ts("2024-01-07 10:00:00"),
            ts("2024-02-06 10:00:00"),
            ts("2024-01-08 09:45:00"),
            False,
        ),
        (
            90215,
            14150,
            "in_progress",
            ts("2024-01-25 10:00:00"),
            ts("2024-02-24 10:00:00"),
            None,
            False,
        ),
        (
            90216,
            14150,
            "not_started",
            ts("2024-01-04 09:00:00"),
            ts("2024-02-03 09:00:00"),
            None,
            True,
        ),
    ]


def test_unprocessable_deliveries_are_counted_not_dropped(warehouse: Path) -> None:
    assert query(
        warehouse,
        "select invalid_reason, count(*) from intermediate.int_events_quarantined "
        "group by invalid_reason order by invalid_reason",
    ) == [("missing_learner_id", 1), ("missing_type", 1), ("unknown_type", 1)]


def test_every_designed_mart_exists_as_a_table_or_a_view_over_an_incremental_table(
    warehouse: Path,
) -> None:
    kinds = dict(
        query(
            warehouse,
            "select table_name, table_type from information_schema.tables "
            "where table_schema = 'marts'",
        )
    )
    views = {"fct_learner_activity", "fct_learner_course_progress"}
    assert {name: kinds.get(name) for name in DESIGNED_MARTS} == {
        name: "VIEW" if name in views else "BASE TABLE" for name in DESIGNED_MARTS
    }


def test_has_learner_completed_course_is_one_index_scan(warehouse: Path) -> None:
    plan = one(
        warehouse,
        "explain analyze select status = 'completed' "
        "from marts.fct_learner_course_progress where learner_course_key = '90211:14150'",
    )
    assert "Index Scan" in plan[1], plan[1]
    assert one(
        warehouse,
        "select status = 'completed' from marts.fct_learner_course_progress "
        "where learner_course_key = ?",
        "90211:14150",
    ) == (True,)


def test_docs_generate_succeeds_and_every_column_is_described(warehouse: Path, make_dbt) -> None:
    runner = make_dbt(warehouse)
    runner("docs", "generate")
    manifest = json.loads((runner.work_dir / "target" / "manifest.json").read_text())
    catalog = json.loads((runner.work_dir / "target" / "catalog.json").read_text())
    assert len(catalog["nodes"]) >= 25  # every model and the seed were catalogued
    undocumented = []
    for unique_id, node in catalog["nodes"].items():
        described = manifest["nodes"][unique_id]
        if not described["description"].strip():
            undocumented.append(unique_id)
        for column in node["columns"]:
            column_doc = described["columns"].get(column.lower(), {}).get("description", "")
            if not column_doc.strip():
                undocumented.append(f"{unique_id}.{column}")
    assert undocumented == []
