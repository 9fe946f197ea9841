"""Asset checks on the raw table: freshness, rejected lines, and events of unknown type.

Each check is a plain function of :class:`~pipeline.defs.resources.EdumePaths` returning a
``dg.AssetCheckResult`` (so any runner can evaluate it: a Dagster run, the live worker, a test),
wrapped by a thin ``@dg.asset_check`` built in :func:`build_checks`.

All three are warnings (``WARN`` severity): they make a problem visible in Dagster without
stopping the marts from being built from the good rows. Staleness while NO run happens is the
raw asset's freshness policy, which Dagster's daemon evaluates
(:func:`pipeline.defs.assets.raw_freshness`); :func:`raw_events_freshness` judges the data itself
(the newest ``received_at``) at every run: a run by hand with nothing new resets the policy's
clock, not this check.
"""

from datetime import timedelta
from typing import Any

import dagster as dg
import duckdb

from pipeline.defs.assets import RAW_EVENTS
from pipeline.defs.resources import EdumePaths
from pipeline.loader.handoff import spark_dir
from pipeline.spark_marts import connect_spark_tables
from pipeline.warehouse_lock import warehouse_lock

MAX_REJECTED_RATIO = 0.01
UNKNOWN_EVENTS_MODEL = "stg_edume__unknown_events"


def _query(paths: EdumePaths, sql: str) -> list[tuple[Any, ...]]:
    with (
        warehouse_lock(paths.warehouse_path),
        duckdb.connect(paths.warehouse, read_only=True) as con,
    ):
        return con.execute(sql).fetchall()


def raw_events_freshness(paths: EdumePaths, fresh_within: timedelta) -> dg.AssetCheckResult:
    """Passes when the newest loaded delivery was received within ``fresh_within`` of now."""
    ((newest, age_hours),) = _query(
        paths,
        "select max(received_at), "
        "date_diff('second', max(received_at), now()::timestamp) / 3600.0 from raw.edume_events",
    )
    limit_hours = fresh_within.total_seconds() / 3600
    return dg.AssetCheckResult(
        check_name="raw_events_are_fresh",
        passed=newest is not None and age_hours <= limit_hours,
        severity=dg.AssetCheckSeverity.WARN,
        description="no delivery loaded yet" if newest is None else None,
        metadata={
            "newest_received_at": str(newest),
            "age_hours": float(age_hours) if age_hours is not None else -1.0,
            "limit_hours": limit_hours,
        },
    )


def rejected_lines_ratio(paths: EdumePaths) -> dg.AssetCheckResult:
    """Passes when at most :data:`MAX_REJECTED_RATIO` of all landed lines were rejected."""
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
        check_name="rejected_lines_are_rare",
        passed=ratio <= MAX_REJECTED_RATIO,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rows_loaded": int(loaded),
            "rows_rejected": int(rejected),
            "rejected_ratio": float(ratio),
            **{f"error: {error}": int(count) for error, count in by_error},
        },
    )


def unknown_event_types(paths: EdumePaths) -> dg.AssetCheckResult:
    """Passes when no delivery has a missing or unknown eduMe type; counts them per type."""
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
        check_name="no_unknown_event_types",
        passed=not counts,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "unknown_events": sum(int(count) for _, count in counts),
            **{f"type: {event_type}": int(count) for event_type, count in counts[:20]},
        },
    )


def build_checks(
    fresh_within: timedelta, unknown_events_model: dg.AssetKey | None
) -> list[dg.AssetChecksDefinition]:
    """The ``@dg.asset_check`` wrappers; the unknown-type one only when its model exists."""

    @dg.asset_check(
        asset=RAW_EVENTS,
        name="raw_events_are_fresh",
        description=f"A delivery arrived in the last {fresh_within}.",
    )
    def raw_events_are_fresh(paths: EdumePaths) -> dg.AssetCheckResult:
        return raw_events_freshness(paths, fresh_within)

    @dg.asset_check(
        asset=RAW_EVENTS,
        name="rejected_lines_are_rare",
        description=f"At most {MAX_REJECTED_RATIO:.0%} of landed lines were rejected "
        "(they are in raw.edume_rejected_lines).",
    )
    def rejected_lines_are_rare(paths: EdumePaths) -> dg.AssetCheckResult:
        return rejected_lines_ratio(paths)

    checks = [raw_events_are_fresh, rejected_lines_are_rare]
    if unknown_events_model is not None:

        @dg.asset_check(
            asset=unknown_events_model,
            name="no_unknown_event_types",
            description="Counts deliveries whose eduMe type is missing or not in the catalogue.",
        )
        def no_unknown_event_types(paths: EdumePaths) -> dg.AssetCheckResult:
            return unknown_event_types(paths)

        checks.append(no_unknown_event_types)
    return checks
