"""Marts -> ``<export_dir>/<mart>.parquet`` and ``<export_dir>/query.duckdb``, for BI tools.

Contract of :func:`export_marts`:

- Every table (or view) in schema ``marts`` of the warehouse becomes
  ``<export_dir>/<name>.parquet``, written beside its final name then renamed over it
  (``os.replace`` is atomic), so a reader sees the old file or the new one, never half of one.
- Types are those BI tools read: unsigned and 128-bit integers become BIGINT (an overflow fails the
  export loudly rather than wrapping), and timestamps become TIMESTAMPTZ in UTC (the warehouse's
  naive timestamps are UTC by convention), which Parquet stores as ``isAdjustedToUTC``.
- ``<export_dir>/query.duckdb`` holds one view per mart over its parquet file (absolute path), and
  is rebuilt aside and renamed too. It never touches the warehouse, so analysts open it (read-only)
  at any time, even while a run holds the warehouse, without a lock error.
- Files a killed export left aside (``.<name>.<pid>.tmp``, and DuckDB's ``.wal`` beside one) are
  removed by the next export once their process is gone; a running export's are left alone.

The warehouse is read under :func:`pipeline.warehouse_lock.warehouse_lock`.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.loader.handoff import spark_dir
from pipeline.spark_marts import connect_spark_marts
from pipeline.warehouse_lock import warehouse_lock

log = logging.getLogger(__name__)

QUERY_FILE = "query.duckdb"
MARTS_SCHEMA = "marts"
# The marts design.md promises; every one is exported (with any other table in schema marts).
DESIGNED_MARTS = (
    "dim_courses",
    "dim_course_modules",
    "dim_course_activities",
    "course_team_assignments",
    "course_seamless_links",
    "dim_learners",
    "fct_learner_activity",
    "fct_learner_course_progress",
    "fct_learner_funnel",
    "fct_course_dropoff",
    "fct_training_compliance",
)

# What _write_parquet and write_query_file write before the rename (plus DuckDB's write-ahead log).
_ASIDE = re.compile(r"\..+\.(?P<pid>[0-9]+)\.tmp(\.wal)?")

# DuckDB types BI tools (and Parquet readers such as Power BI, Tableau, Spark) handle badly.
_BI_CASTS = {
    "UTINYINT": "SMALLINT",
    "USMALLINT": "INTEGER",
    "UINTEGER": "BIGINT",
    "UBIGINT": "BIGINT",
    "HUGEINT": "BIGINT",
    "UHUGEINT": "BIGINT",
    "TIMESTAMP": "TIMESTAMPTZ",
    "TIMESTAMP_S": "TIMESTAMPTZ",
    "TIMESTAMP_MS": "TIMESTAMPTZ",
    "TIMESTAMP_NS": "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class ExportResult:
    parquet_files: tuple[Path, ...]
    rows: dict[str, int]
    query_file: Path


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def bi_select(columns: list[tuple[str, str]], relation: str) -> str:
    """``select`` over ``relation``, each (name, DuckDB type) column cast to a BI-friendly type."""
    items = []
    for name, column_type in columns:
        target = _BI_CASTS.get(column_type.upper())
        ident = quote_ident(name)
        items.append(f"cast({ident} as {target}) as {ident}" if target else ident)
    return f"select {', '.join(items) or '*'} from {relation}"


def list_marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables "
        "where table_schema = ? and table_catalog = current_database() order by table_name",
        [MARTS_SCHEMA],
    ).fetchall()
    return [row[0] for row in rows]


def _write_parquet(con: duckdb.DuckDBPyConnection, mart: str, export_dir: Path) -> tuple[Path, int]:
    relation = f"{MARTS_SCHEMA}.{quote_ident(mart)}"
    columns = [(row[0], row[1]) for row in con.execute(f"describe {relation}").fetchall()]
    final = export_dir / f"{mart}.parquet"
    aside = export_dir / f".{mart}.parquet.{os.getpid()}.tmp"
    escaped = str(aside).replace("'", "''")
    try:
        con.execute(
            f"copy ({bi_select(columns, relation)}) to '{escaped}' "
            "(format parquet, compression zstd)"
        )
        rows = con.execute(f"select count(*) from {relation}").fetchone()[0]
        os.replace(aside, final)
    finally:
        aside.unlink(missing_ok=True)  # only left behind when the copy failed
    return final, rows


def write_query_file(export_dir: Path, parquet_files: list[Path]) -> Path:
    """(Re)build ``query.duckdb``: one view per parquet file; written aside, then renamed."""
    final = export_dir / QUERY_FILE
    aside = export_dir / f".{QUERY_FILE}.{os.getpid()}.tmp"
    aside.unlink(missing_ok=True)
    with duckdb.connect(str(aside)) as con:
        for path in sorted(parquet_files):
            location = str(path.resolve()).replace("'", "''")
            con.execute(
                f"create view {quote_ident(path.stem)} as select * from read_parquet('{location}')"
            )
        con.execute("checkpoint")
    os.replace(aside, final)
    return final


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, as another user
    return False


def remove_stale_asides(export_dir: Path) -> list[Path]:
    """Delete the files exports that died (SIGKILL, power loss) left aside; return them."""
    stale = [
        path
        for path in export_dir.glob(".*.tmp*")
        if (match := _ASIDE.fullmatch(path.name)) and _process_is_gone(int(match["pid"]))
    ]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _marts_source(warehouse: Path, engine: str) -> duckdb.DuckDBPyConnection:
    """Where ``engine``'s dbt target built the marts: the DuckDB file, or Spark's parquet tables
    (``pipeline/spark_marts.py``) in the Spark directory beside it."""
    if engine == "spark":
        return connect_spark_marts(spark_dir(warehouse) / "warehouse")
    return duckdb.connect(str(warehouse), read_only=True)


def export_marts(warehouse: Path, export_dir: Path, engine: str = "duckdb") -> ExportResult:
    """Export every mart ``engine`` built for ``warehouse`` to ``export_dir``; see the module
    docstring."""
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    for path in remove_stale_asides(export_dir):
        log.warning("removed %s, left by an export that did not finish", path.name)
    written: list[Path] = []
    rows: dict[str, int] = {}
    with (
        warehouse_lock(warehouse, on_wait=log.warning),
        _marts_source(warehouse, engine) as con,
    ):
        con.execute("set TimeZone = 'UTC'")  # naive warehouse timestamps are UTC
        for mart in list_marts(con):
            path, count = _write_parquet(con, mart, export_dir)
            written.append(path)
            rows[mart] = count
    query_file = write_query_file(export_dir, written)
    log.info("exported %d mart(s) to %s", len(written), export_dir)
    return ExportResult(tuple(written), rows, query_file)
