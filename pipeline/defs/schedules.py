"""Two hourly schedules, neither of which ever starts a run with nothing new to do.

- ``hourly_pipeline``: the safety net for segments the sensor did not trigger on. It requests the
  full job only when sealed segments exist that no run has loaded (sealed after the newest
  pipeline run started).
- ``hourly_as_of_refresh``: when there is no such segment, the time-dependent marts (dbt tag
  ``as_of``: days inactive, stalled, overdue) still age; once an hour it rebuilds only them and
  the export.

Both skip while the live worker runs (it refreshes on its own) or a run is queued or starting.
"""

from collections.abc import Iterator

import dagster as dg

from pipeline.defs.jobs import AS_OF_REFRESH_JOB, PIPELINE_JOB
from pipeline.defs.resources import EdumePaths
from pipeline.defs.run_gate import (
    last_run_start_ns,
    live_worker_skip,
    segments_sealed_since,
    waiting_run_skip,
)

HOURLY = "7 * * * *"  # off the hour, away from everyone else's top-of-hour jobs


def _unloaded(context: dg.ScheduleEvaluationContext, paths: EdumePaths) -> list[str]:
    if not paths.landing_path.is_dir():
        return []
    since = last_run_start_ns(context.instance, PIPELINE_JOB)
    return segments_sealed_since(paths.landing_path, since)


def _busy(context: dg.ScheduleEvaluationContext, paths: EdumePaths) -> str | None:
    return live_worker_skip(paths.warehouse_path) or waiting_run_skip(
        context.instance, [PIPELINE_JOB, AS_OF_REFRESH_JOB]
    )


def build_hourly_schedules() -> list[dg.ScheduleDefinition]:
    @dg.schedule(
        name="hourly_pipeline",
        job_name=PIPELINE_JOB,
        cron_schedule=HOURLY,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every hour, if sealed segments wait unloaded: load, build, export.",
    )
    def hourly_pipeline(
        context: dg.ScheduleEvaluationContext, paths: EdumePaths
    ) -> Iterator[dg.RunRequest | dg.SkipReason]:
        busy = _busy(context, paths)
        if busy:
            yield dg.SkipReason(busy)
            return
        unloaded = _unloaded(context, paths)
        if not unloaded:
            yield dg.SkipReason("no sealed segment waits unloaded")
            return
        yield dg.RunRequest(tags={"edume/segments": str(len(unloaded))})

    @dg.schedule(
        name="hourly_as_of_refresh",
        job_name=AS_OF_REFRESH_JOB,
        cron_schedule=HOURLY,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every hour without new data: rebuild the as_of marts and the export.",
    )
    def hourly_as_of_refresh(
        context: dg.ScheduleEvaluationContext, paths: EdumePaths
    ) -> Iterator[dg.RunRequest | dg.SkipReason]:
        busy = _busy(context, paths)
        if busy:
            yield dg.SkipReason(busy)
            return
        if last_run_start_ns(context.instance, PIPELINE_JOB) is None:
            yield dg.SkipReason("nothing loaded yet: no mart to refresh")
            return
        if _unloaded(context, paths):
            yield dg.SkipReason("hourly_pipeline runs this hour and refreshes everything")
            return
        yield dg.RunRequest()

    return [hourly_pipeline, hourly_as_of_refresh]
