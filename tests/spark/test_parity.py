"""The same landed deliveries, built by the same dbt project on DuckDB and on Spark, give the same
marts, row for row (normalisation and tolerance: mart_parity.py).

Each test runs the real pipeline pieces: land sealed segments, load them into a DuckDB file, run
``dbt build`` on the duckdb target, export the raw hand-off, run ``dbt build`` on the spark target
(a local Spark, one session for the whole invocation, tests included), then compare every table
of schema ``marts`` (the marts and the seed they join). The data: the warehouse tests' fixture
company, deliveries that probe each dispatched macro's edge cases, and a seed of the simulator
with re-deliveries and out-of-order arrival. Budget: two dbt invocations, one Spark start.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fixture_company import at, company_deliveries
from mart_parity import Table, differences, duckdb_marts, spark_marts
from warehouse_harness import MARTS, Delivery, land

from pipeline.loader.handoff import hand_off, spark_dir
from pipeline.loader.ndjson import load_landing
from pipeline.settings import DBT_PROJECT_DIR
from pipeline.simulator.generate import default_end, generate

DBT = Path(sys.executable).with_name("dbt")
SIMULATED_LEARNERS = 60
SIMULATOR_SEED = 20261129


def _dbt_build(engine: str, warehouse: Path, work_dir: Path, as_of: str) -> None:
    """``dbt build`` on ``engine``'s target; fails the test with dbt's output when it fails."""
    env = {
        **os.environ,
        "EDUME_ENGINE": engine,
        "EDUME_WAREHOUSE": str(warehouse),
        "EDUME_SPARK_MASTER": "local[2]",
        "DO_NOT_TRACK": "1",
    }
    env.pop("EDUME_SPARK_DIR", None)  # the Spark directory follows the warehouse
    command = [
        str(DBT),
        "build",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(work_dir / f"target-{engine}"),
        "--log-path",
        str(work_dir / f"logs-{engine}"),
        "--vars",
        json.dumps({"as_of": as_of}),
    ]
    done = subprocess.run(
        command, env=env, cwd=work_dir, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"dbt build on {engine} failed:\n{done.stdout[-8000:]}\n{done.stderr[-3000:]}")


def build_on_both_engines(
    tmp_path: Path, deliveries: Sequence[Delivery], as_of: str
) -> tuple[dict[str, Table], dict[str, Table]]:
    """Land, load and build ``deliveries`` on DuckDB then on Spark; return both sets of marts."""
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse" / "edume.duckdb"
    land(landing, deliveries)
    loaded = load_landing(landing, warehouse)
    assert loaded.rows_loaded == len(deliveries) and loaded.rows_rejected == 0, loaded
    _dbt_build("duckdb", warehouse, tmp_path, as_of)
    handed = hand_off("spark", warehouse, env={})
    assert handed is not None and handed.rows_written == len(deliveries), handed
    _dbt_build("spark", warehouse, tmp_path, as_of)
    return duckdb_marts(warehouse), spark_marts(spark_dir(warehouse, env={}) / "warehouse")


def _body(event_type: str, payload_json: str, timestamp: str) -> bytes:
    """A body spelled out as text, so that odd JSON (string ids, nulls) reaches the warehouse."""
    return f'{{"type":"{event_type}","payload":{payload_json},"timestamp":"{timestamp}"}}'.encode()


def edge_case_deliveries() -> list[Delivery]:
    """Deliveries that take each dispatched macro off the happy path (course 500, learner 90299).

    String ids, a fractional id, a null and a string where arrays are expected, a string score,
    escaped and non-ASCII text, completedAt with an offset, with nanoseconds, and unparseable.
    """
    group = '"group":{"groupId":"1297"}'
    course = '"course":{"courseId":"500","courseKey":"edge","title":"\\u00c9dge \\"course\\""}'
    learner = (
        '"user":{"userId":"90299","externalUserId":"émp-299","firstName":"Zoë","lastName":"Ñ"}'
    )
    bodies = [
        _body(
            "course.added",
            f'{{{group},"teams":[{{"teamId":3493}},null,{{"teamId":"3494"}}],'
            f'{course},"modules":[{{"moduleId":50001}},{{"moduleId":50001.5}}],"activities":['
            '{"activityId":50002,"published":"true","type":"lesson"},'
            '{"activityId":50003,"published":false,"type":"assessment"}],"version":1}',
            "2024-01-02T10:00:00.000Z",
        ),
        _body(
            "course.published",
            f'{{{group},"teams":"[{{\\"teamId\\":3495}}]",{course},'
            '"modules":[],"activities":[],"version":1}',
            "2024-01-02T11:00:00.000Z",
        ),
        _body(
            "learner.added",
            f'{{{group},"teams":[{{"teamId":3493}}],{learner},{course},"version":1}}',
            "2024-01-03T08:00:00.000Z",
        ),
        _body(
            "learner.activity.started",
            f'{{{group},{learner},{course},"module":{{"moduleId":'
            '50001},"activity":{"type":"lesson","activityId":"50002"},"version":1}',
            "2024-01-03T09:00:00.000Z",
        ),
        _body(
            "learner.activity.finished",
            f'{{{group},{learner},{course},"module":{{"moduleId":'
            '50001},"activity":{"type":"assessment","activityId":50003},"result":{"score":"92.5",'
            '"passed":true},"version":1}',
            "2024-01-03T09:30:00.000Z",
        ),
        _body(
            "learner.activity.finished",
            f'{{{group},{learner},{course},"module":{{"moduleId":'
            '50001},"activity":{"type":"lesson","activityId":50002.0},"version":1}',
            "2024-01-03T09:31:00.000Z",
        ),
        _body(
            "learner.course.completed",
            f'{{{group},"teams":[],{learner},{course},"modules":[],'
            '"activities":[],"completedAt":"2024-01-03T12:00:00.123456789+02:00","version":1}',
            "2024-01-03T10:00:00.000Z",
        ),
        _body(
            "learner.course.completed",
            f'{{{group},"teams":[],{learner},{course},"modules":[],'
            '"activities":[],"completedAt":"2024-01","version":1}',
            "2024-01-03T10:05:00.000Z",
        ),
    ]
    return [Delivery(body, at("2024-01-04", f"0{hour}:00:00")) for hour, body in enumerate(bodies)]


def simulated_deliveries(learners: int, seed: int) -> list[Delivery]:
    """The simulator's events for ``seed``, received 1-90 s after they occur, one in ten twice
    (an eduMe retry minutes later), landed in arrival order, so arrival order != occurrence order.
    """
    rng = random.Random(seed)
    events, _truth = generate(learners, seed=seed)
    deliveries = []
    for event in events:
        body = json.dumps(event.body, separators=(",", ":"), ensure_ascii=False).encode()
        received = datetime.fromtimestamp(event.at_ms / 1000, UTC) + timedelta(
            seconds=rng.uniform(1, 90)
        )
        deliveries.append(Delivery(body, received))
        if rng.random() < 0.1:
            deliveries.append(Delivery(body, received + timedelta(minutes=rng.uniform(1, 30))))
    return sorted(deliveries, key=lambda delivery: delivery.received_at)


def _assert_identical(on_duckdb: dict[str, Table], on_spark: dict[str, Table]) -> None:
    assert set(MARTS) <= set(on_duckdb), f"marts missing on duckdb: {set(MARTS) - set(on_duckdb)}"
    assert any(table.rows for table in on_duckdb.values()), "the build produced empty marts"
    found = differences(on_duckdb, on_spark)
    assert not found, "marts differ between DuckDB and Spark:\n" + "\n".join(found)


@pytest.mark.spark
def test_the_fixture_company_edge_cases_and_a_simulator_seed_build_the_same_marts_on_both_engines(
    tmp_path: Path,
) -> None:
    # One warehouse holds all three datasets so that each engine starts once: the fixture
    # company (2024) and the simulator (2026) share some ids, which only makes the marts
    # richer; the comparison does not care what the figures are, only that both engines agree.
    deliveries = sorted(
        company_deliveries()
        + edge_case_deliveries()
        + simulated_deliveries(SIMULATED_LEARNERS, SIMULATOR_SEED),
        key=lambda delivery: delivery.received_at,
    )
    as_of = default_end().strftime("%Y-%m-%d %H:%M:%S")
    _assert_identical(*build_on_both_engines(tmp_path, deliveries, as_of))


def test_the_comparison_reports_a_row_that_differs_on_one_engine() -> None:
    at_noon = datetime(2024, 1, 1, 12)
    duckdb_side = {"m": Table(("id", "at", "rate"), [(1, at_noon, 0.5), (2, at_noon, 0.25)])}
    spark_side = {"m": Table(("id", "at", "rate"), [(1, at_noon, 0.5), (2, at_noon, 0.2500001)])}
    assert differences(duckdb_side, duckdb_side) == []
    assert len(differences(duckdb_side, spark_side)) == 1
