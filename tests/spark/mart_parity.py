"""Read every mart of a DuckDB build and of a Spark build, and compare them row for row.

Values are normalised before comparing, and nothing else is forgiven:
- timestamps: aware ones (Spark writes UTC instants) become naive UTC, as the warehouse's are;
- numbers: ``Decimal`` and ``float`` compare as floats within ``REL_TOLERANCE`` (engines may sum
  doubles in a different order); integers compare exactly, whatever their width;
- booleans stay booleans (``True`` never equals ``1``);
- row order: both sides are sorted by every column, so the comparison does not depend on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from pipeline.spark_marts import connect_spark_marts, spark_mart_dirs

REL_TOLERANCE = 1e-9
MARTS_SCHEMA = "marts"


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: list[tuple]


def normalise(value: object) -> object:
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _sort_key(row: tuple) -> tuple:
    # Floats are rounded for ordering only, so a last-digit difference cannot reorder rows.
    return tuple(
        (value is None, type(value).__name__, round(v, 6) if isinstance(v := value, float) else v)
        for value in row
    )


def read_table(connection: duckdb.DuckDBPyConnection, relation: str) -> Table:
    """``relation`` (a table, or a table function such as ``read_parquet(...)``), normalised."""
    cursor = connection.execute(f"select * from {relation}")
    columns = tuple(column[0] for column in cursor.description)
    rows = [tuple(normalise(value) for value in row) for row in cursor.fetchall()]
    return Table(columns, sorted(rows, key=_sort_key))


def duckdb_marts(warehouse: Path) -> dict[str, Table]:
    """Every table of schema ``marts`` in the DuckDB file, by name."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        connection.execute("set TimeZone = 'UTC'")
        names = [
            row[0]
            for row in connection.execute(
                "select table_name from information_schema.tables where table_schema = ?",
                [MARTS_SCHEMA],
            ).fetchall()
        ]
        return {name: read_table(connection, f"{MARTS_SCHEMA}.{name}") for name in names}


def spark_marts(spark_warehouse_dir: Path) -> dict[str, Table]:
    """Every table of database ``marts`` in a Spark warehouse dir, read as the exporter does."""
    with connect_spark_marts(spark_warehouse_dir) as connection:
        return {
            name: read_table(connection, f"{MARTS_SCHEMA}.{name}")
            for name in spark_mart_dirs(spark_warehouse_dir)
        }


def _same(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return math.isclose(left, right, rel_tol=REL_TOLERANCE, abs_tol=REL_TOLERANCE)
    return type(left) is type(right) and left == right


def differences(expected: dict[str, Table], actual: dict[str, Table], limit: int = 5) -> list[str]:
    """Human-readable differences between two sets of marts; empty when they are identical."""
    found: list[str] = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual or name not in expected:
            found.append(f"{name}: only on {'duckdb' if name in expected else 'spark'}")
            continue
        left, right = expected[name], actual[name]
        if left.columns != right.columns:
            found.append(f"{name}: columns {left.columns} != {right.columns}")
            continue
        if len(left.rows) != len(right.rows):
            found.append(f"{name}: {len(left.rows)} rows on duckdb, {len(right.rows)} on spark")
        mismatched = [
            (a, b)
            for a, b in zip(left.rows, right.rows, strict=False)
            if not all(_same(x, y) for x, y in zip(a, b, strict=True))
        ]
        for a, b in mismatched[:limit]:
            found.append(
                f"{name}:\n  duckdb {dict(zip(left.columns, a, strict=True))}"
                f"\n  spark  {dict(zip(right.columns, b, strict=True))}"
            )
    return found
