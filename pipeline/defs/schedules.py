"""The hourly schedule: a safety net that loads whatever the sensor did not trigger on."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,  # the type define_asset_job returns; not exported by dagster
)


def build_hourly_schedule(job: UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="hourly_pipeline",
        job=job,
        cron_schedule="7 * * * *",  # off the hour, away from everyone else's top-of-hour jobs
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every hour: load sealed segments, build the dbt models, export the marts.",
    )
