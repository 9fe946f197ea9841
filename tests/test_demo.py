"""The README's main command, end to end: a real receiver, real signed traffic, a real
materialize (loader, dbt build, exports) and the report; then the marts against the simulator's
ground truth, number for number."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest
from demo_support import DemoRun, run_demo

from pipeline.export import DESIGNED_MARTS as MARTS
from pipeline.export import mart_parquet_glob
from pipeline.reporting.metrics import parse


@pytest.fixture(scope="module")
def truth(demo: DemoRun) -> dict:
    return json.loads((demo.workspace / "truth.json").read_text())


def _query(demo: DemoRun, sql: str) -> list[tuple]:
    with duckdb.connect(str(demo.warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_demo_prints_every_step_the_summary_and_the_next_commands(demo: DemoRun) -> None:
    for step in range(1, 10):
        assert f"[{step}/9]" in demo.stdout
    for expected in (
        "Summary",
        "duplicates removed",
        "Funnel per course",
        "dagster dev -w workspace.yaml",
        "query.duckdb",
        ".parquet",
        "report.html",
    ):
        assert expected in demo.stdout


def test_funnel_matches_the_simulators_ground_truth_for_every_course(
    demo: DemoRun, truth: dict
) -> None:
    rows = _query(
        demo,
        """
        select course_id, count_learners_added, count_learners_activated, count_learners_started,
            count_learners_finished_first_lesson, count_learners_completed
        from marts.fct_learner_funnel""",
    )
    actual = {str(row[0]): list(row[1:]) for row in rows}
    expected = {
        course_id: [
            c["learners_added"],
            c["learners_activated"],
            c["learners_started"],
            c["learners_finished_first_lesson"],
            c["learners_completed"],
        ]
        for course_id, c in truth["courses"].items()
    }
    assert actual == expected
    assert sum(c[0] for c in expected.values()) > 0  # a funnel of zeros would prove nothing


def test_dropoff_matches_the_ground_truth_for_every_activity(demo: DemoRun, truth: dict) -> None:
    rows = _query(
        demo,
        """
        select course_id, activity_id, count_learners_reached, count_learners_finished
        from marts.fct_course_dropoff""",
    )
    actual = {(str(c), str(a)): [reached, finished] for c, a, reached, finished in rows}
    expected = {
        (course_id, activity_id): [counts["reached"], counts["finished"]]
        for course_id, course in truth["courses"].items()
        for activity_id, counts in course["activities"].items()
    }
    assert actual == expected


def test_catalogue_matches_the_ground_truth(demo: DemoRun, truth: dict) -> None:
    rows = _query(
        demo,
        """
        select course_id, course_key, course_title, group_id, status, count_modules,
            count_lessons, count_assessments, count_surveys
        from marts.dim_courses""",
    )
    actual = {str(row[0]): list(row[1:]) for row in rows}
    expected = {
        course_id: [
            c["course_key"],
            c["title"],
            c["group_id"],
            c["status"],
            c["count_modules"],
            c["count_lessons"],
            c["count_assessments"],
            c["count_surveys"],
        ]
        for course_id, c in truth["courses"].items()
    }
    assert actual == expected


def test_team_assignments_match_the_ground_truth(demo: DemoRun, truth: dict) -> None:
    rows = _query(demo, "select course_id, team_id from marts.course_team_assignments")
    actual = {(str(course_id), team_id) for course_id, team_id in rows}
    expected = {
        (course_id, team_id)
        for course_id, course in truth["courses"].items()
        if course["status"] != "deleted"
        for team_id in course["teams"]
    }
    assert actual == expected


def test_every_learner_with_an_event_is_in_dim_learners(demo: DemoRun, truth: dict) -> None:
    assert _query(demo, "select count(*) from marts.dim_learners") == [(truth["learners_seen"],)]


def test_forgeries_are_rejected_and_every_genuine_delivery_is_accepted(
    demo: DemoRun, truth: dict
) -> None:
    assert truth["deliveries"]["rejected_bad_signature"] > 0  # the demo sends forgeries
    metrics = parse((demo.workspace / "receiver_metrics.prom").read_text(), "saved")
    assert metrics.accepted == truth["deliveries"]["accepted"]
    assert (
        metrics.rejected_by_reason.get("signature_mismatch")
        == (truth["deliveries"]["rejected_bad_signature"])
    )
    assert _query(demo, "select count(*) from raw.edume_events where body like '%Mallory%'") == [
        (0,)
    ]


def test_retried_duplicates_land_but_count_once(demo: DemoRun, truth: dict) -> None:
    counts = truth["deliveries"]
    assert counts["duplicates"] > 0
    assert _query(demo, "select count(*), count(distinct delivery_id) from raw.edume_events") == [
        (counts["accepted"], counts["distinct_accepted"])
    ]
    assert f"duplicates removed     {counts['accepted'] - counts['distinct_accepted']:>7,}" in (
        demo.stdout
    )


def test_unknown_event_types_are_kept_aside_not_dropped(demo: DemoRun, truth: dict) -> None:
    rows = _query(
        demo,
        """
        select count(*) from intermediate.int_events_quarantined
        where event_type = 'learner.badge.awarded'""",
    )
    assert truth["deliveries"]["unknown_type"] > 0  # the demo sends some
    assert rows == [(truth["deliveries"]["unknown_type"],)]


def test_exports_and_report_are_written_into_the_workspace(demo: DemoRun) -> None:
    exports = demo.workspace / "exports"
    warehouse = demo.workspace / "warehouse" / "edume.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        built = {
            m: connection.execute(f"select count(*) from marts.{m}").fetchone()[0] for m in MARTS
        }
    with duckdb.connect() as connection:
        for mart in MARTS:
            exported = connection.execute(
                "select count(*) from read_parquet(?, hive_partitioning = false)",
                [mart_parquet_glob(exports, mart)],
            ).fetchone()[0]
            assert exported == built[mart], mart
    with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as connection:
        assert connection.execute("select count(*) from fct_learner_funnel").fetchone()[0] > 0
    assert (demo.workspace / "report.html").stat().st_size > 10_000


def test_demo_refuses_to_delete_a_directory_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    run = run_demo(precious)
    assert run.returncode == 1
    assert "FAILED at step 'prepare a fresh workspace'" in run.stderr
    assert (precious / "thesis.txt").read_text() == "years of work"


def test_demo_names_the_step_that_failed_and_its_cause(tmp_path: Path) -> None:
    env = {**os.environ, "EDUME_MAX_BODY_BYTES": "lots"}  # the receiver refuses to start
    run = run_demo(tmp_path / "workspace", env=env)
    assert run.returncode == 1
    assert "FAILED at step 'start a receiver on a free loopback port'" in run.stderr
    assert "EDUME_MAX_BODY_BYTES" in run.stderr
