"""dbt inside this process: dagster-dbt's ``DbtCliResource`` with ``cli`` run by dbt's own
programmatic runner (``dbtRunner``) instead of a ``dbt`` subprocess. The live worker uses it.

Per batch, a ``dbt build`` subprocess pays a Python start and dbt's imports, dagster-dbt's adapter
set-up in the calling process, and dbt's (partial) parse: 5-7 s of a 15 s dbt step at 100k events
(``bench/microbatch.py --dbt both``). Here the project is parsed once, on the first build, and
that ``Manifest`` is handed to every later build (dbt's documented way to reuse it:
docs.getdbt.com, "Programmatic invocations"). The worker must be restarted after the dbt project
changes, as after any code change (``up``'s documented rule). The live worker parses at its
start (:func:`parse`, through ``prepare_dbt_project``), so its first batch does not, and no
``dbt parse`` subprocess runs beside it.

What a run reports does not change: each event is the dict dbt would have printed as a JSON log
line (``msg_to_dict``), wrapped as dagster-dbt's ``DbtCoreCliEventMessage``, so
``to_default_asset_events`` turns it into the same materializations and check results; selection
(the as_of refresh job's subset) comes from dagster-dbt's own helper. dbt runs in a thread of its
own and hands over only the events dagster-dbt reads (results, ``log()`` lines), so the step
stores them while dbt builds.

The warehouse: dbt-duckdb keeps its database open for the whole build (``keep_open``: reopening
it per node costs ~0.5 s a node) and, in a long-lived process, after it, holding the file lock.
:func:`release_duckdb` closes it when each invocation ends, so the export, ``materialize`` by
hand and analysts open the file between batches. Only DuckDB: dbt-spark's session would keep a
JVM in the worker, so the Spark engine keeps the subprocess.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject
from dagster_dbt.asset_utils import (
    extract_runtime_selection_from_args,
    get_updated_cli_invocation_params_for_context,
)
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
from dagster_dbt.errors import DagsterDbtCliRuntimeError

# The events dagster-dbt turns into Dagster events (DbtCoreCliEventMessage.is_result_event), and
# the lines of dbt's log() (JinjaLogInfo: the table metadata, macros/table_metadata.sql).
FORWARDED_EVENTS = frozenset(
    {"LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult", "JinjaLogInfo"}
)
_DONE = object()
# dbt's Manifest per (project dir, target path): parsed once per process (:func:`parse`).
_MANIFESTS: dict[tuple[str, str], Any] = {}


def location_args(project_dir: Path, profiles_dir: Path, target_path: Path) -> list[str]:
    """dbt's arguments naming the project, its profiles and its target (and log) dir."""
    return [
        *("--project-dir", str(project_dir)),
        *("--profiles-dir", str(profiles_dir)),
        *("--target-path", str(target_path), "--log-path", str(target_path)),
    ]


def parse(project_dir: Path, profiles_dir: Path, target_path: Path) -> Any:
    """dbt's ``Manifest`` of the project, parsed in this process on first use (``dbt parse``,
    which also writes ``manifest.json`` for the Dagster assets), then kept."""
    key = (str(project_dir), str(target_path))
    if key not in _MANIFESTS:
        from dbt.cli.main import dbtRunner

        try:
            result = dbtRunner().invoke(
                ["parse", *location_args(project_dir, profiles_dir, target_path)]
            )
        finally:
            release_duckdb()
        if not result.success:
            raise DagsterDbtCliRuntimeError(
                description=f"dbt parse of {project_dir} failed: {result.exception}"
            )
        _MANIFESTS[key] = result.result
    return _MANIFESTS[key]


def release_duckdb() -> None:
    """Close dbt-duckdb's open database in this process, if any (it holds the file's lock).

    dbt-duckdb keeps one environment per process on its connection manager, and only replaces it
    when the credentials change; closing it is the one way to let go of the file. These are
    dbt-duckdb's internals (pinned at 1.11.1): tests/live/test_dbt_in_process.py opens the file
    from another process after a build, and fails if an upgrade leaves it held.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
        DuckDBConnectionManager.close_all_connections()


class InProcessDbtCliResource(DbtCliResource):
    """``DbtCliResource`` whose ``cli`` runs dbt in this process (see the module docstring)."""

    def cli(  # type: ignore[override]
        self,
        args: Sequence[str],
        *,
        raise_on_error: bool = True,
        manifest: Mapping[str, Any] | None = None,
        dagster_dbt_translator: DagsterDbtTranslator | None = None,
        context: dg.AssetExecutionContext | dg.OpExecutionContext | None = None,
        target_path: Path | None = None,
    ) -> InProcessDbtInvocation:
        cleaned, selects, excludes = extract_runtime_selection_from_args(args)
        params = get_updated_cli_invocation_params_for_context(
            context=context,
            manifest=manifest or {},
            dagster_dbt_translator=dagster_dbt_translator or DagsterDbtTranslator(),
            runtime_selects=selects,
            runtime_excludes=excludes,
        )
        project_dir = Path(
            params.dbt_project.project_dir if params.dbt_project else self.project_dir
        )
        target_path = target_path or project_dir / "target"
        profiles_dir = Path(self.profiles_dir or project_dir)
        indirect = ["--indirect-selection", params.indirect_selection]
        dbt_args = [
            *cleaned,
            *params.selection_args,
            *(indirect if params.indirect_selection else []),
            *location_args(project_dir, profiles_dir, target_path),
        ]
        dg.get_dagster_logger().info(f"Running dbt command in process: `dbt {' '.join(dbt_args)}`.")
        return InProcessDbtInvocation(
            args=dbt_args,
            parsed=parse(project_dir, profiles_dir, target_path),
            manifest=params.manifest,
            dagster_dbt_translator=params.dagster_dbt_translator,
            target_path=target_path,
            project=params.dbt_project,
            raise_on_error=raise_on_error,
        )


@dataclass
class InProcessDbtInvocation:
    """One in-process dbt command; what ``_asset_events`` reads of a ``DbtCliInvocation``."""

    args: list[str]
    parsed: Any  # dbt's Manifest
    manifest: Mapping[str, Any]
    dagster_dbt_translator: DagsterDbtTranslator
    target_path: Path
    project: DbtProject | None
    raise_on_error: bool
    errors: list[str] = field(default_factory=list)

    def stream_raw_events(self) -> Iterator[DbtCoreCliEventMessage]:
        """dagster-dbt's events as dbt fires them; raises when dbt fails (``raise_on_error``).

        dbt runs in its own thread; the caller's thread stores each event meanwhile. Leaving
        early (an error in the caller) still waits for dbt to finish and let go of the file.
        """
        from dbt.cli.main import dbtRunner
        from dbt_common.events.functions import msg_to_dict

        events: queue.Queue[Any] = queue.Queue()
        outcome: list[Any] = []

        def forward(msg: Any) -> None:
            if msg.info.level == "error":
                self.errors.append(msg.info.msg)
            if msg.info.name in FORWARDED_EVENTS:
                events.put(msg_to_dict(msg))

        def build() -> None:
            try:
                outcome.append(
                    dbtRunner(manifest=self.parsed, callbacks=[forward]).invoke(self.args)
                )
            finally:
                release_duckdb()
                events.put(_DONE)

        thread = threading.Thread(target=build, name="dbt", daemon=True)
        thread.start()
        try:
            while (raw := events.get()) is not _DONE:
                yield DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={})
        finally:
            thread.join()
        result = outcome[0] if outcome else None
        if self.raise_on_error and (result is None or not result.success):
            raise DagsterDbtCliRuntimeError(description=self._failure(result))

    def _failure(self, result: Any) -> str:
        reason = getattr(result, "exception", None) or "one or more nodes failed"
        errors = "\n\n".join(["", "Errors from dbt:", *self.errors]) if self.errors else ""
        log = self.target_path / "dbt.log"
        return f"dbt (in process) `{' '.join(self.args)}` failed: {reason}; see {log}.{errors}"
