"""A sensor on the landing directory: newly sealed segments trigger a pipeline run.

Each tick lists the sealed segments (never the open ones) and requests ONE run for all segments
sealed since the previous tick, so a burst after downtime queues one run, not hundreds. The run key
is derived from those segment names, so a retried tick cannot start the same run twice; the
cursor remembers the newest change time seen. A segment the sensor missed is still loaded by the
next run or the hourly schedule: the loader always loads every sealed, unloaded segment.
"""

import hashlib

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,  # the type define_asset_job returns; not exported by dagster
)

from pipeline.defs.resources import EdumePaths
from pipeline.loader.landing_watch import Cursor, new_segments

SENSOR_INTERVAL_S = 30


def run_key(segments: list[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(segments)).encode()).hexdigest()[:16]
    return f"segments-{len(segments)}-{digest}"


def build_landing_sensor(job: UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Runs the pipeline when the receiver seals new landing segments.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, paths: EdumePaths) -> dg.SensorResult:
        landing_dir = paths.landing_path
        if not landing_dir.is_dir():
            return dg.SensorResult(skip_reason=f"landing dir {landing_dir} does not exist yet")
        segments, cursor = new_segments(landing_dir, Cursor.parse(context.cursor))
        if not segments:
            return dg.SensorResult(skip_reason="no newly sealed segment")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=run_key(segments),
                    tags={"edume/segments": str(len(segments)), "edume/first": segments[0]},
                )
            ],
            cursor=cursor.dump(),
        )

    return landing_sensor
