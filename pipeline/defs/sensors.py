"""A sensor on the landing directory: newly sealed segments trigger a pipeline run.

Each tick asks :func:`pipeline.loader.landing_watch.new_segments` for the segments sealed since
its cursor (never the open ones) and requests ONE run for all of them, so a burst after downtime
queues one run, not hundreds. The run key is derived from those segment names, so a retried tick
cannot start the same run twice. A tick is skipped, its cursor kept, while the live worker runs or
a run of the job is queued or starting (:mod:`pipeline.defs.run_gate`); segments sealed before the
newest run started are left to that run. A segment the sensor missed is still loaded by the next
run or the hourly schedule: the loader always loads every sealed, unloaded segment.
"""

import hashlib

import dagster as dg

from pipeline.defs.jobs import AS_OF_REFRESH_JOB, PIPELINE_JOB
from pipeline.defs.resources import EdumePaths
from pipeline.defs.run_gate import (
    last_run_start_ns,
    live_worker_skip,
    segments_sealed_since,
    waiting_run_skip,
)
from pipeline.loader.landing_watch import Cursor, new_segments
from pipeline.settings import Settings


def run_key(segments: list[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(segments)).encode()).hexdigest()[:16]
    return f"segments-{len(segments)}-{digest}"


def build_landing_sensor(interval_s: float = Settings.sensor_interval_s) -> dg.SensorDefinition:
    """The sensor, ticking every ``interval_s`` (``EDUME_SENSOR_INTERVAL_S``; whole seconds)."""

    @dg.sensor(
        job_name=PIPELINE_JOB,
        minimum_interval_seconds=max(1, round(interval_s)),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Runs the pipeline when the receiver seals new landing segments.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, paths: EdumePaths) -> dg.SensorResult:
        landing_dir = paths.landing_path
        if not landing_dir.is_dir():
            return dg.SensorResult(skip_reason=f"landing dir {landing_dir} does not exist yet")
        busy = live_worker_skip(paths.warehouse_path) or waiting_run_skip(
            context.instance, [PIPELINE_JOB, AS_OF_REFRESH_JOB]
        )
        if busy:
            return dg.SensorResult(skip_reason=busy)
        segments, cursor = new_segments(landing_dir, Cursor.parse(context.cursor))
        if not segments:
            return dg.SensorResult(skip_reason="no newly sealed segment")
        since = last_run_start_ns(context.instance, PIPELINE_JOB)
        if since is not None:
            uncovered = set(segments_sealed_since(landing_dir, since))
            segments = [name for name in segments if name in uncovered]
        if not segments:
            return dg.SensorResult(
                skip_reason="the newest run started after these segments were sealed",
                cursor=cursor.dump(),
            )
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
