"""The asset graph: landing -> ``raw.edume_events`` -> dbt models -> BI exports.

The raw asset's key equals the dbt source's key (``raw.edume_events``), so dagster-dbt wires the
staging models downstream of it without a custom translator. Every asset that writes the warehouse
does so inside the warehouse lock (see :mod:`pipeline.warehouse_lock`).
"""

# No `from __future__ import annotations`: Dagster reads these type hints at definition time.
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets, get_asset_key_for_model

from pipeline.contracts.check import check_new_deliveries
from pipeline.defs.resources import EdumePaths
from pipeline.export import export_marts
from pipeline.loader.handoff import hand_off
from pipeline.loader.ndjson import ChangedSegmentError, load_landing
from pipeline.warehouse_lock import warehouse_lock

RAW_EVENTS = dg.AssetKey(["raw", "edume_events"])
EXPORTS = dg.AssetKey(["exports", "marts"])
# Models, seeds and data tests; dbt's unit tests check SQL logic on fixed inputs, not the data,
# so they run in the test suite (tests/dbt) as dbt recommends, not in every production build.
DBT_BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]


@dg.asset(
    key=RAW_EVENTS,
    group_name="raw",
    kinds={"duckdb"},
    description="One row per landed delivery line, loaded exactly once per sealed segment.",
)
def raw_edume_events(context: dg.AssetExecutionContext, paths: EdumePaths) -> dg.MaterializeResult:
    """Load every new sealed segment; fail (after loading the rest) if a loaded one changed."""
    try:
        result = load_landing(paths.landing_path, paths.warehouse_path)
    except ChangedSegmentError as exc:
        context.log.error(str(exc))
        raise dg.Failure(
            description=str(exc),
            metadata={"changed_segments": ", ".join(exc.changed), **_load_metadata(exc.result)},
        ) from exc
    # The new rows' payloads against their contracts (the payload contract checks read it).
    contract = check_new_deliveries(paths.warehouse_path)
    hand_off(paths.engine, paths.warehouse_path)
    context.log.info(
        f"loaded {result.rows_loaded} rows from {result.segments_loaded} new segment(s), "
        f"rejected {result.rows_rejected} line(s); "
        f"{contract.deviating_rows} deviate from their payload contract"
    )
    return dg.MaterializeResult(
        metadata={**_load_metadata(result), "contract_deviating_rows": contract.deviating_rows}
    )


def _load_metadata(result: Any) -> dict[str, int]:
    return {
        "segments_loaded": result.segments_loaded,
        "rows_loaded": result.rows_loaded,
        "rows_rejected": result.rows_rejected,
        "segments_already_loaded": result.segments_already_loaded,
    }


def build_dbt_assets(project: DbtProject) -> dg.AssetsDefinition:
    """``@dbt_assets`` over every model, seed and test of ``project`` (its manifest must exist)."""

    @dbt_assets(manifest=project.manifest_path, project=project, name="edume_dbt_models")
    def edume_dbt_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, paths: EdumePaths
    ) -> Iterator[Any]:
        # dagster-dbt hands dbt this process's environment: profiles.yml needs an absolute
        # warehouse path and the engine, whatever directory dbt runs in.
        os.environ.update(paths.dbt_env())
        with warehouse_lock(paths.warehouse_path, on_wait=context.log.warning):
            yield from dbt.cli(DBT_BUILD_ARGS, context=context).stream()

    return edume_dbt_models


def mart_keys(dbt_models: dg.AssetsDefinition, project: DbtProject) -> list[dg.AssetKey]:
    """Keys of the dbt models under ``models/marts`` (all dbt assets if there is none yet)."""
    manifest = json.loads(project.manifest_path.read_text())
    names = sorted(
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and "marts" in node["fqn"]
    )
    keys = [get_asset_key_for_model([dbt_models], name) for name in names]
    return keys or list(dbt_models.keys)


def build_export_asset(upstream: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    """The export asset, downstream of the marts (``upstream``)."""

    @dg.asset(
        key=EXPORTS,
        deps=list(upstream),
        group_name="exports",
        kinds={"parquet"},
        description="Each mart as <export_dir>/<mart>.parquet; query.duckdb: views over them.",
    )
    def exported_marts(
        context: dg.AssetExecutionContext, paths: EdumePaths
    ) -> dg.MaterializeResult:
        result = export_marts(paths.warehouse_path, paths.export_path, paths.engine)
        context.log.info(f"exported {len(result.parquet_files)} mart(s) to {paths.export_dir}")
        return dg.MaterializeResult(
            metadata={
                "export_dir": dg.MetadataValue.path(paths.export_dir),
                "query_file": dg.MetadataValue.path(str(result.query_file)),
                **{f"rows/{name}": count for name, count in sorted(result.rows.items())},
            }
        )

    return exported_marts
