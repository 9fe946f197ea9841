"""Benchmark: what one live micro-batch (<= 100 events) costs as the warehouse grows.

For each size (default 100k and 1M events; ``--sizes 100000 1000000 5000000`` for the full
run), a warehouse is generated straight into ``raw.edume_events`` by ``bench/dbt_build.py``'s
generator (eduMe-shaped learner and course bodies, re-deliveries, unknown types), then built once
in full through the live worker. Then ``--batches`` increments, each a real landing segment of
100 lines drawn like live traffic (80 new events of learners and courses the warehouse already
holds, their timestamps scattered over the old months, so out of order, and 20 re-deliveries of
bodies already loaded), each run through :meth:`pipeline.live.worker.LiveWorker.run_batch`: the
function the worker calls, a real in-process Dagster run of load -> dbt build -> export. The
sizes take turns, batch by batch, so that a slow spell of a shared machine falls on all of them.

Prints, per size, the median batch wall time and its parts (Dagster start-up, load, dbt, export,
checks, the rest), the slowest dbt nodes of the last batch, and the ratio to the smallest size's
median (issue #11's target: <= 1.5 at 5M vs 100k). Ratios against the same run's smallest size
are meaningful on a shared machine; absolute seconds are not.

    .venv/bin/python bench/microbatch.py [--sizes 100000 1000000 [5000000]] [--batches 3]
        [--dbt in-process|subprocess|both]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script, from anywhere

from bench.dbt_build import _learner_body_sql, _micro_rows_sql, generate
from bench.live_kit import settings_under
from bench.synthetic import landed_lines, write_segment
from pipeline.defs.resources import edume_dbt_project
from pipeline.live.worker import (
    BatchReport,
    LiveOptions,
    LiveWorker,
    build_worker,
    open_instance,
)

MODES = ("in-process", "subprocess")
PARTS = ("startup_s", "load_s", "dbt_s", "export_s", "checks_s", "other_s")
BASE_LOADED_AT = "timestamp '2024-01-01 00:00:00'"


def increment_bodies(warehouse: Path, batch: int, events: int) -> list[bytes]:
    """80 new bodies of existing learners and courses (old months, out of order) and 20 bodies
    already loaded, in a shuffled order."""
    first = events + 1_000_000 + batch * 80
    with duckdb.connect(str(warehouse), read_only=True) as con:
        new = con.execute(
            f"select {_learner_body_sql()} from ({_micro_rows_sql(first, 80, events)})"
        ).fetchall()
        again = con.execute(
            f"select body::varchar from raw.edume_events using sample reservoir(20 rows) "
            f"repeatable ({batch + 1})"
        ).fetchall()
    bodies = [text.encode() for (text,) in [*new, *again]]
    return sorted(bodies, key=lambda body: hash((batch, body)))


def land_increment(worker: LiveWorker, batch: int, events: int) -> str:
    bodies = increment_bodies(worker.warehouse, batch, events)
    now = datetime.now(UTC)
    path = write_segment(
        worker.landing, f"micro-{batch:04d}", landed_lines(bodies, now), received_at=now
    )
    return path.relative_to(worker.landing).as_posix()


def built_workers(
    root: Path, events: int, project_target: Path, modes: list[str]
) -> dict[str, LiveWorker]:
    """One worker per dbt mode over ONE generated warehouse of ``events`` events, after its
    first (full) build."""
    print(f"{events:,} events:", flush=True)
    settings = settings_under(root)
    started = time.monotonic()
    generate(settings.warehouse, 0, events, BASE_LOADED_AT)
    print(f"  generated {events:,} events in {time.monotonic() - started:.1f} s", flush=True)
    project = edume_dbt_project(None, project_target)
    workers = {  # as `live` builds one, dbt in its process or (subprocess) not
        mode: build_worker(
            settings,
            open_instance(),
            LiveOptions(dbt_in_process=mode == "in-process"),
            project,
            log=lambda _line: None,
        )
        for mode in modes
    }
    first = next(iter(workers.values()))
    full = first.run_batch([land_increment(first, 0, events)])
    assert full is not None and full.success, "the first (full) build failed"
    print(f"  full build through the worker: {full.wall_s:.1f} s", flush=True)
    for worker in workers.values():  # one as_of for all: a move would make the export rewrite
        worker.as_of, worker.as_of_moved = first.as_of, first.as_of_moved
    return workers


Key = tuple[int, str]  # events in the warehouse, dbt mode


def measure(workers: dict[Key, LiveWorker], batches: int) -> dict[Key, list[BatchReport]]:
    """``batches`` micro-batches per size and mode, taking turns (batch 1 of every size and
    mode, then batch 2, ...), so that a slow spell of a shared machine falls on all alike."""
    reports: dict[Key, list[BatchReport]] = {key: [] for key in workers}
    for batch in range(1, batches + 1):
        for (events, mode), worker in workers.items():
            # Each mode lands its own increment: the modes share the warehouse.
            number = batch * len(MODES) + MODES.index(mode)
            report = worker.run_batch([land_increment(worker, number, events)])
            assert report is not None and report.success, f"micro-batch {batch} failed"
            print(f"  {events:,} events, dbt {mode}: " + report.line(), flush=True)
            reports[(events, mode)].append(report)
    return reports


def slowest_nodes(project_target: Path, count: int = 8) -> str:
    """The ``count`` slowest nodes of the last ``dbt build`` (its ``run_results.json``)."""
    results = json.loads((project_target / "run_results.json").read_text())["results"]
    results.sort(key=lambda r: -r["execution_time"])
    return ", ".join(
        f"{r['unique_id'].split('.')[-1]} {r['execution_time']:.2f}" for r in results[:count]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batches", type=int, default=3, help="increments per size (default 3)")
    parser.add_argument(
        "--dbt",
        choices=[*MODES, "both"],
        default="in-process",
        help="how the worker runs dbt (default: in-process, as `live` does); both: each size's "
        "warehouse gets batches of each in turn, the subprocess being the same-run baseline",
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temp dir")
    args = parser.parse_args(argv)
    modes = list(MODES) if args.dbt == "both" else [args.dbt]
    with tempfile.TemporaryDirectory(prefix="edume-microbatch-", dir=args.work_dir) as tmp:
        work = Path(tmp)
        # One dbt target per warehouse: dbt's partial parse is per profile (warehouse path).
        workers = {
            (events, mode): worker
            for events in args.sizes
            for mode, worker in built_workers(
                work / f"w{events}", events, work / f"dbt_target_{events}", modes
            ).items()
        }
        reports = measure(workers, args.batches)
        for events in args.sizes:
            slowest = slowest_nodes(work / f"dbt_target_{events}")
            print(f"  slowest dbt nodes of {events:,} events' last batch: {slowest}", flush=True)
        medians = {
            key: {
                part: statistics.median(getattr(r, part) for r in reports[key])
                for part in ("wall_s", *PARTS)
            }
            for key in workers
        }
    print("\nmicro-batch of 100 lines (median): wall = " + " + ".join(PARTS))
    for (events, mode), median in medians.items():
        smallest = (args.sizes[0], mode)
        parts = ", ".join(f"{p.removesuffix('_s')} {median[p]:.2f}" for p in PARTS)
        print(
            f"  {events:>9,} events, dbt {mode:<10}: {median['wall_s']:6.2f} s ({parts}); "
            f"ratio to {args.sizes[0]:,}: {median['wall_s'] / medians[smallest]['wall_s']:.2f}; "
            "batch by batch: "
            + ", ".join(
                f"{r.wall_s / base.wall_s:.2f}"
                for r, base in zip(reports[(events, mode)], reports[smallest], strict=True)
            )
        )
    if len(modes) == 2:
        for events in args.sizes:
            inside, outside = medians[(events, MODES[0])], medians[(events, MODES[1])]
            print(
                f"  {events:>9,} events: in-process / subprocess: wall "
                f"{inside['wall_s'] / outside['wall_s']:.2f}, dbt step "
                f"{inside['dbt_s'] / outside['dbt_s']:.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
