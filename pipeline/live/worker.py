"""The live worker: a warm process that runs one Dagster micro-batch per newly sealed landing.

Why a worker: a run launched by the daemon spends ~25 s before ``RUN_START`` and ~20 s per step
subprocess importing Dagster (issue #11). This process imports Dagster, prepares the dbt project
and builds the Definitions ONCE, then runs each micro-batch as a real, in-process Dagster run of
the pipeline job (``execute_in_process`` against ``DAGSTER_HOME``'s instance, else an ephemeral
one), so a batch reports what any run reports: materializations with metadata, check results and
logs, visible in the UI.

The loop (:meth:`LiveWorker.run_forever`):

- every ``poll_s`` (default 0.1 s) it asks :func:`pipeline.loader.landing_watch.new_segments` which
  segments were sealed since the last look (one ``stat`` per partition; only changed partitions
  are listed). Finding none, it asks the receiver to seal what it holds at once
  (:func:`pipeline.loader.landing_watch.request_seal`): a delivery that finds the worker waiting
  is loaded without waiting for the receiver's idle seal, and one that arrives during a batch is
  sealed when the batch ends. A busy worker asks nothing: under load a segment holds a batch's
  worth of lines;
- when there are some, ONE batch runs, and it loads everything sealed before its load starts.
  Segments sealed meanwhile wait on disk; the next look finds them. So at most one batch is ever
  pending, and a batch never waits behind another;
- after a successful batch, the next leaves in place the views (except those tagged ``as_of``) and
  seeds it built (:func:`pipeline.defs.assets.reusable_nodes`): only a new dbt manifest, that is
  a restart, changes them, and a view reads each batch's data as it is. Their tests still run,
  and the run reports them materialized and not rebuilt. After a failed batch the next rebuilds
  everything;
- a batch whose segments the manifest (``raw.edume_loaded_segments``) already lists is skipped
  without a run: no run starts with nothing new. The check and the run hold the warehouse lock
  together, so ``materialize`` by hand waits instead of slipping in between;
- ``as_of`` (when the time-dependent columns, days inactive, stalled and overdue, are measured)
  is the moment of the worker's latest as_of refresh, passed to dbt as var ``live_as_of``; a
  pinned var ``as_of`` still wins. Between refreshes every batch measures them at the same moment,
  so a batch changes only the rows its data changed, and the export rewrites only those
  (:mod:`pipeline.export_bucketed`). When as_of is ``refresh_s`` (default 1 h) old, the next batch
  moves it to now, or, when nothing arrives, a refresh rebuilds only the dbt models tagged
  ``as_of`` (everything if no model has the tag) and the export. So those columns never lag by
  more than ``refresh_s`` (plus a batch);
- the worker remembers (``<warehouse>.live-built``) the manifest state its marts were last built
  from; at start, and after a failed run (after a back-off: 30 s doubling, at most
  ``refresh_s``), a "catch-up" run rebuilds if the manifest moved on since: a batch that failed
  or was killed after its load must not leave the marts behind until the next delivery;
- retention (:func:`apply_retention`) runs at start and hourly.

Stopping: the first SIGTERM/SIGINT lets the current batch finish, then the worker exits; a second
one abandons it. Abandoning (or SIGKILL) is safe: the loader commits each batch of segments with
its manifest rows in one transaction, and dbt and the export are idempotent, so the next batch
redoes whatever was lost.

Where a batch's time goes (``BatchReport``; measured on a 2-core machine shared with other busy
work, so only the proportions mean much): the load and the export take about a second each for a
micro-batch; the rest is dbt and Dagster. Per run, Dagster stores one "planned" event per asset
and per asset check before the first step (90 for 46 assets and 44 dbt tests as checks: most of
the "start-up"), then one materialization or evaluation each. dbt runs inside this process
(``LiveOptions.dbt_in_process``, DuckDB only: :mod:`pipeline.defs.dbt_in_process`): the project
is parsed once, and no ``dbt`` process start, import, adapter set-up or partial parse is paid per
batch; its database is closed after each build, so the file is free between batches.

The whole lifetime holds the presence lock (:mod:`pipeline.live.presence`): Dagster's landing
sensor and hourly schedule skip while it is held.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import NoReturn

import dagster as dg
import duckdb
from dagster_dbt import DbtProject

from pipeline.definitions import build_definitions
from pipeline.defs.assets import DBT_OP
from pipeline.defs.jobs import AS_OF_REFRESH_JOB, PIPELINE_JOB
from pipeline.defs.resources import edume_dbt_project, prepare_dbt_project
from pipeline.live.presence import hold_live_presence
from pipeline.loader.landing_watch import Cursor, new_segments, request_seal
from pipeline.receiver.landing_format import PARTITION_PREFIX
from pipeline.settings import Settings
from pipeline.warehouse_lock import warehouse_lock

ManifestState = tuple[int, str | None]  # segments in the manifest, newest loaded_at
EMPTY_MANIFEST: ManifestState = (0, None)
MODE_TAG = "edume/mode"
KIND_TAG = "edume/live"
RETENTION_EVERY_S = 3600.0
FIRST_RETRY_S = 30.0
EXIT_ABANDONED = 130
_STEP_ENDS = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
# What _fill_timings reads back: a few dozen of the run's 300-odd stored events.
_TIMING_EVENTS = {
    dg.DagsterEventType.STEP_START,
    *_STEP_ENDS,
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
}


@dataclass(frozen=True)
class LiveOptions:
    """The worker's knobs; :meth:`from_settings` reads them from the ``EDUME_LIVE_*`` variables."""

    poll_s: float = Settings.live_poll_s
    refresh_s: float = Settings.live_refresh_s
    run_retention_days: float = Settings.run_retention_days  # 0 keeps every run
    segment_retention_days: float = Settings.segment_retention_days  # 0 keeps every segment
    stats_path: Path | None = None  # one JSON line per run, for benches and tests
    # dbt inside the worker's process (DuckDB; pipeline.defs.dbt_in_process), else a subprocess
    # per batch as in any Dagster run: the benches measure one against the other.
    dbt_in_process: bool = True
    # After a successful batch, leave the views and seeds it built in place (reusable_nodes);
    # else rebuild them at every batch: bench/microbatch.py --reuse both measures the two.
    reuse_views: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, stats_path: Path | None = None) -> LiveOptions:
        return cls(
            poll_s=settings.live_poll_s,
            refresh_s=settings.live_refresh_s,
            run_retention_days=settings.run_retention_days,
            segment_retention_days=settings.segment_retention_days,
            stats_path=stats_path,
        )


@dataclass
class BatchReport:
    """What one run of the worker did and where its wall time went (seconds)."""

    kind: str  # "segments", "catch_up" (loaded but not built) or "as_of_refresh"
    run_id: str
    success: bool
    segments_seen: int
    started_at: float  # unix time the worker decided to run
    wall_s: float  # from that decision to the run's end
    check_s: float = 0.0  # the manifest look that decides whether anything is new
    startup_s: float = 0.0  # from the decision to the first step's start (Dagster's overhead)
    load_s: float = 0.0
    dbt_s: float = 0.0
    export_s: float = 0.0
    checks_s: float = 0.0  # the asset checks outside dbt's build
    other_s: float = 0.0  # the rest: between steps, after the last one, storing events
    segments_loaded: int = 0
    rows_loaded: int = 0
    steps: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"live: {self.kind} run {self.run_id[:8]} {'ok' if self.success else 'FAILED'}: "
            f"{self.segments_loaded} segment(s), {self.rows_loaded} row(s) in {self.wall_s:.1f} s "
            f"(manifest check {self.check_s:.2f}, start-up {self.startup_s:.2f}, load "
            f"{self.load_s:.2f}, dbt {self.dbt_s:.2f}, export {self.export_s:.2f}, checks "
            f"{self.checks_s:.2f}, other {self.other_s:.2f})"
        )


class LiveWorker:
    """One warm Definitions object, and the batches run over it. Single-threaded by design."""

    def __init__(
        self,
        settings: Settings,
        defs: dg.Definitions,
        instance: dg.DagsterInstance,
        options: LiveOptions,
        log: Callable[[str], None] = print,
    ) -> None:
        self.settings = settings
        self.landing = settings.landing_dir.resolve()
        self.warehouse = settings.warehouse.resolve()
        self.job = defs.resolve_job_def(PIPELINE_JOB)
        self.refresh_job = defs.resolve_job_def(AS_OF_REFRESH_JOB)
        self.instance = instance
        self.options = options
        self.log = log
        self.cursor = Cursor()
        self.stop = threading.Event()
        self.as_of: str | None = None  # dbt var live_as_of: None until the first run
        self.as_of_moved = time.monotonic()
        # Every node built from this process's manifest by its latest pipeline run: the next
        # one leaves the views that cannot have changed in place (assets.reusable_nodes).
        self.views_built = False

    # -- one batch -------------------------------------------------------------------------

    def _look(self, segments: Sequence[str]) -> tuple[list[str], ManifestState]:
        """Those of ``segments`` the manifest does not list, and the manifest's state.

        The caller holds the warehouse lock, so no other writer has the file open.
        """
        names = sorted(set(segments))
        if not self.warehouse.exists():
            return names, EMPTY_MANIFEST
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            present = con.execute(
                "select count(*) from information_schema.tables "
                "where table_schema = 'raw' and table_name = 'edume_loaded_segments'"
            ).fetchone()
            if not present or not present[0]:
                return names, EMPTY_MANIFEST
            count, newest = con.execute(
                "select count(*), max(loaded_at)::varchar from raw.edume_loaded_segments"
            ).fetchone()
            loaded = {
                row[0]
                for row in con.execute(
                    "select segment from raw.edume_loaded_segments "
                    "where segment in (select unnest($names::varchar[]))",
                    {"names": names},
                ).fetchall()
            }
        return [name for name in names if name not in loaded], (int(count), newest)

    def built_path(self) -> Path:
        """``<warehouse>.live-built``: the manifest state the marts were last built from."""
        return self.warehouse.with_name(self.warehouse.name + ".live-built")

    def _built(self) -> ManifestState:
        try:
            count, newest = json.loads(self.built_path().read_text())
        except (FileNotFoundError, ValueError):
            return EMPTY_MANIFEST
        return int(count), newest

    def _save_built(self, state: ManifestState) -> None:
        path = self.built_path()
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(list(state)))
        os.replace(temporary, path)

    def run_batch(self, segments: Sequence[str]) -> BatchReport | None:
        """Run the pipeline job once if there is something new; else return None.

        New means: one of ``segments`` is not loaded yet, or the manifest changed since the marts
        were last built by this worker (a batch failed or was killed after its load: the marts
        still have to catch up). The job's loader loads EVERY sealed, unloaded segment, not only
        ``segments``: a batch covers everything sealed before its load starts.
        """
        decided = time.time()
        with warehouse_lock(self.warehouse, on_wait=self.log):
            fresh, manifest = self._look(segments)
            checked = time.time()
            if not fresh and manifest == self._built():
                return None
            kind = "segments" if fresh else "catch_up"
            tags = {MODE_TAG: "live", KIND_TAG: kind, "edume/segments": str(len(fresh))}
            if fresh:
                tags["edume/first"] = fresh[0]
            report = self._execute(self.job, kind, tags, decided, len(fresh), refresh=False)
            if report.success:
                self._save_built(self._look([])[1])
        report.check_s = checked - decided
        return report

    def refresh(self) -> BatchReport:
        """Rebuild the time-dependent models (dbt tag ``as_of``) and the export; no load."""
        decided = time.time()
        tags = {MODE_TAG: "live", KIND_TAG: "as_of_refresh"}
        with warehouse_lock(self.warehouse, on_wait=self.log):
            return self._execute(self.refresh_job, "as_of_refresh", tags, decided, 0, refresh=True)

    def as_of_is_due(self) -> bool:
        """True when as_of is ``refresh_s`` old (or was never set and the worker is that old)."""
        return time.monotonic() - self.as_of_moved >= self.options.refresh_s

    def _next_as_of(self, refresh: bool) -> str:
        """The as_of of the next run: kept, or now for a refresh or when it is due."""
        if refresh or self.as_of is None or self.as_of_is_due():
            return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return self.as_of

    def _execute(
        self,
        job: dg.JobDefinition,
        kind: str,
        tags: dict[str, str],
        decided: float,
        seen: int,
        *,
        refresh: bool,
    ) -> BatchReport:
        as_of = self._next_as_of(refresh)
        reuse = self.options.reuse_views and self.views_built and job is self.job
        result = job.execute_in_process(
            run_config={"ops": {DBT_OP: {"config": {"live_as_of": as_of, "reuse_views": reuse}}}},
            instance=self.instance,
            tags=tags,
            raise_on_error=False,
        )
        if result.success and as_of != self.as_of:  # a failed move is tried again
            self.as_of, self.as_of_moved = as_of, time.monotonic()
        if job is self.job:  # after a failure everything is rebuilt: a view may have gone
            self.views_built = result.success
        report = BatchReport(kind, result.run_id, result.success, seen, decided, 0.0)
        _fill_timings(report, self.instance, result.run_id, decided)
        for event in result.all_events:
            if event.is_step_materialization:
                metadata = event.step_materialization_data.materialization.metadata
                for name in ("segments_loaded", "rows_loaded"):
                    if name in metadata:
                        setattr(report, name, int(metadata[name].value))
        self._record(report)
        return report

    def _record(self, report: BatchReport) -> None:
        self.log(report.line())
        if self.options.stats_path is not None:
            with open(self.options.stats_path, "a") as stats:
                stats.write(json.dumps(asdict(report)) + "\n")

    # -- the loop --------------------------------------------------------------------------

    def poll(self) -> list[str]:
        """Names of segments sealed since the previous poll (all sealed ones the first time)."""
        found, self.cursor = new_segments(self.landing, self.cursor)
        return found

    def run_forever(self) -> None:
        """Poll, batch, refresh and prune until :attr:`stop` is set (see the module docstring)."""
        next_retention = 0.0
        retry_at: float | None = 0.0  # at start: catch up if the last batch did not finish
        backoff = FIRST_RETRY_S
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_retention:
                apply_retention(self.instance, self.landing, self.warehouse, self.options, self.log)
                next_retention = now + RETENTION_EVERY_S
            found = self.poll()
            report: BatchReport | None = None
            if found:
                report = self._off_main_thread(functools.partial(self.run_batch, found))
            elif retry_at is not None and now >= retry_at:
                retry_at = None
                report = self._off_main_thread(functools.partial(self.run_batch, []))
            elif retry_at is None and self.as_of_is_due():
                report = self._off_main_thread(self.refresh)
            if report is not None:
                if report.success:
                    retry_at, backoff = None, FIRST_RETRY_S
                else:
                    retry_at = time.monotonic() + backoff
                    backoff = min(backoff * 2, self.options.refresh_s)
                continue  # look again at once: segments sealed during the batch are waiting
            request_seal(self.landing)  # nothing to do: have what the receiver holds sealed now
            self.stop.wait(self.options.poll_s)

    def _off_main_thread(self, batch: Callable[[], BatchReport | None]) -> BatchReport | None:
        """Run ``batch`` in a thread and wait for it.

        Dagster replaces the SIGINT/SIGTERM handlers of the MAIN thread while a run executes
        there, turning a signal into an interrupted run; off the main thread it leaves them alone,
        so our handler decides: the first signal lets the batch finish, a second abandons it.
        """
        outcome: list[BatchReport | None] = []
        errors: list[BaseException] = []

        def target() -> None:
            try:
                outcome.append(batch())
            except BaseException as exc:  # re-raised below, in the main thread
                errors.append(exc)

        thread = threading.Thread(target=target, name="live-batch", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(0.2)  # signal handlers run in between
        if errors:
            raise errors[0]
        return outcome[0]

    @contextmanager
    def signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT: stop after the current batch; a second one raises KeyboardInterrupt
        in the main thread, which abandons the batch."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            if self.stop.is_set():
                raise KeyboardInterrupt
            self.stop.set()
            self.log(f"live: {signal.Signals(signum).name}: stopping after the current batch")

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def abandon(log: Callable[[str], None]) -> NoReturn:
    """End the process now, mid-batch (the second SIGTERM/SIGINT): exit 130.

    Not by returning: the batch's threads cannot be stopped (dbt in this process, Dagster's step),
    and the interpreter's shutdown under a thread inside DuckDB aborts the process (SIGABRT,
    "terminate called ... FATAL: exception not rethrown"). So: log, flush, SIGKILL the children
    (a ``dbt`` subprocess, Dagster's log-capture ``tail``), then ``os._exit``, which is as safe as
    SIGKILL (see the module docstring: the next start redoes the batch).
    """
    log("live: batch abandoned; the next start redoes it")
    sys.stdout.flush()
    sys.stderr.flush()
    kill_descendants()
    os._exit(EXIT_ABANDONED)


def kill_descendants() -> None:
    """SIGKILL every process below this one (an abandoned batch's ``dbt`` subprocess, Dagster's
    log-capture processes)."""
    me = str(os.getpid())
    children: dict[str, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = text[text.rindex(")") + 2 :].split()[1]
        children.setdefault(ppid, []).append(stat.parent.name)
    stack = list(children.get(me, []))
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def _fill_timings(
    report: BatchReport, instance: dg.DagsterInstance, run_id: str, t0: float
) -> None:
    """Step durations from the run's event log; start-up is the decision to the first step."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    run_end = t0
    for record in instance.get_records_for_run(run_id, of_type=_TIMING_EVENTS).records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None:
            continue
        run_end = max(run_end, entry.timestamp)
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type in _STEP_ENDS:
            ends[event.step_key] = entry.timestamp
    report.wall_s = max(run_end, time.time()) - t0
    report.steps = {key: ends.get(key, run_end) - start for key, start in starts.items()}
    report.startup_s = (min(starts.values()) if starts else run_end) - t0
    for key, seconds in report.steps.items():
        if "dbt" in key:
            report.dbt_s += seconds
        elif key.startswith("exports"):
            report.export_s += seconds
        elif key.startswith("raw") and "check" not in key and key.count("__") <= 1:
            report.load_s += seconds
        else:
            report.checks_s += seconds
    report.other_s = max(0.0, report.wall_s - report.startup_s - sum(report.steps.values()))


# -- retention ---------------------------------------------------------------------------------


def apply_retention(
    instance: dg.DagsterInstance,
    landing: Path,
    warehouse: Path,
    options: LiveOptions,
    log: Callable[[str], None] = print,
) -> tuple[int, int]:
    """Delete the worker's old runs and old loaded segments; return how many of each.

    - Runs tagged ``edume/mode=live`` created more than ``run_retention_days`` ago are deleted
      with ``instance.delete_run`` (their event logs go with them). Other runs are kept.
    - A landing segment is removed only when the manifest lists it as loaded more than
      ``segment_retention_days`` ago; then its partition directory too, once empty. Unloaded
      segments, ``_rejects/``, and every row of the warehouse (raw events, the manifest itself,
      rejected lines) are kept.
    """
    runs = segments = 0
    now = datetime.now(UTC)
    if options.run_retention_days > 0:
        cutoff = now - timedelta(days=options.run_retention_days)
        while True:
            records = instance.get_run_records(
                filters=dg.RunsFilter(tags={MODE_TAG: "live"}, created_before=cutoff), limit=500
            )
            finished = [r for r in records if r.dagster_run.is_finished]
            for record in finished:
                instance.delete_run(record.dagster_run.run_id)
            runs += len(finished)
            if len(finished) < 500:
                break
    if options.segment_retention_days > 0 and warehouse.exists():
        cutoff_naive = (now - timedelta(days=options.segment_retention_days)).replace(tzinfo=None)
        segments = _prune_segments(landing, warehouse, cutoff_naive)
    if runs or segments:
        log(f"live: retention removed {runs} run(s) and {segments} loaded landing segment(s)")
    return runs, segments


def _prune_segments(landing: Path, warehouse: Path, cutoff: datetime) -> int:
    with warehouse_lock(warehouse), duckdb.connect(str(warehouse), read_only=True) as con:
        try:
            names = [
                row[0]
                for row in con.execute(
                    "select segment from raw.edume_loaded_segments where loaded_at < $cutoff",
                    {"cutoff": cutoff},
                ).fetchall()
            ]
        except duckdb.CatalogException:  # nothing loaded yet
            return 0
    removed = 0
    partitions: set[Path] = set()
    for name in names:
        path = landing / name
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed += 1
        partitions.add(path.parent)
    oldest_kept_day = cutoff.date().isoformat()
    for partition in partitions:
        # Only a day older than the cutoff: the receiver never writes into it again, so removing
        # the empty directory cannot race a new segment being opened there.
        day = partition.name.removeprefix(PARTITION_PREFIX)
        if day < oldest_kept_day and not any(partition.iterdir()):
            partition.rmdir()
    return removed


# -- building one ------------------------------------------------------------------------------


def open_instance() -> dg.DagsterInstance:
    """``DAGSTER_HOME``'s instance (runs show in the UI), else an ephemeral one."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def build_worker(
    settings: Settings,
    instance: dg.DagsterInstance,
    options: LiveOptions,
    project: DbtProject | None = None,
    log: Callable[[str], None] = print,
) -> LiveWorker:
    """Prepare the dbt project (``dbt parse``) and build the Definitions, once."""
    project = project or edume_dbt_project()
    prepare_dbt_project(project, settings, in_process=options.dbt_in_process)
    defs = build_definitions(project, settings, dbt_in_process=options.dbt_in_process)
    return LiveWorker(settings, defs, instance, options, log)


def serve(
    settings: Settings,
    options: LiveOptions,
    project: DbtProject | None = None,
    log: Callable[[str], None] = print,
) -> int:
    """Run the worker until SIGTERM/SIGINT; the exit code (0: stopped cleanly)."""
    with hold_live_presence(settings.warehouse):
        started = time.monotonic()
        with open_instance() as instance:
            worker = build_worker(settings, instance, options, project, log)
            log(
                f"live: watching {worker.landing} every {options.poll_s:g} s -> {worker.warehouse}"
                f" (warm in {time.monotonic() - started:.1f} s; as_of refresh every "
                f"{options.refresh_s:g} s)"
            )
            sys.stdout.flush()
            with worker.signals():
                try:
                    worker.run_forever()
                except KeyboardInterrupt:
                    abandon(log)
    log("live: stopped")
    return 0
