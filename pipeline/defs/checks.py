"""Asset checks on the raw table: freshness, rejected lines, and events of unknown type.

All three are warnings (``WARN`` severity): they make a problem visible in Dagster without
stopping the marts from being built from the good rows.
"""

from typing import Any

import dagster as dg
import duckdb

from pipeline.defs.assets import RAW_EVENTS
from pipeline.defs.resources import EdumePaths
from pipeline.loader.handoff import spark_dir
from pipeline.spark_marts import connect_spark_tables
from pipeline.warehouse_lock import warehouse_lock

FRESH_WITHIN_HOURS = 24
MAX_REJECTED_RATIO = 0.01
UNKNOWN_EVENTS_MODEL = "stg_edume__unknown_events"


def _query(paths: EdumePaths, sql: str) -> list[tuple[Any, ...]]:
    with (
        warehouse_lock(paths.warehouse_path),
        duckdb.connect(paths.warehouse, read_only=True) as con,
    ):
        return con.execute(sql).fetchall()


@dg.asset_check(
    asset=RAW_EVENTS, description=f"A delivery arrived in the last {FRESH_WITHIN_HOURS} h."
)
def raw_events_are_fresh(paths: EdumePaths) -> dg.AssetCheckResult:
    ((newest, age_hours),) = _query(
        paths,
        "select max(received_at), "
        "date_diff('second', max(received_at), now()::timestamp) / 3600.0 from raw.edume_events",
    )
    return dg.AssetCheckResult(
        passed=newest is not None and age_hours <= FRESH_WITHIN_HOURS,
        severity=dg.AssetCheckSeverity.WARN,
        description="no delivery loaded yet" if newest is None else None,
        metadata={
            "newest_received_at": str(newest),
            "age_hours": float(age_hours) if age_hours is not None else -1.0,
        },
    )


@dg.asset_check(
    asset=RAW_EVENTS,
    description=f"At most {MAX_REJECTED_RATIO:.0%} of landed lines were rejected "
    "(they are in raw.edume_rejected_lines).",
)
def rejected_lines_are_rare(paths: EdumePaths) -> dg.AssetCheckResult:
    ((loaded, rejected),) = _query(
        paths,
        "select coalesce(sum(rows_loaded), 0), coalesce(sum(rows_rejected), 0) "
        "from raw.edume_loaded_segments",
    )
    by_error = _query(
        paths,
        "select error, count(*) from raw.edume_rejected_lines "
        "group by error order by 2 desc limit 10",
    )
    total = loaded + rejected
    ratio = rejected / total if total else 0.0
    return dg.AssetCheckResult(
        passed=ratio <= MAX_REJECTED_RATIO,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rows_loaded": int(loaded),
            "rows_rejected": int(rejected),
            "rejected_ratio": float(ratio),
            **{f"error: {error}": int(count) for error, count in by_error},
        },
    )


def build_unknown_event_types_check(model_key: dg.AssetKey) -> dg.AssetChecksDefinition:
    """A check on the dbt model that collects events of an absent or unknown eduMe type."""

    @dg.asset_check(
        asset=model_key,
        name="no_unknown_event_types",
        description="Counts deliveries whose eduMe type is missing or not in the catalogue.",
    )
    def no_unknown_event_types(paths: EdumePaths) -> dg.AssetCheckResult:
        sql = (
            "select coalesce(event_type, '<missing>'), count(*) "
            f"from staging.{UNKNOWN_EVENTS_MODEL} group by 1 order by 2 desc"
        )
        if paths.engine == "spark":  # the model is a table of Spark's warehouse, not DuckDB's
            spark_tables = spark_dir(paths.warehouse_path) / "warehouse"
            with connect_spark_tables(spark_tables, ("staging",)) as con:
                counts = con.execute(sql).fetchall()
        else:
            counts = _query(paths, sql)
        return dg.AssetCheckResult(
            passed=not counts,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "unknown_events": sum(int(count) for _, count in counts),
                **{f"type: {event_type}": int(count) for event_type, count in counts[:20]},
            },
        )

    return no_unknown_event_types
