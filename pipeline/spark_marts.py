"""The marts the spark target built, opened in DuckDB: what exports read when EDUME_ENGINE=spark.

dbt-spark writes each table of database ``marts`` as parquet under the Spark warehouse directory,
``<spark_dir>/warehouse/marts.db/<name>/part-*.parquet`` (``spark.sql.warehouse.dir`` in the
profile). :func:`connect_spark_marts` returns an in-memory DuckDB connection with one view
``marts.<name>`` per such table, so the exporter reads Spark's marts exactly as it reads
DuckDB's. Timestamps arrive as UTC instants (the profile writes ``TIMESTAMP_MICROS``).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

MARTS_DATABASE = "marts"


def spark_mart_dirs(spark_warehouse_dir: Path) -> dict[str, Path]:
    """Each mart's parquet directory under a Spark warehouse directory, by mart name.

    Raises ``FileNotFoundError`` when Spark has built no marts there (run dbt on the spark target).
    """
    database = Path(spark_warehouse_dir) / f"{MARTS_DATABASE}.db"
    if not database.is_dir():
        raise FileNotFoundError(
            f"no Spark marts under {database}: build them with EDUME_ENGINE=spark first"
        )
    return {folder.name: folder for folder in sorted(database.iterdir()) if folder.is_dir()}


def connect_spark_marts(spark_warehouse_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection (TimeZone UTC) with a view ``marts.<name>`` per Spark mart.

    The caller closes it. Raises ``FileNotFoundError`` as :func:`spark_mart_dirs` does.
    """
    folders = spark_mart_dirs(spark_warehouse_dir)
    connection = duckdb.connect()
    connection.execute("set TimeZone = 'UTC'")
    connection.execute(f"create schema {MARTS_DATABASE}")
    for name, folder in folders.items():
        files = str(folder / "*.parquet").replace("'", "''")
        connection.execute(
            f"create view {MARTS_DATABASE}.\"{name}\" as select * from read_parquet('{files}')"
        )
    return connection
