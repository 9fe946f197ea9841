"""The live worker interrupted in the middle of a batch, then started again, ends with the same
marts as a worker that was never interrupted. Two ways: SIGKILL (its whole process group), and
two SIGTERMs (the second abandons the batch: exit 130, with dbt still building in the worker's
process).

``as_of`` is pinned in a copy of the dbt project, so the time-dependent columns are comparable.
The comparison is a multiset difference both ways (SQL's ``EXCEPT ALL``), mart by mart. The
restarted worker finds every segment already in the manifest (the killed batch's load had
committed) and still rebuilds: the marts were not built from that manifest yet ("catch-up").
No timing is asserted; the deadlines are generous (minutes) because each start parses the dbt
project and builds every model on a loaded 2-core machine.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from bench.live_kit import Deployment, marts, stop
from pipeline.simulator.deliveries import Noise, stream_bodies
from pipeline.simulator.generate import default_end, journeys
from pipeline.simulator.post import land_bodies
from tests.defs.materialize_kit import copy_dbt_project

# Three worker starts and two full builds, each under DEADLINE_S; the suite default is 900 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(7200)]

SEED = int(os.environ.get("EDUME_CRASH_SEED", "20261202"))
AS_OF = "2026-11-05 00:00:00"  # after the simulated company's 90 days (default_end())
LEARNERS = 20
LINES_PER_SEGMENT = 300
# dagster-dbt logs this (INFO) as it starts the `dbt build` subprocess: the load has committed.
DBT_STARTING = "Running dbt command"
# Generous: one worker start plus a full build took 11 minutes on the 2-core machine this was
# written on, shared with 7 other busy engineers (about a minute when quiet).
DEADLINE_S = 1800.0


def land_company(landing: Path) -> int:
    truth, batches = journeys(LEARNERS, SEED, default_end())
    bodies = list(stream_bodies(batches, Noise(), SEED, truth))
    received_at = datetime(2026, 11, 2, tzinfo=UTC)
    return sum(
        land_bodies(landing, bodies[start : start + LINES_PER_SEGMENT], received_at)
        for start in range(0, len(bodies), LINES_PER_SEGMENT)
    )


def run_until_built(deployment: Deployment) -> list[dict]:
    """Start the worker, wait for a successful run, stop it; its run records."""
    process = deployment.start("live")
    try:
        deployment.wait_for(
            lambda: any(r["success"] for r in deployment.reports()),
            time.monotonic() + DEADLINE_S,
            "a successful run",
            process,
        )
    finally:
        assert stop(process) == 0, deployment.tail()
    return deployment.reports()


def kill(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)  # the whole group: dbt too, if it ran in a child


def abandon(process: subprocess.Popen[bytes]) -> None:
    """Two SIGTERMs: the first asks the worker to stop after its batch, the second abandons it."""
    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)


@dataclass(frozen=True)
class Interrupted:
    deployment: Deployment
    exit_code: int
    runs: list[dict]  # the interrupted worker's finished runs
    rerun: list[dict]  # the restarted worker's


def interrupt_then_rerun(
    deployment: Deployment, interrupt: Callable[[subprocess.Popen[bytes]], None]
) -> Interrupted:
    """Start the worker, ``interrupt`` it inside its first dbt build, then start it again until
    it has built."""
    process = deployment.start("live")
    try:
        deployment.wait_for(
            lambda: DBT_STARTING in deployment.log_text(),
            time.monotonic() + DEADLINE_S,
            "the dbt build",
            process,
        )
        time.sleep(random.Random(SEED).uniform(0.5, 3.0))  # somewhere inside the dbt build
        interrupt(process)
        exit_code = process.wait(timeout=DEADLINE_S)
    finally:
        stop(process)
    runs = deployment.reports()
    if deployment.stats.exists():
        deployment.stats.rename(deployment.root / "interrupted-stats.jsonl")
    return Interrupted(deployment, exit_code, runs, run_until_built(deployment))


@dataclass(frozen=True)
class Outcome:
    reference: Deployment
    landed_lines: int
    interrupted: dict[str, Interrupted]  # "killed" (SIGKILL), "abandoned" (two SIGTERMs)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    root = tmp_path_factory.mktemp("live-kill")
    project = copy_dbt_project(root / "dbt_project", as_of=AS_OF)
    reference = Deployment.under(root / "reference", project)
    landed_lines = land_company(reference.landing)
    run_until_built(reference)
    interrupted = {}
    for name, interrupt in (("killed", kill), ("abandoned", abandon)):
        deployment = Deployment.under(root / name, project)
        shutil.copytree(reference.landing, deployment.landing, dirs_exist_ok=True)
        interrupted[name] = interrupt_then_rerun(deployment, interrupt)
    return Outcome(reference, landed_lines, interrupted)


WAYS = ["killed", "abandoned"]


@pytest.mark.parametrize("way", WAYS)
def test_the_worker_stopped_before_its_batch_finished(outcome: Outcome, way: str) -> None:
    assert outcome.interrupted[way].runs == []


def test_a_kill_and_two_sigterms_end_the_worker_as_documented(outcome: Outcome) -> None:
    assert outcome.interrupted["killed"].exit_code == -signal.SIGKILL
    assert outcome.interrupted["abandoned"].exit_code == 130  # "batch abandoned"


@pytest.mark.parametrize("way", WAYS)
def test_the_restarted_worker_catches_up_without_new_segments(outcome: Outcome, way: str) -> None:
    rerun = outcome.interrupted[way].rerun
    assert [r["kind"] for r in rerun] == ["catch_up"]
    assert rerun[0]["segments_loaded"] == 0


@pytest.mark.parametrize("way", WAYS)
def test_raw_events_hold_each_landed_line_exactly_once(outcome: Outcome, way: str) -> None:
    warehouse = outcome.interrupted[way].deployment.warehouse
    with duckdb.connect(str(warehouse), read_only=True) as con:
        counts = con.execute(
            "select count(*), count(distinct (segment, line_number)) from raw.edume_events"
        ).fetchone()
    assert counts == (outcome.landed_lines, outcome.landed_lines)


@pytest.mark.parametrize("way", WAYS)
def test_every_mart_equals_the_uninterrupted_workers_both_ways(outcome: Outcome, way: str) -> None:
    expected = marts(outcome.reference.warehouse)
    actual = marts(outcome.interrupted[way].deployment.warehouse)
    assert sorted(actual) == sorted(expected)
    assert len(expected) >= 8
    for name, rows in expected.items():
        assert not rows - actual[name], f"{name}: rows only in the uninterrupted run"
        assert not actual[name] - rows, f"{name}: rows only in the interrupted-and-rerun one"
