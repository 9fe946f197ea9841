"""The tables the spark target built, opened in DuckDB: what the exports (marts) and the Dagster
check on unknown event types (staging) read when EDUME_ENGINE=spark.

dbt-spark writes each table of a database as parquet under the Spark warehouse directory,
``<spark_dir>/warehouse/<database>.db/<name>/part-*.parquet`` (``spark.sql.warehouse.dir`` in
the profile). :func:`connect_spark_tables` returns an in-memory DuckDB connection with one view
``<database>.<name>`` per such table, so Python reads Spark's tables exactly as it reads
DuckDB's. Timestamps arrive as UTC instants (the profile writes ``TIMESTAMP_MICROS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

MARTS_DATABASE = "marts"


def spark_table_dirs(spark_warehouse_dir: Path, database: str) -> dict[str, Path]:
    """Each table's parquet directory in ``database`` of a Spark warehouse directory, by name.

    Raises ``FileNotFoundError`` when Spark has built nothing there (run dbt on the spark target).
    """
    folder = Path(spark_warehouse_dir) / f"{database}.db"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no Spark tables under {folder}: build them with EDUME_ENGINE=spark first"
        )
    return {table.name: table for table in sorted(folder.iterdir()) if table.is_dir()}


def spark_mart_dirs(spark_warehouse_dir: Path) -> dict[str, Path]:
    """Each mart's parquet directory, by mart name (see :func:`spark_table_dirs`)."""
    return spark_table_dirs(spark_warehouse_dir, MARTS_DATABASE)


def connect_spark_tables(
    spark_warehouse_dir: Path, databases: Sequence[str]
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection (TimeZone UTC) with a view ``<database>.<name>`` per
    Spark table of each of ``databases``.

    The caller closes it. Raises ``FileNotFoundError`` as :func:`spark_table_dirs` does.
    """
    tables = {database: spark_table_dirs(spark_warehouse_dir, database) for database in databases}
    connection = duckdb.connect()
    connection.execute("set TimeZone = 'UTC'")
    for database, folders in tables.items():
        connection.execute(f'create schema "{database}"')
        for name, folder in folders.items():
            files = str(folder / "*.parquet").replace("'", "''")
            connection.execute(
                f'create view "{database}"."{name}" as select * from read_parquet(\'{files}\')'
            )
    return connection


def connect_spark_marts(spark_warehouse_dir: Path) -> duckdb.DuckDBPyConnection:
    """:func:`connect_spark_tables` for the marts alone."""
    return connect_spark_tables(spark_warehouse_dir, (MARTS_DATABASE,))
