"""Benchmark: full `dbt build` at 1M events, then an incremental `dbt build` after 1% more, or
(``--micro``) after micro-batches of at most 100 events.

Both runs are the pipeline's own command (``pipeline.defs.assets.DBT_BUILD_ARGS``: models,
seed and data tests; dbt unit tests run in tests/dbt). Prints both wall times, their ratio
(target: incremental <= 0.2 of full; the full build is the same-run baseline), each run's peak
memory (max RSS of the dbt process) and the floor every dbt run pays before building anything
(start-up and a partial parse). Raw rows are
generated in DuckDB SQL straight into ``raw.edume_events`` (the loader's DDL): eduMe-shaped
learner and course bodies, 0.1% of an unknown type, 1% re-delivered, SHA-256 delivery ids.
Each of the two loads carries one loaded_at, as a loader batch does.

    .venv/bin/python bench/dbt_build.py [--events 1000000] [--increment 0.01] [--keep DIR]
    .venv/bin/python bench/dbt_build.py --micro [--events 100000 1000000 5000000]

``--micro`` measures what a live micro-batch costs as the warehouse grows: for each size, a
full build, then ``--batches`` micro-batches of 100 rows drawn like real traffic (80 new
events of existing learners and courses, their timestamps scattered over the old months, so
out of order, plus 20 re-deliveries of bodies already loaded), each followed by the pipeline's
incremental build. It prints the median per size and its ratio to the smallest size's (target
for the whole micro-batch, load + dbt + export: <= 1.5 at 5M events vs 100k).

dbt starts from the venv's compiled bytecode, which ``make`` installs (``uv --compile-bytecode``)
as a normal install ships it; a venv without ``.pyc`` files under PYTHONDONTWRITEBYTECODE would
recompile about 1,250 modules (1.5-2 s) at every dbt start.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO / "dbt_project"
DBT = Path(sys.executable).with_name("dbt")
LEARNERS = 50_000
COURSES = 200
AS_OF = "2024-03-01 00:00:00"

# One eduMe-shaped body per generated row, chosen by i % 10 (printf placeholders: learner, ...).
_USER = '"user":{"userId":%d,"externalUserId":"emp-%d","firstName":"Ada","lastName":"Okafor"}'
_COURSE = '"course":{"courseId":%d,"courseKey":"course-%d","title":"Course %d"}'
_GROUP = '"group":{"groupId":1297}'
_TEAMS = '"teams":[{"teamId":%d}]'


def _learner_body_sql() -> str:
    def membership(event_type: str) -> str:
        return (
            f'printf(\'{{"type":"{event_type}","payload":{{{_GROUP},{_TEAMS},{_USER},'
            f'{_COURSE},"version":1}},"timestamp":"%s"}}\', '
            "team_id, learner_id, learner_id, course_id, course_id, course_id, stamp)"
        )

    def activity(verb: str, kind: str, result: str = "") -> str:
        activity_id = "" if kind == "course" else ',"activityId":%d'
        module = "" if kind == "course" else ',"module":{"moduleId":%d}'
        args = "learner_id, learner_id, course_id, course_id, course_id"
        if kind != "course":
            args += ", course_id * 10, activity_id"
        if result:
            args += ", score"
        args += ", stamp"
        return (
            f'printf(\'{{"type":"learner.activity.{verb}","payload":{{{_GROUP},{_USER},'
            f'{_COURSE}{module},"activity":{{"type":"{kind}"{activity_id}}}{result},'
            f'"version":1}},"timestamp":"%s"}}\', {args})'
        )

    completed = (
        f'printf(\'{{"type":"learner.course.completed","payload":{{{_GROUP},{_TEAMS},'
        f'{_USER},{_COURSE},"modules":[],"activities":[],"completedAt":"%s",'
        '"version":1},"timestamp":"%s"}\', '
        "team_id, learner_id, learner_id, course_id, course_id, course_id, stamp, stamp)"
    )
    score = ',"result":{"score":%d,"passed":true}'
    cases = [
        membership("learner.added"),
        membership("learner.activated"),
        activity("started", "course"),
        activity("started", "lesson"),
        activity("finished", "lesson"),
        activity("started", "assessment"),
        activity("finished", "assessment", score),
        activity("finished", "survey"),
        activity("started", "lesson"),
        completed,
    ]
    whens = "\n".join(f"when {k} then {sql}" for k, sql in enumerate(cases))
    return f"case i % 10 {whens} end"


def _course_body_sql() -> str:
    return (
        'printf(\'{"type":"%s","payload":{"group":{"groupId":1297},'
        '"teams":[{"teamId":%d}],"course":{"courseId":%d,"courseKey":"course-%d",'
        '"title":"Course %d"},"modules":[{"moduleId":%d}],"activities":['
        '{"activityId":%d,"published":true,"type":"lesson"},'
        '{"activityId":%d,"published":true,"type":"assessment"},'
        '{"activityId":%d,"published":true,"type":"survey"}],"version":1},'
        '"timestamp":"%s"}\', event_type, team_id, course_id, course_id, course_id, '
        "course_id * 10, course_id * 10, course_id * 10 + 1, course_id * 10 + 2, stamp)"
    )


# Named, so the inserts keep working when the loader adds nullable columns to the table.
_RAW_COLUMNS = (
    "delivery_id, received_at, auth_mode, signature_form, secret_index, token_index, "
    "event_type, event_timestamp, body, segment, line_number, loaded_at"
)


def _insert_sql(body_sql: str, rows_sql: str, loaded_at: str) -> str:
    return f"""
    insert into raw.edume_events ({_RAW_COLUMNS})
    with rows as ({rows_sql}),
    bodies as (select *, {body_sql} as text from rows)
    select sha256(text), received_at, 'hmac', 'raw', 0, null,
        json_extract_string(text, '$.type'), event_timestamp, text,
        'received_date=2024-01-01/bench-' || (i // 10000) || '.ndjson', i % 10000 + 1,
        {loaded_at}
    from bodies
    """


def _learner_rows_sql(start: int, stop: int) -> str:
    return f"""
    select i,
        i % {LEARNERS} + 100000 as learner_id,
        14000 + (i // 10 + i // {LEARNERS}) % {COURSES} as course_id,
        3493 + (i % {LEARNERS}) % 5 as team_id,
        (i // 10) % 3 as activity_id,
        i % 101 as score,
        timestamp '2024-01-01' + to_seconds(i * 5) as event_timestamp,
        timestamp '2024-01-01' + to_seconds(i * 5 + 2) as received_at,
        strftime(timestamp '2024-01-01' + to_seconds(i * 5), '%Y-%m-%dT%H:%M:%S.%gZ') as stamp
    from range({start}, {stop}) as t(i)
    """


def _course_rows_sql() -> str:
    return f"""
    select c * 3 + k as i, 14000 + c as course_id, 3493 + c % 5 as team_id,
        ['course.added', 'course.updated', 'course.published'][k + 1] as event_type,
        timestamp '2023-12-01' + to_hours(c * 3 + k) as event_timestamp,
        timestamp '2023-12-01' + to_hours(c * 3 + k) + to_seconds(1) as received_at,
        strftime(timestamp '2023-12-01' + to_hours(c * 3 + k), '%Y-%m-%dT%H:%M:%S.%gZ') as stamp
    from range({COURSES}) as cs(c), range(3) as ks(k)
    """


def _micro_rows_sql(first: int, count: int, events: int) -> str:
    """``count`` learner rows numbered from ``first`` (so new bodies, of learners and courses
    the warehouse already holds when ``events`` >= LEARNERS) whose timestamps are scattered
    over the ``events`` already generated: old months, out of order."""
    stamp = f"timestamp '2024-01-01' + to_seconds(((i * 7919) % {events}) * 5 + 1)"
    return f"""
    select i,
        i % {LEARNERS} + 100000 as learner_id,
        14000 + (i // 10 + i // {LEARNERS}) % {COURSES} as course_id,
        3493 + (i % {LEARNERS}) % 5 as team_id,
        (i // 10) % 3 as activity_id,
        i % 101 as score,
        {stamp} as event_timestamp,
        now()::timestamp as received_at,
        strftime({stamp}, '%Y-%m-%dT%H:%M:%S.%gZ') as stamp
    from range({first}, {first + count}) as t(i)
    """


def generate_micro(warehouse: Path, batch: int, events: int) -> None:
    """One micro-batch of 100 rows as one loader batch: 80 new events (see _micro_rows_sql)
    and 20 re-deliveries of random bodies already loaded."""
    from pipeline.loader.ndjson import DDL

    first = events + 1_000_000 + batch * 80  # clear of the +1% increment's numbers
    with duckdb.connect(str(warehouse)) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(DDL)
        con.execute(
            _insert_sql(_learner_body_sql(), _micro_rows_sql(first, 80, events), "now()::timestamp")
        )
        con.execute(
            f"""insert into raw.edume_events ({_RAW_COLUMNS})
            select delivery_id, now()::timestamp, auth_mode, signature_form,
                secret_index, token_index, event_type, event_timestamp, body,
                segment || '.micro', line_number, now()::timestamp
            from raw.edume_events using sample reservoir(20 rows) repeatable ({batch + 1})"""
        )


def generate(warehouse: Path, start: int, stop: int, loaded_at: str) -> None:
    """Learner rows numbered [start, stop) (plus the course catalogue when start == 0) and 1%
    re-deliveries of them, as the loader would have written them."""
    from pipeline.loader.ndjson import DDL  # the loader's own table definition

    with duckdb.connect(str(warehouse)) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(DDL)
        if start == 0:
            con.execute(_insert_sql(_course_body_sql(), _course_rows_sql(), loaded_at))
        con.execute(_insert_sql(_learner_body_sql(), _learner_rows_sql(start, stop), loaded_at))
        # Real traffic carries some types the catalogue does not know: 1 in 1,000.
        con.execute(
            _insert_sql(
                'printf(\'{"type":"learner.badge.earned","payload":{"user":'
                '{"userId":%d}},"timestamp":"%s"}\', learner_id, stamp)',
                _learner_rows_sql(start, stop) + " where i % 1000 = 999",
                loaded_at,
            )
        )
        con.execute(
            f"""insert into raw.edume_events ({_RAW_COLUMNS})
            select delivery_id, received_at + interval 1 hour, auth_mode, signature_form,
                secret_index, token_index, event_type, event_timestamp, body,
                segment || '.retry', line_number, loaded_at
            from raw.edume_events
            where loaded_at = {loaded_at} and line_number % 100 = 7"""
        )


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mib: float
    # CPU time of dbt and DuckDB (user + system): on a machine shared with other work, far
    # steadier than the wall time, which waits for the CPU whenever others hold it.
    cpu_seconds: float


@dataclass(frozen=True)
class DbtCli:
    """The dbt CLI on one warehouse, with the same environment and arguments for every call so
    that dbt's parse cache stays valid between them."""

    warehouse: Path
    work_dir: Path

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "EDUME_WAREHOUSE": str(self.warehouse),
            "EDUME_ENGINE": "duckdb",
            "DO_NOT_TRACK": "1",
        }

    def command(self, args: Sequence[str]) -> list[str]:
        return [
            str(DBT), *args,
            "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(self.work_dir / "target"),
            "--log-path", str(self.work_dir / "logs"),
            "--vars", f"{{as_of: '{AS_OF}'}}",
        ]  # fmt: skip

    def parse(self) -> None:
        """A warm-up parse, so both timed runs pay the same (partial) parsing cost."""
        subprocess.run(self.command(["parse"]), env=self.env(), check=True, capture_output=True)

    def timed(self, args: Sequence[str]) -> Run:
        """Run ``dbt <args>`` (the pipeline's own build: ``DBT_BUILD_ARGS``); wall time and the
        peak RSS of the dbt process."""
        started = time.perf_counter()
        process = subprocess.Popen(
            self.command(args), env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output = process.stdout.read() if process.stdout else b""
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            sys.stdout.write(output.decode(errors="replace")[-5000:])
            raise SystemExit(f"dbt {' '.join(args)} failed with exit code {process.returncode}")
        if b"Unable to do partial parsing" in output:
            print("warning: dbt re-parsed the whole project in a timed run")
        return Run(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def _keep(keep: Path | None, work_dir: Path, label: str) -> None:
    """Keep dbt's per-node timings of a run, to see where the time goes."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        results = (work_dir / "target" / "run_results.json").read_bytes()
        (keep / f"run_results_{label}.json").write_bytes(results)


def _print_floor_and_full(events: int, floor: Run, full: Run, args: Sequence[str]) -> None:
    print(f"timed: dbt {' '.join(args)} (as the pipeline runs it)")
    print(f"dbt start-up + partial parse alone (floor of any run): {floor.seconds:7.1f} s")
    print(
        f"full dbt build ({events:,} events):        {full.seconds:7.1f} s  "
        f"peak RSS {full.peak_rss_mib:7.0f} MiB"
    )


def increment(events: int, fraction: float, keep: Path | None, build_args: Sequence[str]) -> None:
    """Full build at ``events``, then an incremental build after ``fraction`` more."""
    more = max(1, int(events * fraction))
    with tempfile.TemporaryDirectory(prefix="edume-bench-dbt-") as scratch:
        work_dir = Path(scratch)
        warehouse = work_dir / "edume.duckdb"
        started = time.perf_counter()
        generate(warehouse, 0, events, "now()::timestamp - interval 1 hour")
        generated_s = time.perf_counter() - started
        dbt = DbtCli(warehouse, work_dir)
        dbt.parse()
        floor = dbt.timed(["parse"])  # what any dbt invocation costs before it builds anything
        full = dbt.timed(build_args)
        _keep(keep, work_dir, "full")
        generate(warehouse, events, events + more, "now()::timestamp")
        incremental = dbt.timed(build_args)
        _keep(keep, work_dir, "incremental")
        with duckdb.connect(str(warehouse), read_only=True) as con:
            raw_rows = con.execute("select count(*) from raw.edume_events").fetchone()[0]
            activity_rows = con.execute(
                "select count(*) from marts.fct_learner_activity"
            ).fetchone()[0]
    ratio = incremental.seconds / full.seconds
    print(
        f"machine: {os.cpu_count()} cores; raw rows {raw_rows:,} (generated in {generated_s:.1f} s)"
    )
    print(f"distinct learner events in fct_learner_activity: {activity_rows:,}")
    _print_floor_and_full(events, floor, full, build_args)
    print(
        f"incremental dbt build (+{more:,} events):      {incremental.seconds:7.1f} s  "
        f"peak RSS {incremental.peak_rss_mib:7.0f} MiB"
    )
    print(
        f"ratio incremental / full: {ratio:.3f}  (target <= 0.2: "
        f"{'met' if ratio <= 0.2 else 'NOT met'})"
    )


def _median(values: Sequence[float]) -> float:
    return sorted(values)[len(values) // 2]


def micro(sizes: Sequence[int], batches: int, keep: Path | None, build_args: Sequence[str]) -> None:
    """For each size: a full build, then ``batches`` micro-batches, each loaded then built.
    Prints each size's median wall time and CPU time, and their ratios to the first size's."""
    medians: list[tuple[int, float, float]] = []
    for events in sizes:
        with tempfile.TemporaryDirectory(prefix="edume-bench-dbt-") as scratch:
            work_dir = Path(scratch)
            warehouse = work_dir / "edume.duckdb"
            generate(warehouse, 0, events, "now()::timestamp - interval 1 hour")
            dbt = DbtCli(warehouse, work_dir)
            dbt.parse()
            floor = dbt.timed(["parse"])
            full = dbt.timed(build_args)
            _print_floor_and_full(events, floor, full, build_args)
            runs = []
            for batch in range(batches):
                generate_micro(warehouse, batch, events)
                runs.append(dbt.timed(build_args))
                _keep(keep, work_dir, f"micro_{events}_{batch}")
            wall = _median([run.seconds for run in runs])
            cpu = _median([run.cpu_seconds for run in runs])
            medians.append((events, wall, cpu))
            print(
                f"micro-batch dbt build at {events:,} events: median {wall:.1f} s wall "
                f"({', '.join(f'{run.seconds:.1f}' for run in runs)}), {cpu:.1f} s CPU "
                f"({', '.join(f'{run.cpu_seconds:.1f}' for run in runs)}); floor "
                f"{floor.seconds:.1f} s wall, {floor.cpu_seconds:.1f} s CPU; peak RSS "
                f"{max(run.peak_rss_mib for run in runs):.0f} MiB",
                flush=True,
            )
    first_events, first_wall, first_cpu = medians[0]
    print(f"machine: {os.cpu_count()} cores; baseline: the micro-batch at {first_events:,} events")
    for events, wall, cpu in medians:
        print(
            f"  {events:>10,} events: {wall:6.1f} s wall (ratio {wall / first_wall:.2f}), "
            f"{cpu:6.1f} s CPU (ratio {cpu / first_cpu:.2f})"
        )


def main(argv: list[str] | None = None) -> int:
    if str(REPO) not in sys.path:  # run as a script from anywhere, installed or not
        sys.path.insert(0, str(REPO))
    from pipeline.defs.assets import DBT_BUILD_ARGS  # what production runs, timed here

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=None)
    parser.add_argument("--increment", type=float, default=0.01)
    parser.add_argument("--micro", action="store_true", help="micro-batches of 100 rows")
    parser.add_argument("--batches", type=int, default=3, help="micro-batches per size")
    parser.add_argument("--keep", type=Path, help="also copy dbt's run_results.json files here")
    args = parser.parse_args(argv)
    if args.micro:
        micro(args.events or [100_000, 1_000_000], args.batches, args.keep, DBT_BUILD_ARGS)
    else:
        for events in args.events or [1_000_000]:
            increment(events, args.increment, args.keep, DBT_BUILD_ARGS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
