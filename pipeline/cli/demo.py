"""``edume-pipeline demo``: the whole pipeline, end to end, on the embedded default company.

Steps, each named when it fails (exit 1, with the cause and where the log is):

1. a fresh workspace (``demo/`` at the repo root by default): landing, warehouse, exports,
   Dagster home; only a directory this command created before is ever deleted;
2. a real receiver (``edume-pipeline serve``) on a free loopback port;
3. simulated, signed eduMe traffic POSTed to it (with duplicates, disorder and forgeries);
4. every delivery acknowledged (204, or 401 for the forgeries), the receiver's ``/metrics`` saved;
5. the receiver stopped cleanly (SIGTERM: flush, seal, exit 0);
6. ``edume-pipeline materialize`` (load, dbt build, export) against the workspace;
7. a summary; 8. the HTML report; 9. where everything is and what to run next.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.settings import REPO_ROOT

if TYPE_CHECKING:  # the heavy modules are imported by run() only: `--help` stays fast
    from pipeline.reporting.facts import Facts
    from pipeline.reporting.metrics import ReceiverMetrics
    from pipeline.simulator.generate import Truth
    from pipeline.simulator.post import PostReport

MARKER = ".edume-demo-workspace"
DEFAULT_WORKSPACE = REPO_ROOT / "demo"


class StepFailed(RuntimeError):
    """Raised inside a step; the message says why and where to look."""


class DemoError(RuntimeError):
    """A step failed; ``step`` names it, the message is the cause."""

    def __init__(self, step: str, cause: str) -> None:
        super().__init__(cause)
        self.step = step


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "edume.duckdb"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def receiver_log(self) -> Path:
        return self.root / "logs" / "receiver.log"

    @property
    def materialize_log(self) -> Path:
        return self.root / "logs" / "materialize.log"

    @property
    def metrics(self) -> Path:
        return self.root / "receiver_metrics.prom"

    @property
    def truth(self) -> Path:
        return self.root / "truth.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def env(self) -> dict[str, str]:
        """The variables every tool reads, pointing into this workspace (absolute paths)."""
        return {
            "EDUME_LANDING_DIR": str(self.landing),
            "EDUME_WAREHOUSE": str(self.warehouse),
            "EDUME_EXPORT_DIR": str(self.exports),
            "DAGSTER_HOME": str(self.dagster_home),
        }


def configure(parser: argparse.ArgumentParser) -> None:
    from pipeline.simulator.simulation import DEFAULT_LEARNERS, DEFAULT_SEED

    parser.add_argument(
        "--workspace",
        type=Path,
        default=DEFAULT_WORKSPACE,
        help="where to put landing, warehouse, exports and report "
        "(default: demo/ in the repo; recreated on every run)",
    )
    parser.add_argument(
        "--learners",
        type=int,
        default=DEFAULT_LEARNERS,
        help=f"learners to simulate (default {DEFAULT_LEARNERS})",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"simulation seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="requests in flight to the receiver (default 8)"
    )


@contextmanager
def _step(number: int, name: str) -> Iterator[None]:
    """Print the step, time it, and turn any failure into a :class:`DemoError` naming it."""
    print(f"[{number}/9] {name}", flush=True)
    started = time.monotonic()
    try:
        yield
    except StepFailed as exc:
        raise DemoError(name, str(exc)) from exc
    except Exception as exc:  # the demo's contract: any failure names its step and cause
        raise DemoError(name, f"{type(exc).__name__}: {exc}") from exc
    print(f"      done in {time.monotonic() - started:.1f}s", flush=True)


def prepare_workspace(root: Path) -> Workspace:
    """Recreate ``root`` empty. Refuses to delete a non-empty directory the demo did not make."""
    root = root.resolve()
    if root.exists():
        if not (root / MARKER).exists() and any(root.iterdir()):
            raise StepFailed(
                f"{root} exists and was not made by the demo: "
                "choose another --workspace or empty it yourself",
            )
        shutil.rmtree(root)
    workspace = Workspace(root)
    for directory in (
        workspace.landing,
        workspace.warehouse.parent,
        workspace.exports,
        workspace.dagster_home,
        workspace.receiver_log.parent,
    ):
        directory.mkdir(parents=True, exist_ok=True)
    # Runs are stored here; the loader's and export's log lines go into each run's event log.
    (workspace.dagster_home / "dagster.yaml").write_text(
        "python_logs:\n  managed_python_loggers: [pipeline]\n  python_log_level: INFO\n"
    )
    (root / MARKER).write_text("made by `edume-pipeline demo`; deleted by its next run\n")
    return workspace


def _materialize(workspace: Workspace) -> None:
    """Run ``edume-pipeline materialize`` on the workspace, showing its progress view's dbt count
    as a bar; its full log goes to ``workspace.materialize_log``."""
    from pipeline.cli.materialize import PROGRESS_LINE
    from pipeline.simulator.progress import Progress

    command = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "materialize",
        "--dbt-target-path",
        str(workspace.root / "dbt_target"),
        "--log-file",
        str(workspace.materialize_log),
    ]
    env = {**os.environ, **workspace.env(), "PYTHONUNBUFFERED": "1"}
    print(
        "      starting Dagster and parsing the dbt project, then loading, building the dbt "
        f"models and exporting; full log: {_relative(workspace.materialize_log)}",
        flush=True,
    )
    progress: Progress | None = None
    output: list[str] = []
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        # materialize's own progress view (not a terminal: one line per change) is the source.
        match = PROGRESS_LINE.match(line.rstrip("\n"))
        if match and match["total"]:
            progress = progress or Progress("dbt models", int(match["total"]), show_rate=False)
            progress.advance(int(match["done"]) - progress.done)
    code = process.wait()
    if progress is not None:
        progress.finish()
    if code != 0:
        log = workspace.materialize_log
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        detail = "\n  ".join(failure_lines("".join(output) + text)) or "".join(output)[-2000:]
        raise StepFailed(f"exit code {code}; see {log}\n  {detail}")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FAILURE_MARKS = ("FAIL ", "Failure in", "Error in", "ERROR=", "FAILED step", "rror:")


def failure_lines(log_text: str, limit: int = 10) -> list[str]:
    """The lines of a materialize log that say what failed (dbt and Dagster), each once."""
    seen: dict[str, None] = {}
    for line in _ANSI.sub("", log_text).splitlines():
        line = line.strip()
        if any(mark in line for mark in _FAILURE_MARKS) and " - DEBUG - " not in line:
            seen.setdefault(line[:300], None)
    return list(seen)[:limit]


def truth_mismatches(truth: Truth, facts: Facts) -> list[str]:
    """Courses whose funnel in the marts differs from the simulator's ground truth."""
    from pipeline.reporting.page import FUNNEL_COLUMNS

    marts = {
        row["course_id"]: [row[column] for column in FUNNEL_COLUMNS] for row in facts.funnel.rows
    }
    mismatches = []
    for course_id, course in truth.courses.items():
        expected = [
            course.learners_added,
            course.learners_activated,
            course.learners_started,
            course.learners_finished_first_lesson,
            course.learners_completed,
        ]
        if marts.get(course_id) != expected:
            mismatches.append(f"course {course_id}: marts {marts.get(course_id)}, truth {expected}")
    return mismatches


def _print_summary(
    post_report: PostReport, receiver_metrics: ReceiverMetrics, facts: Facts, truth: Truth
) -> None:
    rejected = (
        ", ".join(
            f"{reason} {count}"
            for reason, count in sorted(receiver_metrics.rejected_by_reason.items())
            if count
        )
        or "none"
    )
    print("\nSummary")
    print(f"  deliveries sent        {sum(post_report.statuses.values()):>7,}")
    print(f"  accepted (204)         {receiver_metrics.accepted:>7,}")
    print(f"  rejected               {receiver_metrics.rejected:>7,}   ({rejected})")
    if facts.deliveries.rows and facts.summary.rows:
        deliveries, summary = facts.deliveries.rows[0], facts.summary.rows[0]
        print(f"  landed in the warehouse{deliveries['count_deliveries_landed']:>7,}")
        print(f"  duplicates removed     {deliveries['count_duplicates']:>7,}")
        kept_aside = sum(row["count_deliveries"] for row in facts.quarantined.rows)
        print(f"  unknown or invalid     {kept_aside:>7,}   (kept aside, see the report)")
        print(f"  courses                {summary['count_courses']:>7,}")
        print(f"  learners               {summary['count_learners']:>7,}")
    columns = "added  activated  started  1st lesson  completed  conversion"
    print(f"\n  {'Funnel per course':<34}{columns}")
    for row in facts.funnel.rows:
        rate = row["completion_rate"]
        title = _clip(row["course_title"] or "", 28)
        print(
            f"  {row['course_id']} {title:<28}{row['count_learners_added']:>5}"
            f"{row['count_learners_activated']:>11}{row['count_learners_started']:>9}"
            f"{row['count_learners_finished_first_lesson']:>12}"
            f"{row['count_learners_completed']:>11}"
            f"{'' if rate is None else f'{rate:.0%}':>12}"
        )
    mismatches = truth_mismatches(truth, facts)
    if mismatches:
        raise StepFailed(
            "the marts disagree with the simulator's ground truth:\n  " + "\n  ".join(mismatches)
        )
    print(
        f"\n  Every course's funnel matches the simulator's ground truth ({len(truth.courses)} "
        "courses)."
    )


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _duckdb_snippet(database: str, sql: str) -> str:
    return f"import duckdb; duckdb.connect('{database}', read_only=True).sql('{sql}').show()"


def _print_next(workspace: Workspace, seconds: float) -> None:
    # Absolute: dbt's profile needs an absolute EDUME_WAREHOUSE whatever the working directory.
    env = " ".join(f"{name}={value}" for name, value in workspace.env().items())
    python = _relative(Path(sys.executable))
    bin_dir = _relative(Path(sys.executable).parent)
    script = Path(sys.executable).parent / "edume-pipeline"
    cli = f"{bin_dir}/edume-pipeline" if script.exists() else f"{python} -m pipeline.cli"
    where = "" if Path.cwd() == REPO_ROOT else f" (from {REPO_ROOT})"
    warehouse, query = _relative(workspace.warehouse), _relative(workspace.exports / "query.duckdb")
    print(f"""
Where everything is
  report (open in a browser)  {_relative(workspace.report)}
  landing (NDJSON segments)   {_relative(workspace.landing)}
  warehouse (DuckDB)          {warehouse}
  parquet exports             {_relative(workspace.exports)}/<mart>.parquet
  query file over the parquet {query}
  receiver's /metrics         {_relative(workspace.metrics)}
  logs                        {_relative(workspace.receiver_log.parent)}/
  simulator's ground truth    {_relative(workspace.truth)}

Next
  Dagster UI (the demo's run is in its history){where}:
    {env} {bin_dir}/dagster dev -w workspace.yaml
  Query the marts (read-only; any time, even while a run holds the warehouse):
    {python} -c "{_duckdb_snippet(query, "from fct_learner_funnel")}"
  Query the warehouse itself (when no run holds it):
    {python} -c "{_duckdb_snippet(warehouse, "from marts.dim_courses")}"
  Rebuild the report:
    {env} {cli} report --metrics {_relative(workspace.metrics)}

demo finished in {seconds:.0f}s""")


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        _run(args, started)
    except DemoError as exc:
        print(f"\ndemo FAILED at step '{exc.step}': {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def _run(args: argparse.Namespace, started: float) -> None:
    from pipeline.receiver.process import ReceiverProcess
    from pipeline.reporting import metrics
    from pipeline.reporting.facts import collect
    from pipeline.reporting.write import write_report
    from pipeline.simulator.post import post_deliveries
    from pipeline.simulator.simulation import build, parse_end, write_truth

    with _step(1, "prepare a fresh workspace"):
        workspace = prepare_workspace(args.workspace)
        print(f"      {workspace.root}")
    secret = secrets.token_hex(16)  # per run: the demo's receiver and simulator share it
    with _step(2, "start a receiver on a free loopback port"):
        receiver = ReceiverProcess(
            workspace.landing, secrets=[secret], log_path=workspace.receiver_log
        )
        print(f"      {receiver.webhook_url} (pid {receiver.pid})")
    try:
        with _step(3, f"simulate {args.learners} learners (seed {args.seed}) through it"):
            simulation = build(args.learners, args.seed, secret.encode(), end=parse_end("today"))
            write_truth(simulation.truth, workspace.truth)
            post_report = post_deliveries(
                receiver.webhook_url, simulation.deliveries, args.concurrency
            )
        with _step(4, "check every delivery was acknowledged"):
            if post_report.unexpected:
                raise StepFailed(
                    f"{len(post_report.unexpected)} unexpected answers, e.g. "
                    f"{post_report.unexpected[:3]}; receiver log: "
                    f"{workspace.receiver_log}",
                )
            metrics_text = metrics.fetch_text(f"{receiver.url}/metrics")
            workspace.metrics.write_text(metrics_text, encoding="utf-8")
            receiver_metrics = metrics.parse(metrics_text, _relative(workspace.metrics))
            print(
                f"      {post_report.accepted:,} accepted, {post_report.rejected:,} rejected "
                "as expected"
            )
        with _step(5, "stop the receiver cleanly"):
            code = receiver.stop()
            if code != 0:
                raise StepFailed(f"exit code {code}; see {workspace.receiver_log}")
    finally:
        if receiver.running():
            receiver.kill()
    with _step(6, "materialize: load -> dbt build -> export"):
        _materialize(workspace)
    with _step(7, "summarise"):
        facts = collect(workspace.exports, receiver_metrics)
        _print_summary(post_report, receiver_metrics, facts, simulation.truth)
    with _step(8, "write the report"):
        write_report(workspace.exports, workspace.report, str(workspace.metrics))
    print("[9/9] where everything is")
    _print_next(workspace, time.monotonic() - started)
