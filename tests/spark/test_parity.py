"""The same landed deliveries, built by the same dbt project on DuckDB and on Spark, give the same
marts, row for row (normalisation and tolerance: mart_parity.py).

The Spark side is a real ``EDUME_ENGINE=spark edume-pipeline materialize``: the Dagster job loads
the landing into DuckDB, hands ``raw.edume_events`` off as parquet, runs ``dbt build`` on a local
Spark (one session for the whole invocation, tests included) and exports the marts Spark built.
The DuckDB side loads the same landing and runs ``dbt build`` on the duckdb target. Every table of
schema ``marts`` (the marts and the seed they join) is compared, and every export is compared with
the Spark mart it came from. The data: the warehouse tests' fixture company, deliveries that probe
each dispatched macro's edge cases, and a seed of the simulator with re-deliveries and
out-of-order arrival. Budget: one Spark start.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from fixture_company import at, company_deliveries
from mart_parity import Table, differences, duckdb_marts, read_table, spark_marts
from materialize_kit import MATERIALIZE_TIMEOUT_S, Pipeline, copy_dbt_project
from warehouse_harness import MARTS, Delivery, land

from pipeline.export import mart_parquet_glob
from pipeline.loader.handoff import spark_dir
from pipeline.loader.ndjson import load_landing
from pipeline.settings import DBT_PROJECT_DIR, REPO_ROOT
from pipeline.simulator.generate import default_end, generate
from pipeline.spark_marts import connect_spark_marts

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
def test_materialize_on_spark_builds_the_same_marts_as_duckdb_and_exports_them(
    tmp_path: Path,
) -> None:
    """``EDUME_ENGINE=spark edume-pipeline materialize``: the whole Dagster job (load, hand-off,
    dbt build on a local Spark, export) over the fixture company, the edge cases and a simulator
    seed in one landing (one Spark start), against ``dbt build`` on DuckDB of the same landing.
    The fixture company (2024) and the simulator (2026) share some ids, which only makes the marts
    richer; the comparison does not care what the figures are, only that both engines agree."""
    deliveries = sorted(
        company_deliveries()
        + edge_case_deliveries()
        + simulated_deliveries(SIMULATED_LEARNERS, SIMULATOR_SEED),
        key=lambda delivery: delivery.received_at,
    )
    as_of = default_end().strftime("%Y-%m-%d %H:%M:%S")
    on_spark = Pipeline.under(
        tmp_path / "spark-run", copy_dbt_project(tmp_path / "dbt", as_of=as_of)
    )
    land(on_spark.landing, deliveries)
    env = {k: v for k, v in on_spark.env().items() if k != "EDUME_SPARK_DIR"}
    env.update(EDUME_ENGINE="spark", EDUME_SPARK_MASTER="local[2]")
    done = subprocess.run(
        on_spark.command("--dbt-target-path", str(tmp_path / "target-spark-run")),
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=MATERIALIZE_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "materialized exports/marts" in done.stdout
    with duckdb.connect(str(on_spark.warehouse), read_only=True) as connection:
        (loaded,) = connection.execute("select count(*) from raw.edume_events").fetchone()
        schemas = {
            row[0]
            for row in connection.execute("select schema_name from duckdb_schemas()").fetchall()
        }
    assert loaded == len(deliveries)
    assert "marts" not in schemas  # Spark built them, not DuckDB

    warehouse = tmp_path / "duckdb" / "edume.duckdb"
    assert load_landing(on_spark.landing, warehouse).rows_loaded == len(deliveries)
    _dbt_build("duckdb", warehouse, tmp_path, as_of)
    spark_warehouse = spark_dir(on_spark.warehouse, env={}) / "warehouse"
    built_on_spark = spark_marts(spark_warehouse)
    _assert_identical(duckdb_marts(warehouse), built_on_spark)

    # What the export wrote is what Spark built, mart for mart.
    with connect_spark_marts(spark_warehouse) as connection:
        for mart in MARTS:
            glob = mart_parquet_glob(on_spark.exports, mart)
            exported = read_table(connection, f"read_parquet('{glob}', hive_partitioning = false)")
            assert exported == built_on_spark[mart], mart
    assert built_on_spark["fct_learner_activity"].rows


def test_the_comparison_reports_a_row_that_differs_on_one_engine() -> None:
    at_noon = datetime(2024, 1, 1, 12)
    duckdb_side = {"m": Table(("id", "at", "rate"), [(1, at_noon, 0.5), (2, at_noon, 0.25)])}
    spark_side = {"m": Table(("id", "at", "rate"), [(1, at_noon, 0.5), (2, at_noon, 0.2500001)])}
    assert differences(duckdb_side, duckdb_side) == []
    assert len(differences(duckdb_side, spark_side)) == 1
