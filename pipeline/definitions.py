"""The ONE Definitions object of the project, built lazily (``@dg.definitions``).

``dagster dev -w workspace.yaml`` loads ``defs``; it prepares the dbt manifest in development
(``prepare_if_dev``); ``edume-pipeline materialize`` prepares it itself and then calls
:func:`build_definitions`. Nothing happens at import time.
"""

from __future__ import annotations

import contextlib

import dagster as dg
from dagster_dbt import DbtProject, get_asset_key_for_model

from pipeline.defs.assets import build_dbt_assets, build_export_asset, mart_keys, raw_edume_events
from pipeline.defs.checks import (
    UNKNOWN_EVENTS_MODEL,
    build_unknown_event_types_check,
    raw_events_are_fresh,
    rejected_lines_are_rare,
)
from pipeline.defs.contract_checks import build_contract_checks
from pipeline.defs.jobs import build_pipeline_job
from pipeline.defs.resources import build_resources, edume_dbt_project, ensure_dbt_on_path
from pipeline.defs.schedules import build_hourly_schedule
from pipeline.defs.sensors import build_landing_sensor
from pipeline.settings import Settings


def build_definitions(
    project: DbtProject | None = None, settings: Settings | None = None
) -> dg.Definitions:
    """Assemble assets, checks, the job, sensor, schedule and resources over ``project``."""
    project = project or edume_dbt_project()
    ensure_dbt_on_path()
    project.prepare_if_dev()
    dbt_models = build_dbt_assets(project)
    checks = [raw_events_are_fresh, rejected_lines_are_rare]
    checks += build_contract_checks(project.manifest_path)
    with contextlib.suppress(KeyError):  # no such staging model (yet): nothing to count
        unknown_events = get_asset_key_for_model([dbt_models], UNKNOWN_EVENTS_MODEL)
        checks.append(build_unknown_event_types_check(unknown_events))
    job = build_pipeline_job()
    return dg.Definitions(
        assets=[raw_edume_events, dbt_models, build_export_asset(mart_keys(dbt_models, project))],
        asset_checks=checks,
        jobs=[job],
        sensors=[build_landing_sensor(job)],
        schedules=[build_hourly_schedule(job)],
        resources=build_resources(project, settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
