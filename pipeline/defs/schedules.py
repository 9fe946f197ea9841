"""Two hourly schedules, neither of which ever starts a run with nothing new to do.

- ``hourly_pipeline``: the safety net for segments the sensor did not trigger on. It requests the
  full job only when sealed segments exist that no run has loaded (sealed after the newest
  pipeline run started).
- ``hourly_as_of_refresh``: when there is no such segment, the time-dependent marts (dbt tag
  ``as_of``: days inactive, stalled, overdue) still age; once an hour it rebuilds only them and
  the export.

Both skip while the live worker runs (it refreshes on its own) or a run is queued or starting.
"""

from collections.abc import Callable

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


Decision = Callable[[dg.ScheduleEvaluationContext, EdumePaths], dg.RunRequest | dg.SkipReason]


def _hourly(name: str, job_name: str, description: str, decide: Decision) -> dg.ScheduleDefinition:
    """An hourly schedule that skips while another writer is busy, else asks ``decide``."""

    @dg.schedule(
        name=name,
        job_name=job_name,
        cron_schedule=HOURLY,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def hourly(
        context: dg.ScheduleEvaluationContext, paths: EdumePaths
    ) -> dg.RunRequest | dg.SkipReason:
        busy = _busy(context, paths)
        return dg.SkipReason(busy) if busy else decide(context, paths)

    return hourly


def _load_what_waits(
    context: dg.ScheduleEvaluationContext, paths: EdumePaths
) -> dg.RunRequest | dg.SkipReason:
    unloaded = _unloaded(context, paths)
    if not unloaded:
        return dg.SkipReason("no sealed segment waits unloaded")
    return dg.RunRequest(tags={"edume/segments": str(len(unloaded))})


def _refresh_when_idle(
    context: dg.ScheduleEvaluationContext, paths: EdumePaths
) -> dg.RunRequest | dg.SkipReason:
    if last_run_start_ns(context.instance, PIPELINE_JOB) is None:
        return dg.SkipReason("nothing loaded yet: no mart to refresh")
    if _unloaded(context, paths):
        return dg.SkipReason("hourly_pipeline runs this hour and refreshes everything")
    return dg.RunRequest()


def build_hourly_schedules() -> list[dg.ScheduleDefinition]:
    return [
        _hourly(
            "hourly_pipeline",
            PIPELINE_JOB,
            "Every hour, if sealed segments wait unloaded: load, build, export.",
            _load_what_waits,
        ),
        _hourly(
            "hourly_as_of_refresh",
            AS_OF_REFRESH_JOB,
            "Every hour without new data: rebuild the as_of marts and the export.",
            _refresh_when_idle,
        ),
    ]
