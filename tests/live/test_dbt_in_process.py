"""dbt inside the live worker's process reports what a ``dbt build`` subprocess reports, builds
the same marts, lets go of the warehouse file after each build, and fails a run as loudly.

Two workers over the same landing, one per way of running dbt, each a real Dagster run with a
real build (``as_of`` pinned in a copy of the dbt project, so the time-dependent columns
compare). No timing is asserted.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from bench.live_kit import marts, settings_under
from pipeline.defs.resources import edume_dbt_project
from pipeline.live.worker import BatchReport, LiveOptions, LiveWorker, build_worker
from pipeline.simulator.deliveries import Noise, stream_bodies
from pipeline.simulator.generate import default_end, journeys
from pipeline.simulator.post import land_bodies
from tests.defs.materialize_kit import copy_dbt_project

pytestmark = [pytest.mark.slow]

SEED = 20261204
AS_OF = "2026-11-05 00:00:00"  # after the simulated company's 90 days (default_end())
BROKEN_MODEL = "zz_reads_a_missing_table"


@dataclass(frozen=True)
class Side:
    """One worker's batch, as its Dagster run recorded it."""

    report: BatchReport
    warehouse: Path
    materialized: dict[dg.AssetKey, int | None]  # each asset and its row count (None: views)
    checks: set[tuple[str, bool]]
    failures: list[str]

    @classmethod
    def record(cls, worker: LiveWorker, report: BatchReport) -> Side:
        entries = [
            entry.dagster_event
            for entry in worker.instance.all_logs(report.run_id)
            if entry.dagster_event is not None
        ]
        materialized = {}
        checks = set()
        failures = []
        for event in entries:
            if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                materialization = event.step_materialization_data.materialization
                count = materialization.metadata.get("dagster/row_count")
                materialized[materialization.asset_key] = None if count is None else count.value
            elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                data = event.event_specific_data
                checks.add((data.asset_check_key.to_user_string(), data.passed))
            elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
                failures.append(str(event.event_specific_data.error))
        return cls(report, worker.warehouse, materialized, checks, failures)


def run_one_batch(root: Path, project_dir: Path, bodies: list[bytes], in_process: bool) -> Side:
    """Land ``bodies``, then one batch of a worker over ``project_dir``."""
    settings = settings_under(root)
    land_bodies(settings.landing_dir, bodies, datetime(2026, 11, 2, tzinfo=UTC))
    project = edume_dbt_project(project_dir, root / "dbt_target")
    options = LiveOptions(dbt_in_process=in_process)
    with dg.DagsterInstance.ephemeral() as instance:  # entered, as the worker's own is
        worker = build_worker(settings, instance, options, project, log=lambda _: None)
        report = worker.run_batch(worker.poll())
        assert report is not None
        return Side.record(worker, report)


def company_bodies() -> list[bytes]:
    truth, batches = journeys(12, SEED, default_end())
    return list(stream_bodies(batches, Noise(), SEED, truth))


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Side]:
    root = tmp_path_factory.mktemp("dbt-in-process")
    project = copy_dbt_project(root / "dbt_project", as_of=AS_OF)
    bodies = company_bodies()
    return {
        name: run_one_batch(root / name, project, bodies, in_process)
        for name, in_process in (("subprocess", False), ("in_process", True))
    }


def another_process_can_write(warehouse: Path) -> subprocess.CompletedProcess[str]:
    """Open the file read-write from a new process: DuckDB refuses while anyone holds it."""
    code = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('checkpoint').close()"
    return subprocess.run(
        [sys.executable, "-c", code, str(warehouse)], capture_output=True, text=True, timeout=120
    )


def test_both_ways_succeed(sides: dict[str, Side]) -> None:
    assert [side.report.success for side in sides.values()] == [True, True]


def test_in_process_reports_the_same_materializations_and_row_counts(
    sides: dict[str, Side],
) -> None:
    expected = sides["subprocess"].materialized
    assert len(expected) > 40
    assert sum(count is not None for count in expected.values()) > 10
    assert sides["in_process"].materialized == expected


def test_in_process_reports_the_same_check_results(sides: dict[str, Side]) -> None:
    expected = sides["subprocess"].checks
    assert len(expected) > 40
    assert sides["in_process"].checks == expected


def test_in_process_builds_the_same_marts_both_ways(sides: dict[str, Side]) -> None:
    expected = marts(sides["subprocess"].warehouse)
    actual = marts(sides["in_process"].warehouse)
    assert sorted(actual) == sorted(expected)
    for name, rows in expected.items():
        assert not rows - actual[name], f"{name}: rows only in the subprocess build"
        assert not actual[name] - rows, f"{name}: rows only in the in-process build"


def test_the_warehouse_is_released_after_an_in_process_build(sides: dict[str, Side]) -> None:
    done = another_process_can_write(sides["in_process"].warehouse)
    assert done.returncode == 0, done.stderr


def test_a_failing_in_process_build_fails_the_run_names_the_error_and_lets_go(
    tmp_path: Path,
) -> None:
    project = copy_dbt_project(tmp_path / "dbt_project", as_of=AS_OF)
    (project / "models" / "marts" / f"{BROKEN_MODEL}.sql").write_text(
        "select * from main.no_such_table_anywhere\n"
    )
    side = run_one_batch(tmp_path / "run", project, company_bodies()[:200], True)

    assert not side.report.success
    assert any(BROKEN_MODEL in failure for failure in side.failures), side.failures
    # The models before the broken one were built and reported.
    assert dg.AssetKey(["marts", "dim_courses"]) in side.materialized
    done = another_process_can_write(side.warehouse)
    assert done.returncode == 0, done.stderr
