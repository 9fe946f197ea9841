"""Benchmark: from eduMe's 204 to visible in ``exports/query.duckdb``, on the documented deployment.

Starts ``edume-pipeline up`` (receiver, Dagster's UI and daemon, the live worker) on free ports
with its own temp dirs and ``DAGSTER_HOME``, then sends simulator traffic (``pipeline.simulator``:
existing learners, duplicates, out of order, signed as eduMe signs):

1. a preload (``--preload`` of the deliveries, as fast as it goes), waited for;
2. a steady trickle: one delivery every 2-10 s for ``--trickle-s`` seconds;
3. a burst: ``--burst`` deliveries spread over ``--burst-s`` seconds;
4. nothing for ``--idle-s`` seconds, while the CPU time of every process of the deployment is
   summed (``/proc/<pid>/stat`` utime+stime, children included, over the process trees).

A delivery is visible when its learner event id is in ``fct_learner_activity`` (and, for a
completion, its learner-course pair is completed in ``fct_learner_course_progress``) in
``query.duckdb``, polled every ``--poll-s``. Reports freshness p50/p95/max for the trickle and the
burst, the time from the burst's end to its last delivery visible, the runs launched and the most
that ever waited, one trickle micro-batch's wall time broken down (seal wait, poll wait,
start-up, load, dbt, export, checks, the rest), and CPU seconds per idle minute (whole deployment
and per part).

The defaults are SHORT (150 learners, a 2-minute trickle, a 2,000-delivery burst) because the
machine it was written on was shared by 8 engineers. The issue's full run:

    .venv/bin/python bench/freshness.py --learners 1000 --trickle-s 300 --burst 10000 --burst-s 60
"""

from __future__ import annotations

import argparse
import itertools
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script, from anywhere

from bench.live_kit import (
    SECRET,
    Deployment,
    Poster,
    completion_key,
    delivery_key,
    is_learner_event,
    stop,
    tree_cpu_s,
)
from pipeline.receiver.landing_format import SEALED_GLOB
from pipeline.simulator.deliveries import DUPLICATE, VALID, Delivery
from pipeline.simulator.simulation import build

READY_DEADLINE_S = 900.0


@dataclass
class Tracked:
    """A delivery whose visibility is watched: its ids, when it got its 204, when it showed."""

    event_id: str
    completion: tuple[int, int] | None
    sent_at: float
    phase: str
    visible_at: float | None = None


@dataclass
class Watcher:
    """Polls query.duckdb in a thread and stamps each tracked delivery when it shows up."""

    deployment: Deployment
    poll_s: float
    tracked: list[Tracked] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)

    def add(self, item: Tracked) -> None:
        with self.lock:
            self.tracked.append(item)

    def pending(self, phase: str | None = None) -> list[Tracked]:
        with self.lock:
            return [t for t in self.tracked if t.visible_at is None and phase in (None, t.phase)]

    def run(self) -> None:
        while not self.done.wait(self.poll_s):
            waiting = self.pending()
            if not waiting:
                continue
            completed, events = self.deployment.visible()
            now = time.time()
            for item in waiting:
                shown = item.event_id in events and (
                    item.completion is None or item.completion in completed
                )
                if shown:
                    item.visible_at = now


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(label: str, items: list[Tracked]) -> str:
    lags = [t.visible_at - t.sent_at for t in items if t.visible_at is not None]
    if not lags:
        return f"{label}: nothing visible"
    return (
        f"{label}: {len(lags)} of {len(items)} visible; freshness p50 "
        f"{percentile(lags, 0.5):.1f} s, p95 {percentile(lags, 0.95):.1f} s, max {max(lags):.1f} s"
    )


def trackable(delivery: Delivery, seen: set[str]) -> bool:
    """A first delivery of a known learner event: the one that can become visible."""
    key = delivery_key(delivery)
    first = key not in seen and delivery.kind in (VALID, DUPLICATE)
    seen.add(key)
    return first and delivery.kind == VALID and is_learner_event(delivery.body)


def send(
    deliveries: list[Delivery],
    poster: Poster,
    watcher: Watcher,
    phase: str,
    seen: set[str],
) -> None:
    for delivery in deliveries:
        status = poster.post(delivery)
        if (200 <= status < 300) != delivery.should_be_accepted:
            print(f"unexpected answer {status or 'none'} to a {delivery.kind} delivery", flush=True)
        if trackable(delivery, seen) and 200 <= status < 300:
            watcher.add(
                Tracked(delivery_key(delivery), completion_key(delivery.body), time.time(), phase)
            )


def burst(
    deliveries: list[Delivery],
    url: str,
    seconds: float,
    watcher: Watcher,
    seen: set[str],
    streams: int = 8,
) -> None:
    """``deliveries`` over ``seconds`` from ``streams`` connections, paced evenly."""
    tracked = [trackable(d, seen) for d in deliveries]
    started = time.monotonic()
    gap = seconds / max(1, len(deliveries))

    def stream(slot: int) -> None:
        poster = Poster(url)
        try:
            for index in range(slot, len(deliveries), streams):
                delay = started + index * gap - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                delivery = deliveries[index]
                status = poster.post(delivery)
                if (200 <= status < 300) and tracked[index]:
                    watcher.add(
                        Tracked(
                            delivery_key(delivery),
                            completion_key(delivery.body),
                            time.time(),
                            "burst",
                        )
                    )
        finally:
            poster.close()

    threads = [threading.Thread(target=stream, args=(s,)) for s in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def wait_visible(watcher: Watcher, phase: str, deadline_s: float) -> float:
    """Seconds until every ``phase`` delivery is visible (or the deadline passed)."""
    started = time.monotonic()
    while watcher.pending(phase) and time.monotonic() - started < deadline_s:
        time.sleep(0.5)
    return time.monotonic() - started


def seal_times(deployment: Deployment, items: list[Tracked]) -> dict[str, float]:
    """When the segment holding each delivery was sealed (its ctime: the seal is a rename)."""
    wanted = {t.event_id for t in items}
    found: dict[str, float] = {}
    for segment in deployment.landing.glob(SEALED_GLOB):
        text = segment.read_text(errors="replace")
        for event_id in [e for e in wanted if e in text]:
            found[event_id] = segment.stat().st_ctime
            wanted.discard(event_id)
    return found


def breakdown(deployment: Deployment, items: list[Tracked]) -> str:
    """Median parts of the trickle deliveries' path: 204 -> sealed -> batch -> visible."""
    sealed = seal_times(deployment, items)
    reports = sorted(deployment.reports(), key=lambda r: r["started_at"])
    rows = []
    for item in items:
        if item.visible_at is None or item.event_id not in sealed:
            continue
        runs = [r for r in reports if sealed[item.event_id] <= r["started_at"] <= item.visible_at]
        if not runs:
            continue
        run = runs[0]
        rows.append(
            {
                "seal wait": sealed[item.event_id] - item.sent_at,
                "poll wait": run["started_at"] - sealed[item.event_id],
                "start-up": run["startup_s"],
                "load": run["load_s"],
                "dbt": run["dbt_s"],
                "export": run["export_s"],
                "checks": run["checks_s"],
                "rest of the run": run["other_s"] + run["check_s"],
                "run end -> seen": item.visible_at - (run["started_at"] + run["wall_s"]),
                "total": item.visible_at - item.sent_at,
            }
        )
    if not rows:
        return "breakdown: no trickle delivery could be traced to its batch"
    parts = ", ".join(f"{k} {statistics.median(r[k] for r in rows):.2f}" for k in rows[0])
    return f"one trickle micro-batch (median of {len(rows)} deliveries, s): {parts}"


def idle_cpu(process_pid: int, seconds: float) -> tuple[float, dict[int, float]]:
    """CPU seconds per minute of the whole tree, and per direct child (each part of `up`)."""

    def children() -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            if int(text[text.rindex(")") + 2 :].split()[1]) == process_pid:
                found.append(int(stat.parent.name))
        return found

    parts = children()
    before = tree_cpu_s(process_pid), {p: tree_cpu_s(p) for p in parts}
    time.sleep(seconds)
    after = tree_cpu_s(process_pid), {p: tree_cpu_s(p) for p in parts}
    scale = 60.0 / seconds
    return (after[0] - before[0]) * scale, {p: (after[1][p] - before[1][p]) * scale for p in parts}


def part_names(deployment: Deployment) -> dict[int, str]:
    """pid -> part, from the lines ``up`` prints ("up: receiver pid 123 ...")."""
    found = re.findall(r"^up: (\w+)\s+pid (\d+)", deployment.log_text(), flags=re.MULTILINE)
    return {int(pid): name for name, pid in found}


def queued_runs(deployment: Deployment) -> int:
    """Runs of the deployment's instance that ever entered Dagster's run queue."""
    import dagster as dg

    with deployment.instance() as instance:
        return sum(
            bool(
                instance.get_records_for_run(
                    run.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED
                ).records
            )
            for run in instance.get_runs()
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--preload",
        type=float,
        default=0.4,
        help="share sent first (0.4); the course catalogue comes first in the simulated "
        "traffic, so keep it above 0 for the trickle to carry learner events",
    )
    parser.add_argument("--trickle-s", type=float, default=120.0)
    parser.add_argument("--burst", type=int, default=2000, help="deliveries in the burst")
    parser.add_argument("--burst-s", type=float, default=60.0)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--poll-s", type=float, default=0.5, help="query.duckdb poll period")
    parser.add_argument("--deadline-s", type=float, default=600.0, help="per wait for visibility")
    parser.add_argument("--no-dagster", action="store_true", help="leave Dagster's UI/daemon out")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temp dir")
    args = parser.parse_args(argv)

    simulation = build(args.learners, args.seed, SECRET.encode())
    deliveries = simulation.deliveries
    preload = deliveries[: int(len(deliveries) * args.preload)]
    rest = deliveries[len(preload) :]
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="edume-freshness-", dir=args.work_dir) as tmp:
        deployment = Deployment.under(Path(tmp))
        process = deployment.start("up", dagster=not args.no_dagster)
        watcher = Watcher(deployment, args.poll_s)
        seen: set[str] = set()
        poster = Poster(deployment.url)
        try:
            t0 = time.monotonic()
            deployment.wait_for(
                deployment.ready, t0 + READY_DEADLINE_S, "live worker start", process
            )
            print(f"deployment up in {time.monotonic() - t0:.0f} s ({deployment.root})", flush=True)
            threading.Thread(target=watcher.run, daemon=True).start()

            send(preload, poster, watcher, "preload", seen)
            waited = wait_visible(watcher, "preload", args.deadline_s)
            print(f"preload: {len(preload)} deliveries, visible after {waited:.0f} s", flush=True)

            trickle_end = time.monotonic() + args.trickle_s
            sent = 0
            while time.monotonic() < trickle_end and sent < len(rest):
                send([rest[sent]], poster, watcher, "trickle", seen)
                sent += 1
                time.sleep(rng.uniform(2.0, 10.0))
            wait_visible(watcher, "trickle", args.deadline_s)
            trickle = [t for t in watcher.tracked if t.phase == "trickle"]
            print(summary("trickle", trickle), flush=True)
            print(breakdown(deployment, trickle), flush=True)

            burst_list = rest[sent : sent + args.burst]
            burst(burst_list, deployment.url, args.burst_s, watcher, seen)
            after_burst = wait_visible(watcher, "burst", args.deadline_s)
            print(
                summary("burst", [t for t in watcher.tracked if t.phase == "burst"])
                + f"; all visible {after_burst:.1f} s after the burst's end "
                f"({len(burst_list)} deliveries in {args.burst_s:.0f} s)",
                flush=True,
            )
            time.sleep(10)  # let the last batch finish before measuring idle
            runs_before = len(deployment.reports())
            per_minute, parts = idle_cpu(process.pid, args.idle_s)
            idle_runs = len(deployment.reports()) - runs_before
        finally:
            watcher.done.set()
            poster.close()
            stop(process)
        reports = deployment.reports()
        spans = sorted((r["started_at"], r["started_at"] + r["wall_s"]) for r in reports)
        overlaps = sum(end > start for (_, end), (start, _) in itertools.pairwise(spans))
        kinds = {k: sum(r["kind"] == k for r in reports) for k in {r["kind"] for r in reports}}
        empty = sum(r["segments_loaded"] == 0 and r["kind"] == "segments" for r in reports)
        print(
            f"runs launched: {len(reports)} {kinds}; overlapping runs: {overlaps}; runs that "
            f"waited in Dagster's queue: {queued_runs(deployment)}; so at most one batch was "
            f"ever pending (the worker's next); runs that loaded nothing: {empty}"
        )
        names = part_names(deployment)
        print(
            f"idle: {per_minute:.2f} CPU-s per minute for the whole deployment over "
            f"{args.idle_s:.0f} s ({idle_runs} run(s) meanwhile); per part: "
            + ", ".join(f"{names.get(pid, pid)} {cpu:.2f}" for pid, cpu in sorted(parts.items()))
        )
        print("(the machine was shared with other work: absolute seconds are noisy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
