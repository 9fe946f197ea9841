"""``edume-pipeline materialize`` SIGKILLed (the whole process group, dbt included) at random
points, then re-run to completion, ends exactly where an uninterrupted run ends.

Slow (2-3 minutes on 2 cores: one reference run, three killed ones, the final run). The kill
points are drawn by a seeded generator: after a number of log lines from the first half of the
reference run's log (start-up, dbt parse, load, dbt models), then from the second half (dbt
models and tests), then a moment inside the export step. Set ``EDUME_CRASH_SEED`` to replay
another sequence; the seed and each kill's last log line are printed.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from materialize_kit import Pipeline, copy_dbt_project

from pipeline.export import DESIGNED_MARTS, mart_parquet_glob
from pipeline.receiver.landing_format import SEALED_GLOB
from pipeline.simulator.deliveries import Noise, stream_bodies
from pipeline.simulator.generate import default_end, journeys
from pipeline.simulator.post import land_bodies

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("EDUME_CRASH_SEED", "20261129"))
KILLS = 3
EXPORT_STARTED = "exports__marts - STEP_START"
EXPORT_STEP_S = 0.1  # how long the export step of this small company takes
AS_OF = "2026-11-05 00:00:00"  # after the simulated company's 90 days (default_end())
LEARNERS = 60
LINES_PER_SEGMENT = 400


@dataclass(frozen=True)
class Kill:
    printed_lines: int  # non-empty log lines when it was killed
    last_line: str  # what it was doing
    after_success: bool  # it had already printed "materialize: OK" (only exiting was left)
    left_aside: list[str]  # hidden files in the export dir right after the kill


def land_company(landing: Path) -> int:
    """A simulated company (duplicates, disorder, unknown types included) as a few sealed
    segments; returns the number of lines landed."""
    truth, batches = journeys(LEARNERS, SEED, default_end())
    bodies = list(stream_bodies(batches, Noise(), SEED, truth))
    received_at = datetime(2026, 11, 2, tzinfo=UTC)
    return sum(
        land_bodies(landing, bodies[start : start + LINES_PER_SEGMENT], received_at)
        for start in range(0, len(bodies), LINES_PER_SEGMENT)
    )


def _lines(log: Path) -> list[str]:
    return log.read_text(errors="replace").splitlines()


def kill_when(
    pipeline: Pipeline, log: Path, ready: Callable[[list[str]], bool], delay_s: float = 0.0
) -> Kill | None:
    """Start a run; once its log satisfies ``ready``, wait ``delay_s`` and SIGKILL its whole
    process group. None when the run ended first."""
    run = pipeline.start(log)
    try:
        while run.poll() is None and not ready(_lines(log)):
            time.sleep(0.01)
        time.sleep(delay_s)
        if run.poll() is not None:
            return None
        os.killpg(run.pid, signal.SIGKILL)
        printed = [line for line in _lines(log) if line.strip()]
        last = printed[-1][-160:] if printed else ""
        finished = any(line == "materialize: OK" for line in printed)
        exports = pipeline.exports
        aside = sorted(p.name for p in exports.glob(".*")) if exports.is_dir() else []
        return Kill(len(printed), last, finished, aside)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()


def at_line(count: int) -> Callable[[list[str]], bool]:
    return lambda lines: len(lines) >= count


def exporting(lines: list[str]) -> bool:
    return any(EXPORT_STARTED in line for line in lines)


def ordered_rows(exports: Path, mart: str) -> list[tuple]:
    """Every row of ``mart``'s export, whatever its layout (one file, or monthly partitions)."""
    with duckdb.connect() as con:
        return con.execute(
            "select * from read_parquet(?, hive_partitioning = false) order by all",
            [mart_parquet_glob(exports, mart)],
        ).fetchall()


@dataclass(frozen=True)
class Outcome:
    landed_lines: int
    segments: set[str]
    reference: Pipeline
    crashed: Pipeline
    kills: list[Kill]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    root = tmp_path_factory.mktemp("materialize-crash")
    project = copy_dbt_project(root / "dbt_project", as_of=AS_OF)
    reference = Pipeline.under(root / "reference", project)
    crashed = Pipeline.under(root / "crashed", project)
    landed_lines = land_company(crashed.landing)
    shutil.copytree(crashed.landing, reference.landing)
    segments = {str(p.relative_to(crashed.landing)) for p in crashed.landing.glob(SEALED_GLOB)}

    reference_log = root / "reference.log"
    run = reference.start(reference_log)
    assert run.wait(timeout=300) == 0, "\n".join(_lines(reference_log)[-40:])
    total = len(_lines(reference_log))

    chance = random.Random(SEED)
    print(f"materialize crash test: seed {SEED} (EDUME_CRASH_SEED), reference log {total} lines")
    points = [  # somewhere in the first half, the second half, and the short export step
        (at_line(chance.randrange(1, total // 2)), 0.0),
        (at_line(chance.randrange(total // 2, total)), 0.0),
        (exporting, chance.uniform(0.0, EXPORT_STEP_S)),
    ]
    kills = []
    for attempt, (ready, delay_s) in enumerate(points):
        kill = kill_when(crashed, root / f"killed-{attempt}.log", ready, delay_s)
        print(f"  kill {attempt}: {kill}")
        if kill is not None:
            kills.append(kill)
    final = crashed.materialize()
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    return Outcome(landed_lines, segments, reference, crashed, kills)


def test_runs_were_really_killed_mid_way(outcome: Outcome) -> None:
    # Timing decides whether the export kill lands inside the 0.1 s step; the others always do.
    assert sum(not kill.after_success for kill in outcome.kills) >= KILLS - 1, outcome.kills


def test_every_segment_is_in_the_manifest_exactly_once(outcome: Outcome) -> None:
    with duckdb.connect(str(outcome.crashed.warehouse), read_only=True) as con:
        manifest = con.execute("select segment from raw.edume_loaded_segments").fetchall()
    assert sorted(s for (s,) in manifest) == sorted(outcome.segments)


def test_raw_events_hold_each_landed_line_exactly_once(outcome: Outcome) -> None:
    with duckdb.connect(str(outcome.crashed.warehouse), read_only=True) as con:
        counts = con.execute(
            "select count(*), count(distinct (segment, line_number)) from raw.edume_events"
        ).fetchone()
    assert counts == (outcome.landed_lines, outcome.landed_lines)


def test_exports_hold_the_same_files_as_the_uninterrupted_run(outcome: Outcome) -> None:
    names = {p.name for p in outcome.reference.exports.iterdir()}
    assert {p.name for p in outcome.crashed.exports.iterdir()} == names
    assert sum(name.endswith(".parquet") for name in names) >= 10


def test_every_mart_equals_the_uninterrupted_runs_row_for_row(outcome: Outcome) -> None:
    for mart in DESIGNED_MARTS:
        expected = ordered_rows(outcome.reference.exports, mart)
        assert ordered_rows(outcome.crashed.exports, mart) == expected, mart
