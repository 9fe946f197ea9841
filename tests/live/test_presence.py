"""Live worker presence: true exactly while a worker process holds the lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.live.presence import (
    LiveWorkerAlreadyRunning,
    hold_live_presence,
    live_worker_running,
)

HOLDER = """
import sys, time
from pathlib import Path
from pipeline.live.presence import hold_live_presence
with hold_live_presence(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_no_worker_ever_ran_means_not_running(tmp_path: Path) -> None:
    assert not live_worker_running(tmp_path / "warehouse.duckdb")


def test_presence_is_seen_while_held_and_gone_after(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with hold_live_presence(warehouse):
        assert live_worker_running(warehouse)
    assert not live_worker_running(warehouse)


def test_a_second_worker_is_refused_at_once(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with (
        hold_live_presence(warehouse),
        pytest.raises(LiveWorkerAlreadyRunning),
        hold_live_presence(warehouse),
    ):
        pass


def test_a_killed_worker_is_no_longer_running(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(warehouse)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert live_worker_running(warehouse)
    finally:
        holder.kill()
        holder.wait()
    assert not live_worker_running(warehouse)
