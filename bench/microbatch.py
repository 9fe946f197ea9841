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

``--baseline-ref REF`` adds a side: the dbt project of git revision ``REF`` (extracted with
``git archive``), run by this code, on its own copy of each generated warehouse, so a change to
the dbt project is measured against the same run's baseline. ``--reuse both`` adds a side whose
worker rebuilds every view and seed at every batch (``LiveOptions.reuse_views`` off) on the same
warehouse, taking turns with the one that leaves them in place, as ``live`` does.

    .venv/bin/python bench/microbatch.py [--sizes 100000 1000000 [5000000]] [--batches 3]
        [--dbt in-process|subprocess|both] [--reuse yes|no|both] [--baseline-ref REF]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script, from anywhere

from bench.dbt_build import _learner_body_sql, _micro_rows_sql, generate
from bench.live_kit import settings_under
from bench.receiver import source_tree
from bench.synthetic import landed_lines, write_segment
from pipeline.defs.resources import edume_dbt_project
from pipeline.live.worker import (
    BatchReport,
    LiveOptions,
    LiveWorker,
    build_worker,
    open_instance,
)
from pipeline.settings import REPO_ROOT

MODES = ("in-process", "subprocess")
PARTS = ("startup_s", "load_s", "dbt_s", "export_s", "checks_s", "other_s")
BASE_LOADED_AT = "timestamp '2024-01-01 00:00:00'"


@dataclass(frozen=True)
class Side:
    """One way of running the micro-batch: how the worker runs dbt, and which dbt project
    (None: this checkout's; else the project of git revision ``ref``)."""

    mode: str
    ref: str | None = None
    project_dir: Path | None = None
    reuse: bool = True  # LiveOptions.reuse_views

    @property
    def label(self) -> str:
        return (
            self.mode
            + ("" if self.reuse else " rebuilding views")
            + (f" @{self.ref}" if self.ref else "")
        )


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


def built_workers(root: Path, events: int, sides: list[Side]) -> dict[Side, LiveWorker]:
    """One worker per side over ONE generated warehouse of ``events`` events, after its first
    (full) build; a side with another dbt project gets a copy of the warehouse of its own."""
    print(f"{events:,} events:", flush=True)
    started = time.monotonic()
    generated = settings_under(root / "this").warehouse
    generate(generated, 0, events, BASE_LOADED_AT)
    print(f"  generated {events:,} events in {time.monotonic() - started:.1f} s", flush=True)
    for ref in {side.ref for side in sides} - {None}:
        shutil.copy(generated, settings_under(root / ref).warehouse)
    workers: dict[Side, LiveWorker] = {}
    built: dict[str | None, LiveWorker] = {}  # the first worker of each dbt project
    for side in sides:
        home = root / (side.ref or "this")
        settings = settings_under(home)
        # One dbt target per warehouse: dbt's partial parse is per profile (warehouse path).
        project = edume_dbt_project(side.project_dir, home / "dbt_target")
        workers[side] = worker = build_worker(  # as `live` builds one
            settings,
            open_instance(),
            LiveOptions(dbt_in_process=side.mode == "in-process", reuse_views=side.reuse),
            project,
            log=lambda _line: None,
        )
        if built:  # one as_of for all: a move would make the export rewrite
            first = next(iter(built.values()))
            worker.as_of, worker.as_of_moved = first.as_of, first.as_of_moved
        if side.ref not in built:
            built[side.ref] = worker
            full = worker.run_batch([land_increment(worker, 0, events)])
            assert full is not None and full.success, "the first (full) build failed"
            print(f"  full build ({side.label}): {full.wall_s:.1f} s", flush=True)
    return workers


Key = tuple[int, Side]  # events in the warehouse, side


def measure(workers: dict[Key, LiveWorker], batches: int) -> dict[Key, list[BatchReport]]:
    """``batches`` micro-batches per size and side, taking turns (batch 1 of every size and
    side, then batch 2, ...), so that a slow spell of a shared machine falls on all alike."""
    reports: dict[Key, list[BatchReport]] = {key: [] for key in workers}
    sides = list(dict.fromkeys(side for _, side in workers))
    for batch in range(1, batches + 1):
        for (events, side), worker in workers.items():
            # Each side lands its own increment: two modes share a warehouse.
            number = batch * len(sides) + sides.index(side)
            report = worker.run_batch([land_increment(worker, number, events)])
            assert report is not None and report.success, f"micro-batch {batch} failed"
            print(f"  {events:,} events, dbt {side.label}: " + report.line(), flush=True)
            reports[(events, side)].append(report)
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
    parser.add_argument(
        "--reuse",
        choices=["yes", "no", "both"],
        default="yes",
        help="whether a batch leaves the views and seeds it built in place (default yes, as "
        "`live` does); both: each size's warehouse gets batches of each in turn",
    )
    parser.add_argument(
        "--baseline-ref",
        default=None,
        help="also run the dbt project of this git revision (e.g. HEAD~1), side by side",
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temp dir")
    args = parser.parse_args(argv)
    reuses = {"yes": [True], "no": [False], "both": [True, False]}[args.reuse]
    modes = MODES if args.dbt == "both" else (args.dbt,)
    sides = [Side(mode, reuse=reuse) for mode in modes for reuse in reuses]
    with tempfile.TemporaryDirectory(prefix="edume-microbatch-", dir=args.work_dir) as tmp:
        work = Path(tmp)
        # The runs are stored as the deployment stores them (SQLite under a DAGSTER_HOME with
        # the project's dagster.yaml), not in memory: every Dagster event costs what it costs live.
        home = work / "dagster_home"
        home.mkdir()
        shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home)
        os.environ["DAGSTER_HOME"] = str(home)
        if args.baseline_ref:
            tree = source_tree(args.baseline_ref, work / "baseline")
            sides += [Side(s.mode, args.baseline_ref, tree / "dbt_project", s.reuse) for s in sides]
        workers = {
            (events, side): worker
            for events in args.sizes
            for side, worker in built_workers(work / f"w{events}", events, sides).items()
        }
        reports = measure(workers, args.batches)
        for events in args.sizes:
            for home in sorted((work / f"w{events}").iterdir()):
                slowest = slowest_nodes(home / "dbt_target")
                print(f"  slowest dbt nodes, {events:,} events, {home.name}: {slowest}", flush=True)
        medians = {
            key: {
                part: statistics.median(getattr(r, part) for r in reports[key])
                for part in ("wall_s", *PARTS)
            }
            for key in workers
        }
    print("\nmicro-batch of 100 lines (median): wall = " + " + ".join(PARTS))
    for (events, side), median in medians.items():
        smallest = (args.sizes[0], side)
        parts = ", ".join(f"{p.removesuffix('_s')} {median[p]:.2f}" for p in PARTS)
        print(
            f"  {events:>9,} events, dbt {side.label:<10}: {median['wall_s']:6.2f} s ({parts}); "
            f"ratio to {args.sizes[0]:,}: {median['wall_s'] / medians[smallest]['wall_s']:.2f}; "
            "batch by batch: "
            + ", ".join(
                f"{r.wall_s / base.wall_s:.2f}"
                for r, base in zip(reports[(events, side)], reports[smallest], strict=True)
            )
        )
    for events in args.sizes:
        first = medians[(events, sides[0])]
        for side in sides[1:]:
            other = medians[(events, side)]
            print(
                f"  {events:>9,} events: {sides[0].label} / {side.label}: wall "
                f"{first['wall_s'] / other['wall_s']:.2f}, dbt step "
                f"{first['dbt_s'] / other['dbt_s']:.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
