"""Jobs are selections over the asset graph; every one that writes the warehouse is tagged."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,  # the type define_asset_job returns; not exported by dagster
)

from pipeline.defs.resources import WRITER_TAG

PIPELINE_JOB = "edume_pipeline"


def build_pipeline_job() -> UnresolvedAssetJobDefinition:
    """Every asset: load -> dbt build -> export. Queued one at a time by the writer tag."""
    return dg.define_asset_job(
        PIPELINE_JOB,
        selection=dg.AssetSelection.all(),
        tags=WRITER_TAG,
        description="Load new landing segments, build every dbt model, export the marts.",
    )
