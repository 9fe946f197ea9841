"""The ONE Definitions object of the project, built lazily (``@dg.definitions``).

``dg dev`` / ``dagster dev -w workspace.yaml`` and ``up``'s code server (``dagster api grpc``) load
``defs`` (code location ``edume`` either way). It prepares the dbt manifest (``dbt parse``) in
development (``prepare_if_dev``), and wherever it is missing: a fresh checkout has none, and a
code server outside ``dagster dev`` would otherwise fail to load. ``edume-pipeline materialize``
and the live worker prepare it themselves and then call :func:`build_definitions`. Nothing
happens at import time.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtProject, get_asset_key_for_model

from pipeline.defs.assets import (
    build_dbt_assets,
    build_export_asset,
    build_raw_asset,
    mart_keys,
    other_raw_tables,
    raw_freshness,
)
from pipeline.defs.checks import UNKNOWN_EVENTS_MODEL, build_checks
from pipeline.defs.contract_checks import build_contract_checks
from pipeline.defs.jobs import build_as_of_refresh_job, build_pipeline_job
from pipeline.defs.resources import (
    build_resources,
    edume_dbt_project,
    ensure_dbt_on_path,
    prepare_dbt_project,
)
from pipeline.defs.schedules import build_hourly_schedules
from pipeline.defs.sensors import build_landing_sensor
from pipeline.settings import Settings, load_settings


def build_definitions(
    project: DbtProject | None = None,
    settings: Settings | None = None,
    *,
    dbt_in_process: bool = False,
) -> dg.Definitions:
    """Assemble assets, checks, jobs, sensor, schedules and resources over ``project``
    (``dbt_in_process``: see :func:`pipeline.defs.resources.build_resources`)."""
    project = project or edume_dbt_project()
    settings = settings or load_settings()
    ensure_dbt_on_path()
    if not Path(project.manifest_path).exists():
        prepare_dbt_project(project, settings)
    else:
        project.prepare_if_dev()
    dbt_models = build_dbt_assets(project)
    unknown_events = None
    with contextlib.suppress(KeyError):  # no such staging model (yet): nothing to count
        unknown_events = get_asset_key_for_model([dbt_models], UNKNOWN_EVENTS_MODEL)
    fail_after, _ = raw_freshness(project)
    return dg.Definitions(
        assets=[
            build_raw_asset(project),
            *other_raw_tables(project),
            dbt_models,
            build_export_asset(mart_keys(dbt_models, project)),
        ],
        asset_checks=[
            *build_checks(fail_after, unknown_events),
            *build_contract_checks(project.manifest_path),
        ],
        jobs=[build_pipeline_job(), build_as_of_refresh_job(dbt_models)],
        sensors=[build_landing_sensor(settings.sensor_interval_s)],
        schedules=build_hourly_schedules(),
        resources=build_resources(project, settings, dbt_in_process=dbt_in_process),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
