"""``EDUME_ENGINE=spark edume-pipeline materialize``: the same Dagster asset graph (load -> dbt
build -> export) with the models built by Spark.

One real run on simulated traffic: the loader lands raw rows in DuckDB, the raw asset hands them
off as parquet, dbt builds every model, seed and test on a local Spark, and the export asset
writes the marts Spark built. The DuckDB file never gets a mart.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from warehouse_harness import MARTS

from pipeline.export import mart_parquet_glob
from pipeline.loader.handoff import spark_dir
from pipeline.settings import REPO_ROOT
from pipeline.spark_marts import connect_spark_marts


@pytest.mark.spark
def test_materialize_on_spark_exports_the_marts_spark_built(tmp_path: Path) -> None:
    warehouse, exports = tmp_path / "warehouse" / "edume.duckdb", tmp_path / "exports"
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "EDUME_SPARK_DIR")}
    env.update(
        EDUME_LANDING_DIR=str(tmp_path / "landing"),
        EDUME_WAREHOUSE=str(warehouse),
        EDUME_EXPORT_DIR=str(exports),
        EDUME_ENGINE="spark",
        EDUME_SPARK_MASTER="local[2]",
    )
    cli = [sys.executable, "-m", "pipeline.cli"]
    subprocess.run(
        [*cli, "simulate", "--landing", str(tmp_path / "landing"), "--learners", "8"],
        cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip

    done = subprocess.run(
        [*cli, "materialize", "--dbt-target-path", str(tmp_path / "target")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "materialized exports/marts" in done.stdout
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        schemas = {
            row[0] for row in connection.sql("select schema_name from duckdb_schemas()").fetchall()
        }
    assert "marts" not in schemas  # Spark built them, not DuckDB
    with connect_spark_marts(spark_dir(warehouse, env={}) / "warehouse") as connection:
        exported_rows = {}
        for mart in MARTS:
            built = connection.execute(f"select * from marts.{mart} order by all").fetchall()
            exported = connection.execute(
                "select * from read_parquet(?, hive_partitioning = false) order by all",
                [mart_parquet_glob(exports, mart)],
            ).fetchall()
            assert exported == built, mart
            exported_rows[mart] = len(exported)
    assert exported_rows["fct_learner_activity"] > 0, exported_rows
