"""Simulator benchmark: how fast synthetic eduMe traffic lands and posts, with same-run baselines.

1. ``--landing`` path: learners' journeys generated, serialised and landed as sealed segments
   (lines/s), against landing the very same lines already made (the writer alone) in this run.
   The ratio is the share of the landing speed the generator keeps.
2. ``--url`` path: the demo's 300 learners POSTed through a real receiver on loopback with the
   simulator's client (deliveries/s and seconds), against the same client posting the same
   deliveries to the receiver's ``/healthz`` (no verification, no fsync) in this run.

Usage: ``.venv/bin/python bench/simulate.py [--learners 20000] [--post-learners 300]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.receiver.process import ReceiverProcess
from pipeline.simulator.deliveries import Noise, stream_bodies
from pipeline.simulator.generate import journeys
from pipeline.simulator.post import land_bodies, post_deliveries
from pipeline.simulator.simulation import build

SECRET = "bench-secret"


def _landing(learners: int, work: Path) -> tuple[float, float, int]:
    started = time.perf_counter()
    truth, batches = journeys(learners, seed=7)
    lines = land_bodies(work / "generated", stream_bodies(batches, Noise(), 7, truth))
    generated_s = time.perf_counter() - started
    _, batches = journeys(learners, seed=7)
    bodies = list(stream_bodies(batches, Noise(), 7))
    started = time.perf_counter()
    land_bodies(work / "baseline", bodies)
    baseline_s = time.perf_counter() - started
    return lines / generated_s, lines / baseline_s, lines


def _posting(learners: int, work: Path) -> tuple[float, float, float, int]:
    simulation = build(learners, seed=7, secret=SECRET.encode())
    with ReceiverProcess(work / "landing", secrets=[SECRET]) as receiver:
        report = post_deliveries(receiver.webhook_url, simulation.deliveries, 8, None)
        baseline = post_deliveries(f"{receiver.url}/healthz", simulation.deliveries, 8, None)
        receiver.stop()
    if report.unexpected:
        raise SystemExit(f"unexpected answers: {report.unexpected[:3]}")
    count = len(simulation.deliveries)
    return count / report.seconds, count / baseline.seconds, report.seconds, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=20_000)
    parser.add_argument("--post-learners", type=int, default=300)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        work = Path(tmp)
        generated, written, lines = _landing(args.learners, work)
        print(
            f"landing {args.learners:,} learners ({lines:,} lines): {generated:,.0f} lines/s; "
            f"baseline (writer alone, same lines): {written:,.0f} lines/s; "
            f"ratio {generated / written:.2f}"
        )
        posted, bare, seconds, count = _posting(args.post_learners, work)
        print(
            f"posting {args.post_learners} learners ({count:,} deliveries) through a receiver: "
            f"{posted:,.0f}/s, {seconds:.1f}s; baseline (same client, same bodies, "
            f"POST /healthz answered 405 unverified): {bare:,.0f}/s; ratio {posted / bare:.2f}"
        )


if __name__ == "__main__":
    main()
