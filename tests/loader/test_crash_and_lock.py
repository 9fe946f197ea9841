"""The loader survives SIGKILL at any point, and a second writer waits for the lock."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from bench.synthetic import write_backlog
from pipeline.loader.ndjson import load_landing
from pipeline.settings import REPO_ROOT

LOAD_IN_SMALL_BATCHES = (  # says "committed" after each batch's transaction
    "import sys; from pathlib import Path; from pipeline.loader.ndjson import load_landing; "
    "load_landing(Path(sys.argv[1]), Path(sys.argv[2]), batch_segments=2, "
    "on_batch=lambda _: print('committed', flush=True))"
)
HOLD_LOCK = (
    "import sys, time; from pathlib import Path; "
    "from pipeline.warehouse_lock import warehouse_lock\n"
    "with warehouse_lock(Path(sys.argv[1])):\n"
    "    print('locked', flush=True); time.sleep(float(sys.argv[2]))"
)


def _python(code: str, *args: str, **kwargs: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO_ROOT, text=True, **kwargs)


def test_loader_killed_at_random_points_then_rerun_loads_each_segment_exactly_once(
    tmp_path: Path,
) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "edume.duckdb"
    write_backlog(landing, events=24_000, per_segment=600)  # 40 segments, 20 transactions
    chance = random.Random(20261129)
    kills = 0
    for _ in range(6):
        loader = _python(
            LOAD_IN_SMALL_BATCHES, str(landing), str(warehouse), stdout=subprocess.PIPE
        )
        for _ in range(chance.randrange(0, 6)):  # let a few batches commit (maybe none) ...
            loader.stdout.readline()
        time.sleep(chance.uniform(0, 0.1))  # ... then kill it somewhere inside the next one
        if loader.poll() is None:
            loader.send_signal(signal.SIGKILL)
            kills += 1
        loader.wait()

    final = load_landing(landing, warehouse)

    assert kills >= 3  # the test really interrupted loads
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(
            "select count(*), count(distinct (segment, line_number)), count(distinct delivery_id) "
            "from raw.edume_events"
        ).fetchall() == [(24_000, 24_000, 24_000)]
        assert con.execute(
            "select count(*), sum(rows_loaded) from raw.edume_loaded_segments"
        ).fetchall() == [(40, 24_000)]
    assert final.segments_already_loaded + final.segments_loaded == 40


def test_a_second_writer_waits_for_the_lock_instead_of_failing(tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "edume.duckdb"
    write_backlog(landing, events=10, per_segment=10)
    holder = _python(HOLD_LOCK, str(warehouse), "1.5", stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()

        result = load_landing(landing, warehouse)

        assert time.monotonic() - started >= 1.0  # it waited for the holder
        assert result.rows_loaded == 10
    finally:
        holder.wait(timeout=10)
