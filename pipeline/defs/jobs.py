"""Jobs are selections over the asset graph, executed in the run's own process.

The in-process executor: one Python process per run instead of one per step (each step
subprocess spent ~20 s importing Dagster and the definitions before doing 0.2 s of work).
"""

from typing import Any

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from pipeline.defs.assets import AS_OF_TAG, EXPORTS

PIPELINE_JOB = "edume_pipeline"
AS_OF_REFRESH_JOB = "edume_as_of_refresh"
# What define_asset_job returns: an asset job resolved when the Definitions load. Dagster exports
# no name for its type (it lives in dagster._core, which this project does not import).
AssetJob = Any


def build_pipeline_job() -> AssetJob:
    """Every asset: load -> dbt build -> export."""
    return dg.define_asset_job(
        PIPELINE_JOB,
        selection=dg.AssetSelection.all(),
        executor_def=dg.in_process_executor,
        description="Load new landing segments, build every dbt model, export the marts.",
    )


def build_as_of_refresh_job(dbt_models: dg.AssetsDefinition) -> AssetJob:
    """Only the dbt models tagged ``as_of`` (days inactive, stalled, overdue) and the export: what
    the passing of time changes when no data arrives."""
    return dg.define_asset_job(
        AS_OF_REFRESH_JOB,
        selection=build_dbt_asset_selection([dbt_models], dbt_select=f"tag:{AS_OF_TAG}")
        | dg.AssetSelection.assets(EXPORTS),
        executor_def=dg.in_process_executor,
        description="Rebuild the time-dependent marts (dbt tag as_of) and the export; no load.",
    )
