"""The dbt quality models the report reads, built by the real dbt CLI on a real warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
from contract_kit import body, land_and_check, learner_added

from pipeline.settings import DBT_PROJECT_DIR

DBT = Path(sys.executable).with_name("dbt")


def _build_quality_models(workspace: Path) -> None:
    done = subprocess.run(
        [str(DBT), "build", "--select", "contract_deviations", "int_delivery_envelopes_aggregated",
         "delivery_envelopes",
         "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(workspace / "target"), "--log-path", str(workspace / "logs")],
        capture_output=True,
        text=True,
        env={**os.environ, "EDUME_WAREHOUSE": str(workspace / "warehouse.duckdb"),
             "EDUME_ENGINE": "duckdb"},
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]


def test_a_deviating_path_names_its_readers_and_the_marts_they_feed(tmp_path: Path) -> None:
    land_and_check(tmp_path, [body(learner_added(i, userId=None, id=i)) for i in range(3)])
    _build_quality_models(tmp_path)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select path, problem, count_deliveries, read_by, feeds_marts "
            "from quality.contract_deviations order by path"
        ).fetchall()
        envelope = con.execute(
            "select header, value, count_deliveries from quality.delivery_envelopes order by header"
        ).fetchall()
    (unexpected, missing) = rows
    assert unexpected == ("payload.user.id", "unexpected", 3, None, None)
    assert missing[:4] == (
        "payload.user.userId",
        "missing",
        3,
        "stg_edume__learner_events.learner_id",
    )
    assert {"dim_learners", "fct_learner_course_progress"} <= set(missing[4].split(", "))
    assert [header for header, _, _ in envelope] == [
        "content_encoding",
        "content_type",
        "user_agent",
    ]
    assert all(count == 3 for _, _, count in envelope)
