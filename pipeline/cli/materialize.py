"""``edume-pipeline materialize``: load -> dbt build -> export once, in-process.

An operator's command: it writes the warehouse (waiting for the warehouse lock if a run holds it).
It parses the dbt project first (so new models are picked up), then executes the pipeline job
with the ``DAGSTER_HOME`` instance when one is configured (the run then shows in the UI), else an
ephemeral one.

What it prints: a progress view (the step running, dbt models and seeds done of the total, the
elapsed time), then one line per asset, failed step and failed check. Dagster's full log (every
event at DEBUG, dbt's output, the loader's and export's lines) goes to ``--log-file`` (default
``materialize.log`` beside the warehouse), or to the console with ``--verbose``. Exit code 0 only
when every step succeeded.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # dagster is imported by run() only: `--help` stays fast
    from dagster import DagsterInstance, ExecuteInProcessResult

EXIT_FAILED = 1
EXIT_USAGE = 2
RUN_LOGGER = "edume.materialize.run"
# The loader's and export's Python loggers, captured into the run's event log (the same setting
# as dagster_home/dagster.yaml, for the ephemeral instance used without DAGSTER_HOME).
PYTHON_LOGS = {"managed_python_loggers": ["pipeline"], "python_log_level": "INFO"}
# One line of the progress view as printed when the output is not a terminal (the demo reads it).
PROGRESS_LINE = re.compile(
    r"^ {2}progress: +(?P<elapsed>[\d.]+)s +step (?P<step>\S+)"
    r"(?: +dbt (?P<done>\d+)/(?P<total>\d+))?$"
)
_DBT_PROGRESS = re.compile(r"dbt progress (?P<done>\d+)/(?P<total>\d+)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild the incremental dbt models from all of raw.edume_events (dbt --full-refresh)",
    )
    parser.add_argument(
        "--select",
        metavar="DBT_SELECTION",
        help="build only these dbt models, in dbt's selection syntax (e.g. '+fct_learner_funnel': "
        "one mart and its parents); the load still runs, and the export when a mart is selected",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print Dagster's full log (every event, dbt's output) instead of the progress view",
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        default=None,
        help="where the full log goes (default: materialize.log beside the warehouse)",
    )
    add_dbt_project_options(parser)


def add_dbt_project_options(parser: argparse.ArgumentParser) -> None:
    """``--dbt-project-dir`` and ``--dbt-target-path`` (``materialize`` and ``live``)."""
    parser.add_argument(
        "--dbt-project-dir",
        type=Path,
        default=None,
        help="the dbt project to build (default: dbt_project/ of this checkout)",
    )
    parser.add_argument(
        "--dbt-target-path",
        type=Path,
        default=None,
        help="dbt's target dir: its manifest and partial-parse state (default: dbt_project/target)",
    )


def run(args: argparse.Namespace) -> int:
    import dagster as dg
    from dagster_dbt import build_dbt_asset_selection

    from pipeline.definitions import build_definitions
    from pipeline.defs.assets import DBT_OP, EXPORTS, RAW_EVENTS
    from pipeline.defs.jobs import PIPELINE_JOB
    from pipeline.defs.resources import edume_dbt_project, prepare_dbt_project
    from pipeline.settings import load_settings

    settings = load_settings()
    log_file = args.log_file or settings.warehouse.resolve().parent / "materialize.log"
    print(
        f"materialize: landing {settings.landing_dir.resolve()} -> warehouse "
        f"{settings.warehouse.resolve()} -> exports {settings.export_dir.resolve()} "
        f"(engine {settings.engine}); full log: {log_file}",
        flush=True,
    )
    started = time.monotonic()
    with _run_logging(log_file, verbose=args.verbose, started=started) as progress:
        progress.show("parse the dbt project")
        project = edume_dbt_project(args.dbt_project_dir, args.dbt_target_path)
        prepare_dbt_project(project, settings)
        progress.show("load the definitions")
        run_logger = dg.LoggerDefinition(
            lambda _: logging.getLogger(RUN_LOGGER),
            description="materialize: the log file, and the console or the progress view",
        )
        defs = build_definitions(project, settings)
        # The run's console logger is this one (the run config below turns it on).
        job = defs.resolve_job_def(PIPELINE_JOB).with_logger_defs({"console": run_logger})
        selection = None
        if args.select:
            dbt_models = next(
                a
                for a in defs.assets or []
                if isinstance(a, dg.AssetsDefinition) and a.op.name == DBT_OP
            )
            chosen = build_dbt_asset_selection([dbt_models], dbt_select=args.select)
            keys = chosen.resolve(defs.resolve_asset_graph())  # dbt assets only
            if not keys:
                print(
                    f"materialize: --select {args.select!r} matches no dbt model", file=sys.stderr
                )
                return EXIT_USAGE
            graph = defs.resolve_asset_graph()
            # The export follows the marts it reads: selected only when a selected model feeds it
            # (otherwise nothing orders it after the load and the build).
            export = {EXPORTS} if keys & graph.get(EXPORTS).parent_keys else set()
            selection = sorted(keys | {RAW_EVENTS} | export)
            # Only the data tests whose every parent is built: a test that also reads a model left
            # out (a relationship to another mart) would fail on a missing or stale relation.
            os.environ["DBT_INDIRECT_SELECTION"] = "cautious"
        run_config = {
            "ops": {DBT_OP: {"config": {"full_refresh": args.full_refresh}}},
            "loggers": {"console": {}},
        }
        with _instance(dg) as instance:
            result = job.execute_in_process(
                run_config=run_config,
                instance=instance,
                asset_selection=selection,
                raise_on_error=False,
            )
        progress.show("done")
    _print_summary(result)
    if result.success:
        print("materialize: OK", flush=True)
        return 0
    print(f"materialize: FAILED (see above; full log: {log_file})", file=sys.stderr, flush=True)
    return EXIT_FAILED


class _Progress(logging.Handler):
    """The progress view: the running step, dbt nodes done of total, elapsed seconds.

    Fed by the run's log records, where Dagster's STEP_START events name the step, and by the dbt
    step's ``dbt progress N/TOTAL`` lines (logger :data:`pipeline.defs.assets.DBT_PROGRESS_LOGGER`),
    which count models.
    On a terminal it redraws one line; otherwise it prints a line per change
    (:data:`PROGRESS_LINE`).
    """

    def __init__(
        self, out: TextIO, started: float, dbt_logger: str, *, quiet: bool = False
    ) -> None:
        super().__init__(logging.DEBUG)
        self.dbt_logger = dbt_logger
        self.out = out
        self.quiet = quiet  # with --verbose the full log is the view
        self.started = started
        self.tty = out.isatty()
        self.step = "start"
        self.dbt: tuple[int, int] | None = None
        self.last = ""

    def show(self, step: str) -> None:
        self.step = step.replace(" ", "_")
        self._draw()

    def emit(self, record: logging.LogRecord) -> None:
        meta: dict[str, Any] = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is not None and event.event_type_value == "STEP_START":
            self.step = meta.get("step_key") or self.step
            self._draw()
        elif match := self._dbt_progress(record):
            self.dbt = (int(match["done"]), int(match["total"]))
            self._draw()

    def _dbt_progress(self, record: logging.LogRecord) -> re.Match[str] | None:
        if record.name != self.dbt_logger:
            return None
        return _DBT_PROGRESS.search(record.getMessage())

    def _draw(self) -> None:
        if self.quiet:
            return
        dbt = f"  dbt {self.dbt[0]}/{self.dbt[1]}" if self.dbt else ""
        text = f"  progress: {time.monotonic() - self.started:6.1f}s  step {self.step}{dbt}"
        if self.tty:
            self.out.write("\r" + text.ljust(len(self.last)))
        elif text.split("s  ", 1)[1] != self.last.split("s  ", 1)[-1]:
            self.out.write(text + "\n")
        self.out.flush()
        self.last = text

    def finish(self) -> None:
        if self.tty and self.last and not self.quiet:
            self.out.write("\n")
            self.out.flush()


@contextmanager
def _run_logging(log_file: Path, *, verbose: bool, started: float) -> Iterator[_Progress]:
    """Route the run's log (logger :data:`RUN_LOGGER`) to ``log_file``, and to the console
    (``verbose``) or the progress view; yields the view (its ``show`` names set-up stages)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(RUN_LOGGER)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    # Emptied here, then appended to: loading the instance's python_logs config runs
    # logging.config.dictConfig, which closes every existing handler, and a closed FileHandler
    # reopens only in append mode.
    log_file.write_text("", encoding="utf-8")
    to_file = logging.FileHandler(log_file, mode="a", encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s"))
    from pipeline.defs.assets import DBT_PROGRESS_LOGGER  # Dagster: not for --help

    progress = _Progress(sys.stdout, started, DBT_PROGRESS_LOGGER, quiet=verbose)
    console: logging.Handler = logging.StreamHandler(sys.stderr) if verbose else progress
    console.setFormatter(to_file.formatter)
    dbt_progress = logging.getLogger(DBT_PROGRESS_LOGGER)
    dbt_progress.setLevel(logging.INFO)
    for source in (logger, dbt_progress):
        source.addHandler(to_file)
        source.addHandler(console)
    try:
        yield progress
    finally:
        for source in (logger, dbt_progress):
            source.removeHandler(console)
            source.removeHandler(to_file)
        to_file.close()
        progress.finish()


def _instance(dg: Any) -> DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral(
        tempdir=tempfile.gettempdir(), settings={"python_logs": PYTHON_LOGS}
    )


def _print_summary(result: ExecuteInProcessResult) -> None:
    """One line per materialized asset, failed step and asset check, in the order they happened."""
    for event in result.all_events:
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            meta = {
                k: v.value
                for k, v in mat.metadata.items()
                if k.startswith(("rows", "segments", "dagster/row_count", "files", "bytes"))
            }
            extra = f" {meta}" if meta else ""
            print(f"  materialized {mat.asset_key.to_user_string()}{extra}", flush=True)
        elif event.is_step_failure:
            error = event.step_failure_data.error
            message = error.message.strip() if error else "unknown error"
            print(f"  FAILED step {event.step_key}: {message}", file=sys.stderr, flush=True)
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                print(
                    f"  check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} "
                    f"did not pass ({evaluation.severity.value})",
                    flush=True,
                )
