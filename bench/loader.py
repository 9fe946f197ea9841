"""Loader benchmark: sealed segments -> raw.edume_events, against DuckDB's bare read_json.

Generates N events (default 1M) in sealed segments, then, each in its own subprocess so that peak
RSS is per phase, in the same run and on the same (page-cached) files:

1. baseline: ``create table t as select * from read_json(<segments>)`` in a fresh DuckDB file;
2. loader: ``load_landing`` into a fresh warehouse (validation, SHA-256 checks, manifest, rejects);
3. +1%: a further 1% of events in new segments, loaded into the now full table.

1 and 2 alternate ``--repeat`` times and the best of each counts, so that a burst of load from
other processes on a shared machine does not decide the ratio. Prints events/s for 1 and 2, their
ratio (target >= 0.8), peak RSS of each, and the +1% time.
Usage: ``.venv/bin/python bench/loader.py [--events 1000000] [--per-segment 10000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _phase(args: argparse.Namespace) -> None:
    """Run one measured phase in this process; print a JSON line of its figures."""
    landing, work = Path(args.landing), Path(args.work)
    started = time.perf_counter()
    if args.phase == "baseline":
        import duckdb

        (work / "baseline.duckdb").unlink(missing_ok=True)
        con = duckdb.connect(str(work / "baseline.duckdb"))
        glob = str(landing / "received_date=*" / "*.ndjson")
        con.execute(
            f"create table t as select * from read_json('{glob}', format='newline_delimited')"
        )
        rows = con.execute("select count(*) from t").fetchone()[0]
        con.close()
    else:
        from pipeline.loader.ndjson import load_landing

        if args.fresh:
            (work / "warehouse.duckdb").unlink(missing_ok=True)
        rows = load_landing(landing, work / "warehouse.duckdb").rows_loaded
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "seconds": elapsed, "peak_rss_mib": peak_kib / 1024}))


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
    parser.add_argument("--phase", choices=["baseline", "loader"], help=argparse.SUPPRESS)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
