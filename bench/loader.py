"""Loader benchmark: sealed segments -> raw.edume_events, against DuckDB's bare read_json.

Generates N events (default 1M) in sealed segments, then, each in its own subprocess so that peak
RSS is per phase, in the same run and on the same (page-cached) files:

1. baseline: ``create table t as select * from read_json(<segments>)`` in a fresh DuckDB file;
2. loader: ``load_landing`` into a fresh warehouse (validation, SHA-256 checks, manifest, rejects);
3. +1%: a further 1% of events in new segments, loaded into the now full table;
4. the payload contract check (``check_new_deliveries``, run after every load) against the load
   it follows, in the same process: on bodies that match their contract (the usual case, the
   one the 10 % budget is about), twice: N ``learner.activity.finished`` bodies (no array), and
   the simulator's traffic (``pipeline.simulator``: every event type, about a quarter of the
   bodies with arrays of teams, modules and activities, as eduMe sends them); and once on the
   synthetic bodies of 1-3, every one of which deviates (each is recorded: the worst case).
   The clean workloads are landed as the receiver lands them today (format 3: each line names
   its body's shape) and again as format 2 lines (no name: the check reads ``json_structure``);
   the figure against the 10 % budget is format 3's load and check against format 2's load
   alone, so that reading the extra column counts too.

1 and 2 alternate ``--repeat`` times and the best of each counts, so that a burst of load from
other processes on a shared machine does not decide the ratio; so do the clean runs of 4, whose
figure is the median of its per-run ratios check / load (wall clock; the ratio of the process's
CPU seconds is printed too, as it moves less when other processes take the cores). Imports are
done before any clock starts (they once counted in the load, ~0.2 s, flattering the ratio).
Prints events/s for 1 and 2, their ratio (target >= 0.8), peak RSS of each, the +1% time and
the contract check's overhead.
Usage: ``.venv/bin/python bench/loader.py [--events 1000000] [--per-segment 10000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _phase(args: argparse.Namespace) -> None:
    """Run one measured phase in this process; print a JSON line of its figures."""
    import duckdb

    if args.phase != "baseline":  # (the baseline's peak RSS stays DuckDB's alone)
        from pipeline.contracts.check import check_new_deliveries
        from pipeline.loader.ndjson import load_landing

    landing, work = Path(args.landing), Path(args.work)
    started, started_cpu = time.perf_counter(), _cpu_seconds()
    if args.phase == "baseline":
        (work / "baseline.duckdb").unlink(missing_ok=True)
        con = duckdb.connect(str(work / "baseline.duckdb"))
        glob = str(landing / "received_date=*" / "*.ndjson")
        con.execute(
            f"create table t as select * from read_json('{glob}', format='newline_delimited')"
        )
        rows = con.execute("select count(*) from t").fetchone()[0]
        con.close()
    else:
        if args.fresh:
            (work / "warehouse.duckdb").unlink(missing_ok=True)
        rows = load_landing(landing, work / "warehouse.duckdb").rows_loaded
        if args.phase == "contract":
            loaded, loaded_cpu = time.perf_counter(), _cpu_seconds()
            deviating = check_new_deliveries(work / "warehouse.duckdb").deviating_rows
            print(
                json.dumps(
                    {
                        "rows": rows,
                        "load_seconds": loaded - started,
                        "check_seconds": time.perf_counter() - loaded,
                        "load_cpu": loaded_cpu - started_cpu,
                        "check_cpu": _cpu_seconds() - loaded_cpu,
                        "deviating_rows": deviating,
                    }
                )
            )
            return
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "seconds": elapsed, "peak_rss_mib": peak_kib / 1024}))


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all of DuckDB's threads included."""
    times = os.times()
    return times.user + times.system


def contract_body(index: int) -> bytes:
    """A learner.activity.finished body that matches its contract, distinct per ``index``."""
    return json.dumps(
        {
            "type": "learner.activity.finished",
            "payload": {
                "group": {"groupId": 1297},
                "user": {
                    "userId": 1000 + index % 5000,
                    "externalUserId": f"emp-{index % 5000:05d}",
                    "firstName": "Ada",
                    "lastName": "Okafor",
                },
                "course": {"courseId": 14148 + index % 40, "courseKey": "k", "title": "Reboarding"},
                "module": {"moduleId": 15010 + index % 7},
                "activity": {"type": "assessment", "activityId": 8558 + index % 30},
                "result": {"score": index % 101, "passed": index % 101 >= 70},
            },
            "timestamp": f"2026-11-01T{index // 3600000 % 24:02d}:{index // 60000 % 60:02d}:"
            f"{index // 1000 % 60:02d}.{index % 1000:03d}Z",
        },
        separators=(",", ":"),
    ).encode()


def simulator_bodies(events: int) -> Iterator[bytes]:
    """The first ``events`` bodies of the simulator's traffic (every type, all matching)."""
    from pipeline.simulator.deliveries import serialise
    from pipeline.simulator.generate import journeys

    _, batches = journeys(learners=events // 20 + 100, seed=7)
    return itertools.islice((serialise(e) for batch in batches for e in batch), events)


def _write_clean(landing: Path, bodies: Iterator[bytes], per_segment: int) -> int:
    """Write ``bodies`` as sealed segments; return how many carry an array (``":[``)."""
    from bench.synthetic import landed_lines, write_segment

    with_arrays = 0
    for number in itertools.count():
        chunk = list(itertools.islice(bodies, per_segment))
        if not chunk:
            return with_arrays
        with_arrays += sum(b'":[' in body for body in chunk)
        write_segment(landing, f"clean-{number:06d}", landed_lines(chunk))


def _contract_overhead(landing: Path, work: Path, repeat: int) -> dict[str, Any]:
    """The check's overhead on ``landing`` (format 3 lines) and on the same lines as format 2.

    Runs alternate between the two ``repeat`` times (which goes first alternates too). Per run:
    check / load, for each format, and (load + check of format 3) / (load of format 2): what the
    contract costs the loader in all, reading the ``body_shape`` column included. Medians, and
    the last run's figures."""
    older = landing.with_name(landing.name + "-format-2")
    _rewrite_as_format_2(landing, older)
    os.sync()  # no writeback of the copy during the runs
    _warm(older)
    named, structured = [], []
    for run in range(repeat):
        for landed, runs in [(landing, named), (older, structured)][:: 1 if run % 2 else -1]:
            runs.append(_run_phase("contract", landed, work))
    return {
        **named[-1],
        "ratio": statistics.median(r["check_seconds"] / r["load_seconds"] for r in named),
        "cpu_ratio": statistics.median(r["check_cpu"] / r["load_cpu"] for r in named),
        "total_ratios": [
            (n["load_seconds"] + n["check_seconds"]) / s["load_seconds"] - 1
            for n, s in zip(named, structured, strict=True)
        ],
        "format_2_ratio": statistics.median(
            r["check_seconds"] / r["load_seconds"] for r in structured
        ),
        "deviating_rows": max(r["deviating_rows"] for r in named + structured),
    }


def _rewrite_as_format_2(landing: Path, older: Path) -> None:
    from bench.synthetic import as_format_2

    for path in landing.rglob("*.ndjson"):
        target = older / path.relative_to(landing)
        target.parent.mkdir(parents=True, exist_ok=True)
        with path.open("rb") as lines:
            target.write_bytes(b"".join(as_format_2(line) for line in lines))


def _print_overhead(label: str, clean: dict[str, Any], repeat: int) -> None:
    assert clean["deviating_rows"] == 0, clean
    totals = clean["total_ratios"]
    print(
        f"contract check, {label}: +{clean['ratio']:.0%} of the load "
        f"(CPU seconds +{clean['cpu_ratio']:.0%}; last {clean['check_seconds']:.2f} s after a "
        f"{clean['load_seconds']:.2f} s load); load + check vs loading the same bodies as "
        f"format 2 lines without a check: +{statistics.median(totals):.0%} (median of {repeat}: "
        f"{[round(t, 2) for t in totals]}; target <= 10%); on format 2 lines (json_structure): "
        f"+{clean['format_2_ratio']:.0%}"
    )


def _run_phase(phase: str, landing: Path, work: Path, *, fresh: bool = True) -> dict[str, float]:
    command = [sys.executable, __file__, "--phase", phase, "--landing", str(landing)]
    command += ["--work", str(work), *(["--fresh"] if fresh else [])]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if done.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _warm(landing: Path) -> int:
    """Read every segment once so that both contenders start with a warm page cache."""
    return sum(len(p.read_bytes()) for p in landing.rglob("*.ndjson"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--per-segment", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--phase", choices=["baseline", "loader", "contract"], help=argparse.SUPPRESS
    )
    parser.add_argument("--fresh", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--landing", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))  # the bench runs as a script, from any directory
    if args.phase:
        _phase(args)
        return 0

    from bench.synthetic import write_backlog

    with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
        landing, work = Path(tmp) / "landing", Path(tmp)
        started = time.perf_counter()
        write_backlog(landing, events=args.events, per_segment=args.per_segment)
        size = _warm(landing)
        print(
            f"generated {args.events:,} events in {args.events // args.per_segment} segments, "
            f"{size / 2**20:,.0f} MiB, in {time.perf_counter() - started:.1f} s "
            f"({os.cpu_count()} cores)"
        )
        bases, ourses = [], []
        for _ in range(args.repeat):
            bases.append(_run_phase("baseline", landing, work))
            ourses.append(_run_phase("loader", landing, work))
        base = min(bases, key=lambda figures: figures["seconds"])
        ours = min(ourses, key=lambda figures: figures["seconds"])
        extra = max(1, args.events // 100)
        write_backlog(
            landing,
            events=extra,
            per_segment=args.per_segment,
            first_index=args.events,
            prefix="more",
        )
        _warm(landing)
        more = _run_phase("loader", landing, work, fresh=False)
        deviating = _run_phase("contract", landing, work)
        clean_landing = Path(tmp) / "clean"
        bodies = (contract_body(i) for i in range(args.events))
        _write_clean(clean_landing, bodies, args.per_segment)
        _warm(clean_landing)
        clean = _contract_overhead(clean_landing, work, args.repeat)
        simulated_landing = Path(tmp) / "simulated"
        with_arrays = _write_clean(
            simulated_landing, simulator_bodies(args.events), args.per_segment
        )
        _warm(simulated_landing)
        simulated = _contract_overhead(simulated_landing, work, args.repeat)

    assert ours["rows"] == args.events, ours
    assert more["rows"] == extra, more
    base_rate = base["rows"] / base["seconds"]
    our_rate = ours["rows"] / ours["seconds"]
    print(
        f"duckdb read_json (baseline): {base_rate:>12,.0f} events/s  "
        f"{base['seconds']:6.2f} s  peak RSS {base['peak_rss_mib']:,.0f} MiB"
    )
    print(
        f"load_landing:                {our_rate:>12,.0f} events/s  "
        f"{ours['seconds']:6.2f} s  peak RSS {ours['peak_rss_mib']:,.0f} MiB"
    )
    print(
        f"ratio loader / read_json:    {our_rate / base_rate:.2f}  (target >= 0.8; best of "
        f"{args.repeat}: base {[round(b['seconds'], 2) for b in bases]} s, "
        f"loader {[round(o['seconds'], 2) for o in ourses]} s)"
    )
    print(
        f"+1% ({extra:,} events) into the full table: {more['seconds']:.2f} s  "
        f"peak RSS {more['peak_rss_mib']:,.0f} MiB"
    )
    _print_overhead("bodies matching their contract", clean, args.repeat)
    _print_overhead(
        f"simulator traffic ({with_arrays / args.events:.0%} of bodies with arrays)",
        simulated,
        args.repeat,
    )
    print(
        f"contract check, every body deviating ({deviating['deviating_rows']:,} recorded): "
        f"{deviating['check_seconds']:.2f} s after a {deviating['load_seconds']:.2f} s load "
        f"(+{deviating['check_seconds'] / deviating['load_seconds']:.0%})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
