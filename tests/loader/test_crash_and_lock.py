"""The loader survives SIGKILL at any point, and a second writer waits for the lock."""

from __future__ import annotations

import logging
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb

from bench.synthetic import write_backlog
from pipeline.loader.ndjson import LoadResult, load_landing
from pipeline.settings import REPO_ROOT

# One segment per transaction; after each commit the loader says so and waits for a line on
# stdin: the test lets it run one batch at a time, so a kill always finds it alive mid-load.
LOAD_ONE_BATCH_AT_A_TIME = (
    "import sys; from pathlib import Path; from pipeline.loader.ndjson import load_landing; "
    "load_landing(Path(sys.argv[1]), Path(sys.argv[2]), batch_segments=1, "
    "on_batch=lambda _: (print('committed', flush=True), sys.stdin.readline()))"
)
# Holds the warehouse lock until it reads a line on stdin.
HOLD_LOCK = (
    "import sys; from pathlib import Path; "
    "from pipeline.warehouse_lock import warehouse_lock\n"
    "with warehouse_lock(Path(sys.argv[1])):\n"
    "    print('locked', flush=True); sys.stdin.readline()"
)


def _python(code: str, *args: str, **kwargs: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO_ROOT, text=True, **kwargs)


def test_loader_killed_at_random_points_then_rerun_loads_each_segment_exactly_once(
    tmp_path: Path,
) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "edume.duckdb"
    write_backlog(landing, events=24_000, per_segment=600)  # 40 segments, 40 transactions
    chance = random.Random(20261129)
    kills = 0
    for _ in range(6):
        loader = _python(
            LOAD_ONE_BATCH_AT_A_TIME,
            str(landing),
            str(warehouse),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(chance.randrange(0, 6)):  # let a few batches commit (maybe none) ...
            assert loader.stdout.readline() == "committed\n"
            loader.stdin.write("\n")
            loader.stdin.flush()
        # ... then kill it somewhere in the next batch, or once it has committed that one too:
        # it cannot go further, so it is alive whatever the machine's speed.
        time.sleep(chance.uniform(0, 0.1))
        assert loader.poll() is None
        loader.send_signal(signal.SIGKILL)
        kills += 1
        loader.wait()

    final = load_landing(landing, warehouse)

    assert kills == 6  # the test really interrupted loads: at most 36 of the 40 batches ran
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
    holder = _python(HOLD_LOCK, str(warehouse), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    waiting = threading.Event()

    class _OnWaiting(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting for the warehouse lock" in record.getMessage():
                waiting.set()

    results: list[LoadResult] = []
    loader = threading.Thread(target=lambda: results.append(load_landing(landing, warehouse)))
    logging.getLogger("pipeline.loader.ndjson").addHandler(handler := _OnWaiting())
    try:
        assert holder.stdout.readline().strip() == "locked"
        loader.start()

        # A hang guard, not a speed limit: the loader says it waits as soon as it finds the lock.
        assert waiting.wait(timeout=120), "the loader never said it was waiting for the lock"
        assert loader.is_alive() and not results  # it waits instead of failing or loading
        assert not warehouse.exists()  # and has not touched the warehouse
        holder.stdin.write("\n")  # release
        holder.stdin.flush()
        loader.join(timeout=120)
    finally:
        logging.getLogger("pipeline.loader.ndjson").removeHandler(handler)
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=10)

    assert [r.rows_loaded for r in results] == [10]
