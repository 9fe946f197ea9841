"""The seam between the DuckDB raw table and another dbt engine: the raw hand-off.

With ``EDUME_ENGINE=duckdb`` dbt reads ``raw.edume_events`` where the loader wrote it, so there is
nothing to hand off. With ``EDUME_ENGINE=spark`` the raw asset calls :func:`hand_off` after each
load, which mirrors ``raw.edume_events`` to parquet partitioned by receive date,
``<handoff>/received_date=YYYY-MM-DD/data.parquet``; the dbt on-run-start hook
(``dbt_project/macros/spark/raw_source.sql``) exposes those files to Spark as the same source.
The loader stays the one writer (same manifest, same rejects) and the asset graph is the same for
both engines.

Contract of the files:
- one file per receive date (UTC date of ``received_at``), replaced atomically (written aside,
  renamed), so a reader sees a partition's old rows or its new rows, never a mix;
- the raw table's columns in order, timestamps as UTC instants (parquet ``isAdjustedToUTC``),
  ``body`` as text; the partition column ``received_date`` lives in the directory name;
- incremental: only dates that received rows since the last export are rewritten. The watermark
  (newest ``loaded_at`` exported, and the row count up to it) is kept in ``_edume_handoff.json``
  (Spark ignores files starting with ``_``). When the warehouse no longer matches the watermark
  (rebuilt, rows deleted), the whole hand-off is rewritten.

No Dagster import. The export holds the warehouse lock (:mod:`pipeline.warehouse_lock`), like
every reader and writer of the DuckDB file.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from pipeline.warehouse_lock import warehouse_lock

RAW_TABLE = "raw.edume_events"
PARTITION_PREFIX = "received_date="
DATA_FILE = "data.parquet"
STATE_FILE = "_edume_handoff.json"

# The contract's columns as Spark reads them: timestamps become instants, JSON becomes text.
_EXPORT_COLUMNS = """
    delivery_id,
    cast(received_at as timestamptz) as received_at,
    auth_mode,
    signature_form,
    secret_index,
    token_index,
    event_type,
    cast(event_timestamp as timestamptz) as event_timestamp,
    cast(body as varchar) as body,
    segment,
    line_number,
    cast(loaded_at as timestamptz) as loaded_at
"""


@dataclass(frozen=True)
class HandoffResult:
    """What one export did: where, which date partitions it rewrote, how many rows they hold."""

    destination: Path
    partitions_written: tuple[str, ...]
    rows_written: int
    full: bool


@dataclass(frozen=True)
class _Watermark:
    loaded_at: datetime
    row_count: int


def spark_dir(warehouse: Path, env: Mapping[str, str] | None = None) -> Path:
    """The Spark directory (metastore, Spark warehouse, hand-off) for a DuckDB ``warehouse``.

    ``EDUME_SPARK_DIR`` when set, else ``spark/`` beside the warehouse file: the same rule as the
    ``spark`` target in ``dbt_project/profiles.yml``.
    """
    env = os.environ if env is None else env
    configured = env.get("EDUME_SPARK_DIR", "").strip()
    return Path(configured) if configured else Path(warehouse).parent / "spark"


def handoff_dir(spark_directory: Path) -> Path:
    """Where raw.edume_events is exported under a Spark directory (the profile's handoff dir)."""
    return spark_directory / "handoff" / "edume_events"


def hand_off(
    engine: str, warehouse: Path, env: Mapping[str, str] | None = None
) -> HandoffResult | None:
    """Make ``raw.edume_events`` of ``warehouse`` readable by ``engine``'s dbt target.

    Nothing to do on DuckDB (returns None); on Spark, the parquet export (returns its result).
    Raises ``ValueError`` for an unknown engine (settings validate EDUME_ENGINE before this).
    """
    if engine == "duckdb":
        return None
    if engine == "spark":
        return export_handoff(warehouse, handoff_dir(spark_dir(warehouse, env)))
    raise ValueError(f"no raw hand-off for engine {engine!r}; expected duckdb or spark")


def export_handoff(warehouse: Path, destination: Path, *, full: bool = False) -> HandoffResult:
    """Mirror ``raw.edume_events`` of the DuckDB file ``warehouse`` into ``destination``.

    Rewrites the receive dates that got rows since the previous export (every date when ``full``
    or when the watermark no longer matches). Raises ``FileNotFoundError`` when the warehouse
    does not exist and ``duckdb.Error`` when it has no raw table (run the loader first).
    """
    warehouse = Path(warehouse)
    if not warehouse.exists():
        raise FileNotFoundError(
            f"warehouse {warehouse} does not exist: load the landing before the hand-off"
        )
    destination.mkdir(parents=True, exist_ok=True)
    with warehouse_lock(warehouse):
        return _export(warehouse, destination, full)


def _export(warehouse: Path, destination: Path, full: bool) -> HandoffResult:
    connection = duckdb.connect(str(warehouse), read_only=True)
    try:
        connection.execute("set TimeZone = 'UTC'")
        connection.execute("begin transaction")  # one snapshot for dates, files and watermark
        previous = _read_watermark(destination)
        full = full or not _watermark_matches(connection, previous)
        dates = _dates_to_write(connection, None if full else previous)
        rows = sum(_write_partition(connection, destination, day) for day in dates)
        if full:
            _remove_partitions_except(destination, {day.isoformat() for day in dates})
        current = _current_watermark(connection)
        connection.execute("commit")
    finally:
        connection.close()
    if current is not None:
        _write_watermark(destination, current)
    return HandoffResult(
        destination=destination,
        partitions_written=tuple(day.isoformat() for day in dates),
        rows_written=rows,
        full=full,
    )


def _dates_to_write(connection: duckdb.DuckDBPyConnection, since: _Watermark | None) -> list[date]:
    where = "" if since is None else "where loaded_at > $loaded_at"
    parameters = {} if since is None else {"loaded_at": since.loaded_at}
    rows = connection.execute(
        f"select distinct cast(received_at as date) as day from {RAW_TABLE} {where} order by day",
        parameters,
    ).fetchall()
    return [row[0] for row in rows]


def _write_partition(connection: duckdb.DuckDBPyConnection, destination: Path, day: date) -> int:
    """Write one receive date's rows aside, then rename them over the partition's file."""
    partition = destination / f"{PARTITION_PREFIX}{day.isoformat()}"
    partition.mkdir(exist_ok=True)
    aside = partition / f".{DATA_FILE}.writing"  # hidden from Spark until renamed
    # `day` is a date value read from the table itself, so the literal cannot carry SQL.
    query = (
        f"select {_EXPORT_COLUMNS} from {RAW_TABLE}"
        f" where received_at >= date '{day.isoformat()}'"
        f" and received_at < date '{day.isoformat()}' + interval 1 day"
    )
    escaped = str(aside).replace("'", "''")
    connection.execute(f"copy ({query}) to '{escaped}' (format parquet, compression zstd)")
    (count,) = connection.execute(f"select count(*) from read_parquet('{escaped}')").fetchone()
    os.replace(aside, partition / DATA_FILE)
    return int(count)


def _remove_partitions_except(destination: Path, keep: set[str]) -> None:
    for partition in destination.glob(f"{PARTITION_PREFIX}*"):
        if partition.is_dir() and partition.name.removeprefix(PARTITION_PREFIX) not in keep:
            shutil.rmtree(partition)


def _current_watermark(connection: duckdb.DuckDBPyConnection) -> _Watermark | None:
    loaded_at, row_count = connection.execute(
        f"select max(loaded_at), count(*) from {RAW_TABLE}"
    ).fetchone()
    return None if loaded_at is None else _Watermark(loaded_at, int(row_count))


def _watermark_matches(connection: duckdb.DuckDBPyConnection, watermark: _Watermark | None) -> bool:
    """True when exactly the rows the previous export saw are still there."""
    if watermark is None:
        return False
    (count,) = connection.execute(
        f"select count(*) from {RAW_TABLE} where loaded_at <= $loaded_at",
        {"loaded_at": watermark.loaded_at},
    ).fetchone()
    return int(count) == watermark.row_count


def _read_watermark(destination: Path) -> _Watermark | None:
    try:
        state = json.loads((destination / STATE_FILE).read_text())
        return _Watermark(datetime.fromisoformat(state["loaded_at"]), int(state["row_count"]))
    except (FileNotFoundError, KeyError, ValueError, TypeError):
        return None  # no state, or unreadable: the next export is a full one


def _write_watermark(destination: Path, watermark: _Watermark) -> None:
    aside = destination / f".{STATE_FILE}.writing"
    state = {"loaded_at": watermark.loaded_at.isoformat(), "row_count": watermark.row_count}
    aside.write_text(json.dumps(state))
    os.replace(aside, destination / STATE_FILE)
