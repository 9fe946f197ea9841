"""Spark vs DuckDB: the same landed events, built by the same dbt project on both engines.

In one run, on one landing (default: the simulator's ~1M deliveries, seed 7):

1. simulate and load into a fresh DuckDB warehouse (shared, not compared);
2. DuckDB: ``dbt build`` on the duckdb target (models, seed, data and unit tests);
3. Spark: the raw hand-off to parquet, then ``dbt build`` on the spark target, Spark ``local[2]``
   (cold start included: it is what every run pays).

Prints both times, Spark's hand-off separately, the ratio Spark / DuckDB, and each mart's row count
on both engines (they must be equal; tests/spark/test_parity.py compares the values too).
The point is parity and an honest figure, not a win on one box: Spark pays for a JVM, a
metastore and task scheduling that only pay back across many machines.
Usage: ``.venv/bin/python bench/spark_vs_duckdb.py [--learners 42000] [--seed 7] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the bench runs as a script, from any directory

from pipeline.loader.handoff import hand_off, spark_dir  # noqa: E402
from pipeline.loader.ndjson import load_landing  # noqa: E402
from pipeline.settings import DBT_PROJECT_DIR  # noqa: E402
from pipeline.simulator.generate import default_end  # noqa: E402
from pipeline.spark_marts import connect_spark_marts, spark_mart_dirs  # noqa: E402

DBT = Path(sys.executable).with_name("dbt")


def _simulate(landing: Path, learners: int, seed: int) -> None:
    command = [
        sys.executable, "-m", "pipeline.cli", "simulate",
        "--landing", str(landing), "--learners", str(learners), "--seed", str(seed),
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)


def _dbt_build(engine: str, warehouse: Path, work: Path, as_of: str) -> float:
    """Seconds taken by ``dbt build`` on ``engine``; exits with dbt's output when it fails."""
    env = {
        **os.environ,
        "EDUME_ENGINE": engine,
        "EDUME_WAREHOUSE": str(warehouse),
        "EDUME_SPARK_MASTER": "local[2]",
        "DO_NOT_TRACK": "1",
    }
    env.pop("EDUME_SPARK_DIR", None)
    command = [
        str(DBT), "build",
        "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(work / f"target-{engine}"), "--log-path", str(work / f"logs-{engine}"),
        "--vars", json.dumps({"as_of": as_of}),
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dbt build on {engine} failed:\n{done.stdout[-6000:]}")
    return elapsed


def _row_counts(connection: duckdb.DuckDBPyConnection, names: list[str]) -> dict[str, int]:
    return {
        name: connection.execute(f'select count(*) from marts."{name}"').fetchone()[0]
        for name in names
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=42_000, help="~24 events per learner")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (default: a temp dir)")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="edume-bench-spark-"))
    work.mkdir(parents=True, exist_ok=True)
    landing, warehouse = work / "landing", work / "warehouse" / "edume.duckdb"
    as_of = default_end().strftime("%Y-%m-%d %H:%M:%S")
    try:
        started = time.perf_counter()
        _simulate(landing, args.learners, args.seed)
        loaded = load_landing(landing, warehouse)
        print(
            f"landed and loaded {loaded.rows_loaded:,} deliveries "
            f"({args.learners:,} learners, seed {args.seed}) in "
            f"{time.perf_counter() - started:.1f} s; cores: {os.cpu_count()}, "
            f"load average before: {os.getloadavg()[0]:.1f}"
        )

        duckdb_s = _dbt_build("duckdb", warehouse, work, as_of)
        started = time.perf_counter()
        handed = hand_off("spark", warehouse, env={})
        handoff_s = time.perf_counter() - started
        spark_s = _dbt_build("spark", warehouse, work, as_of)

        with duckdb.connect(str(warehouse), read_only=True) as connection:
            names = sorted(spark_mart_dirs(spark_dir(warehouse, env={}) / "warehouse"))
            on_duckdb = _row_counts(connection, names)
        with connect_spark_marts(spark_dir(warehouse, env={}) / "warehouse") as connection:
            on_spark = _row_counts(connection, names)

        assert handed is not None
        print(f"duckdb   dbt build                 {duckdb_s:8.1f} s")
        print(f"spark    hand-off ({handed.rows_written:,} rows)  {handoff_s:8.1f} s")
        print(f"spark    dbt build, local[2]       {spark_s:8.1f} s")
        print(f"ratio    spark build / duckdb build  {spark_s / duckdb_s:6.1f}x")
        print(f"ratio    spark incl. hand-off / duckdb  {(spark_s + handoff_s) / duckdb_s:6.1f}x")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        print(f"{'mart':32} {'duckdb rows':>12} {'spark rows':>12}")
        for name in names:
            flag = "" if on_duckdb[name] == on_spark[name] else "   <- DIFFERENT"
            print(f"{name:32} {on_duckdb[name]:12,} {on_spark[name]:12,}{flag}")
        return 0 if on_duckdb == on_spark else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
