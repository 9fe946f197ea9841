"""The asset graph: landing -> ``raw.edume_events`` -> dbt models -> BI exports.

The raw asset's key equals the dbt source's key (``raw.edume_events``), so dagster-dbt wires the
staging models downstream of it. Every asset that writes the warehouse does so inside the warehouse
lock (see :mod:`pipeline.warehouse_lock`) and belongs to the pool :data:`WAREHOUSE_POOL`, which the
instance (``dagster_home/dagster.yaml``) limits to one run at a time.

Groups follow the README's diagram: ``raw`` -> ``staging`` -> ``intermediate`` -> ``marts`` (and
the ``quality`` / ``reporting`` folders, when present) -> ``exports``: a dbt model's group is its
folder under ``models/`` (:class:`EdumeDbtTranslator`).
"""

# No `from __future__ import annotations`: Dagster reads these type hints at definition time.
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DbtCliInvocation,
    DbtCliResource,
    DbtProject,
    dbt_assets,
    get_asset_key_for_model,
)

from pipeline.contracts.check import check_new_deliveries
from pipeline.defs.resources import EdumePaths
from pipeline.export import export_marts
from pipeline.loader.handoff import hand_off
from pipeline.loader.ndjson import ChangedSegmentError, load_landing
from pipeline.warehouse_lock import warehouse_lock

RAW_EVENTS = dg.AssetKey(["raw", "edume_events"])
RAW_SOURCE_ID = "source.edume.raw.edume_events"
EXPORTS = dg.AssetKey(["exports", "marts"])
WAREHOUSE_POOL = "edume_warehouse"
OWNERS = ["team:data-platform"]
# Models, seeds and data tests; dbt's unit tests check SQL logic on fixed inputs, not the data,
# so they run in the test suite (tests/dbt) as dbt recommends, not in every production build.
DBT_BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]
AS_OF_TAG = "as_of"  # the dbt tag of models whose columns depend on var('as_of')
# Materialization metadata of a view or seed a live batch left as it was (see reusable_nodes).
REBUILT_METADATA = "edume/rebuilt"
# The dbt step logs one line per model or seed built to this plain Python logger, which the
# `materialize` progress view reads. Not the run's log: each line there would be one more event
# stored in Dagster's event log (~10 ms each on SQLite), for every model, on every micro-batch.
DBT_PROGRESS_LOGGER = "edume.progress"
DBT_PROGRESS_PREFIX = "dbt progress"
DBT_OP = "edume_dbt_models"
# The line dbt logs after building each table (macros/table_metadata.sql), then its JSON.
TABLE_METADATA_PREFIX = "edume_table_metadata "
# Used when the dbt source declares no freshness of its own (dbt's `error_after` / `warn_after`).
DEFAULT_FRESH_WITHIN = timedelta(hours=24)
_DBT_PERIODS = {"minute": "minutes", "hour": "hours", "day": "days"}


def raw_freshness(project: DbtProject) -> tuple[timedelta, timedelta | None]:
    """(fail after, warn after) for ``raw.edume_events``: the dbt source's own freshness
    (``error_after`` / ``warn_after`` in ``_edume__sources.yml``), else 24 h with no warning."""
    manifest = json.loads(Path(project.manifest_path).read_text())
    freshness = (manifest.get("sources", {}).get(RAW_SOURCE_ID) or {}).get("freshness") or {}

    def window(key: str) -> timedelta | None:
        spec = freshness.get(key) or {}
        if not spec.get("count") or spec.get("period") not in _DBT_PERIODS:
            return None
        return timedelta(**{_DBT_PERIODS[spec["period"]]: spec["count"]})

    return window("error_after") or DEFAULT_FRESH_WITHIN, window("warn_after")


def build_raw_asset(project: DbtProject) -> dg.AssetsDefinition:
    """The loader as an asset; its freshness policy (evaluated by the daemon, no run needed) comes
    from the dbt source's freshness."""
    fail_after, warn_after = raw_freshness(project)
    if warn_after is not None and warn_after >= fail_after:
        warn_after = None  # Dagster requires warn < fail; the failure alone then speaks

    @dg.asset(
        key=RAW_EVENTS,
        group_name="raw",
        kinds={"duckdb"},
        owners=OWNERS,
        tags={"edume/layer": "raw"},
        pool=WAREHOUSE_POOL,
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=fail_after, warn_window=warn_after
        ),
        description="One row per landed delivery line, loaded exactly once per sealed segment.",
    )
    def raw_edume_events(
        context: dg.AssetExecutionContext, paths: EdumePaths
    ) -> dg.MaterializeResult:
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

    return raw_edume_events


def other_raw_tables(project: DbtProject) -> list[dg.AssetSpec]:
    """The loader's other raw tables that dbt reads as sources (rejected lines, contract
    deviations): declared in the ``raw`` group (the loader writes them with ``raw.edume_events``),
    so no dbt source appears in Dagster's ``default`` group."""
    manifest = json.loads(Path(project.manifest_path).read_text())
    return [
        dg.AssetSpec(
            key=dg.AssetKey([source["source_name"], source["name"]]),
            group_name="raw",
            owners=OWNERS,
            tags={"edume/layer": "raw"},
            kinds={"duckdb"},
            description=source.get("description") or None,
        )
        for unique_id, source in sorted(manifest.get("sources", {}).items())
        if unique_id != RAW_SOURCE_ID
    ]


def _load_metadata(result: Any) -> dict[str, int]:
    return {
        "segments_loaded": result.segments_loaded,
        "rows_loaded": result.rows_loaded,
        "rows_rejected": result.rows_rejected,
        "segments_already_loaded": result.segments_already_loaded,
    }


class EdumeDbtTranslator(DagsterDbtTranslator):
    """A dbt node's group is its folder under ``models/`` (seeds join the marts they feed);
    every node gets the project's owners and an ``edume/layer`` tag naming that group."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_group(dbt_resource_props)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        return OWNERS

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        tags = super().get_tags(dbt_resource_props)
        return {**tags, "edume/layer": dbt_group(dbt_resource_props)}


def dbt_group(dbt_resource_props: Mapping[str, Any]) -> str:
    """``models/<folder>/...`` -> ``<folder>``; seeds -> ``marts`` (their schema)."""
    if dbt_resource_props["resource_type"] == "seed":
        return "marts"
    fqn = dbt_resource_props["fqn"]  # [project, folder, ..., name]
    return fqn[1] if len(fqn) > 2 else "marts"


class DbtBuildConfig(dg.Config):
    """Run config of the dbt step: ``materialize --full-refresh`` sets ``full_refresh``; the live
    worker sets ``live_as_of`` (dbt var ``live_as_of``: "now" for the time-dependent marts when
    var ``as_of`` is not pinned), the moment of its latest as_of refresh, and ``reuse_views`` once
    it has built every node of this manifest (:func:`reusable_nodes`)."""

    full_refresh: bool = False
    live_as_of: str | None = None
    reuse_views: bool = False

    def dbt_args(self, reused: Sequence[str] = ()) -> list[str]:
        """``reused``: names of the nodes dbt leaves out (their tests, selected directly by the
        whole-graph selection, still run: no test is left out along with its model)."""
        return [
            *DBT_BUILD_ARGS,
            *(["--full-refresh"] if self.full_refresh else []),
            *(["--vars", json.dumps({"live_as_of": self.live_as_of})] if self.live_as_of else []),
            *(["--exclude", " ".join(reused), "--indirect-selection", "empty"] if reused else []),
        ]


def reusable_nodes(manifest: Mapping[str, Any]) -> dict[str, str]:
    """The nodes a long-lived process need not rebuild once it has built them from ``manifest``
    (unique_id -> name): views whose SQL does not depend on ``as_of`` (not tagged ``as_of``), and
    seeds. A view reads its inputs when it is queried, so it shows each batch's data as it is;
    only a new manifest (a changed project, which needs a restart of the process) changes one.
    Recreating them (13 dbt nodes) made a micro-batch at 100k events about a tenth slower:
    7.84 s against 6.98 s, medians of 12 alternating batches (``bench/microbatch.py --reuse
    both``)."""
    return {
        unique_id: node["name"]
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "seed"
        or (
            node["resource_type"] == "model"
            and node["config"].get("materialized") == "view"
            and AS_OF_TAG not in node["tags"]
        )
    }


def build_dbt_assets(project: DbtProject) -> dg.AssetsDefinition:
    """``@dbt_assets`` over every model, seed and test of ``project`` (its manifest must exist).

    Per run, the step costs one ``dbt build`` process and nothing else that grows with the runs:
    - dbt writes into the project's own target path (the one :class:`DbtProject` prepared its
      manifest in), not dagster-dbt's default fresh directory per invocation, so dbt's partial
      parsing (``partial_parse.msgpack``) carries over from run to run;
    - dagster-dbt asks ``dbt --version`` once per :class:`DbtCliResource` object (a cached
      property); the Definitions hold one resource object, so a warm process (``live``) pays it
      once, not per run;
    - each event goes to Dagster as dbt reports it, so Dagster stores the step's ~140
      materializations and check results (its slowest part, about 20 ms each on SQLite) while dbt
      is still building, on the other core, instead of after dbt has exited;
    - row counts and column schemas (tables, incremental models and seeds; views are exempt,
      counting one runs its query) come from dbt itself, which logs them as each table's last
      step (:data:`TABLE_METADATA_PREFIX`, ``macros/table_metadata.sql``): the step opens no
      DuckDB connection of its own (dbt holds the file while it builds).

    The live worker's ``dbt`` resource runs the same build inside its process instead
    (:mod:`pipeline.defs.dbt_in_process`): no process start and no parse per batch.
    """

    manifest = json.loads(Path(project.manifest_path).read_text())
    reusable = reusable_nodes(manifest)
    translator = EdumeDbtTranslator()

    @dbt_assets(
        manifest=manifest,  # parsed once, here
        project=project,
        name=DBT_OP,
        dagster_dbt_translator=translator,
        pool=WAREHOUSE_POOL,
    )
    def edume_dbt_models(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        paths: EdumePaths,
        config: DbtBuildConfig,
    ) -> Iterator[Any]:
        # dagster-dbt hands dbt this process's environment: profiles.yml needs an absolute
        # warehouse path and the engine, whatever directory dbt runs in.
        os.environ.update(paths.dbt_env())
        # Only with the whole graph selected: a subset's tests come from indirect selection.
        reused = reusable if config.reuse_views and not context.is_subset else {}
        with warehouse_lock(paths.warehouse_path, on_wait=context.log.warning):
            invocation = dbt.cli(
                config.dbt_args(sorted(reused.values())),
                context=context,
                target_path=Path(project.target_path),
            )
            events = _asset_events(invocation, context)
            if reused:
                events = _with_reused(events, reused, manifest, translator, project)
            yield from _log_progress(context, events)

    return edume_dbt_models


def _with_reused(
    events: Iterator[Any],
    reused: Mapping[str, str],
    manifest: Mapping[str, Any],
    translator: DagsterDbtTranslator,
    project: DbtProject,
) -> Iterator[Any]:
    """``events``, plus a materialization of each ``reused`` node (marked not rebuilt) as soon as
    the nodes it reads from are reported: what dbt left in place holds this batch's data too, so
    the graph must not show it behind its inputs, and Dagster wants a step's assets reported in
    dependency order."""
    built = {uid for uid, node in manifest["nodes"].items() if node["resource_type"] != "test"}
    waiting = {
        uid: set(manifest["nodes"][uid]["depends_on"].get("nodes", [])) & built for uid in reused
    }
    reported: set[str] = set()

    def ready() -> Iterator[Any]:
        while due := sorted(uid for uid, parents in waiting.items() if parents <= reported):
            for unique_id in due:
                del waiting[unique_id]
                reported.add(unique_id)
                yield dg.MaterializeResult(
                    asset_key=translator.get_asset_spec(manifest, unique_id, project).key,
                    metadata={"unique_id": unique_id, REBUILT_METADATA: False},
                )

    yield from ready()
    for event in events:
        yield event
        if isinstance(event, dg.Output | dg.AssetMaterialization):
            reported.add(_metadata_text(event, "unique_id") or "")
            yield from ready()


def _asset_events(invocation: DbtCliInvocation, context: dg.AssetExecutionContext) -> Iterator[Any]:
    """dagster-dbt's events for ``invocation``, as dbt reports them, each table's
    materialization carrying the row count and columns dbt logged for it."""
    logged: dict[str, dict[str, Any]] = {}
    for dbt_event in invocation.stream_raw_events():
        info = dbt_event.raw_event["info"]
        if info["name"] == "JinjaLogInfo" and info["msg"].startswith(TABLE_METADATA_PREFIX):
            unique_id = dbt_event.raw_event["data"]["node_info"]["unique_id"]
            logged[unique_id] = _table_metadata(
                json.loads(info["msg"][len(TABLE_METADATA_PREFIX) :])
            )
            continue
        for event in dbt_event.to_default_asset_events(
            manifest=invocation.manifest,
            dagster_dbt_translator=invocation.dagster_dbt_translator,
            context=context,
            target_path=invocation.target_path,
            project=invocation.project,
        ):
            metadata = logged.pop(_metadata_text(event, "unique_id") or "", None)
            if metadata and isinstance(event, dg.Output | dg.AssetMaterialization):
                event = event.with_metadata({**event.metadata, **metadata})
            yield event


def _metadata_text(event: Any, key: str) -> str | None:
    value = getattr(event, "metadata", {}).get(key)
    return None if value is None else str(getattr(value, "value", value))


def _table_metadata(logged: Mapping[str, Any]) -> dict[str, Any]:
    """``{"rows": N, "columns": [[name, type], ...]}`` (macros/table_metadata.sql) as Dagster's
    standard table metadata."""
    return {
        "dagster/row_count": dg.MetadataValue.int(int(logged["rows"])),
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn(name, str(column_type)) for name, column_type in logged["columns"]
            ]
        ),
    }


def _log_progress(context: dg.AssetExecutionContext, events: Iterator[Any]) -> Iterator[Any]:
    """Pass ``events`` through, logging ``dbt progress N/TOTAL: model`` to
    :data:`DBT_PROGRESS_LOGGER` as each node is built."""
    progress = logging.getLogger(DBT_PROGRESS_LOGGER)
    total = len(context.selected_asset_keys)
    done = 0
    for event in events:
        if isinstance(event, dg.Output | dg.AssetMaterialization):
            done += 1
            name = event.metadata.get("unique_id")
            label = name.value if name is not None else "?"
            progress.info("%s %d/%d: %s", DBT_PROGRESS_PREFIX, done, total, label)
        yield event


def mart_keys(dbt_models: dg.AssetsDefinition, project: DbtProject) -> list[dg.AssetKey]:
    """Keys of the dbt models under ``models/marts`` (all dbt assets if there is none yet)."""
    manifest = json.loads(Path(project.manifest_path).read_text())
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
        owners=OWNERS,
        tags={"edume/layer": "exports"},
        pool=WAREHOUSE_POOL,
        description="Each mart as parquet under the export dir; query.duckdb: views over them.",
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
                # This export's own writes: months a batch did not touch are reused, not written.
                "files_written": len(result.files_written),
                "bytes_written": result.bytes_written,
                **{f"rows/{name}": count for name, count in sorted(result.rows.items())},
            }
        )

    return exported_marts
