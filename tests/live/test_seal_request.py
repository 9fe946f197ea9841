"""A live worker with nothing to do asks the receiver to seal what it holds, so a delivery that
finds it waiting is loaded without waiting for the receiver's idle seal.

A real receiver process whose idle seal and segment age are an hour away: only the worker's seal
request can seal the deliveries before then, so their loading proves the request. No timing is
asserted; the deadline (well under the hour) only keeps a broken loop from hanging the suite: the
worker's first batch builds every model, which takes minutes on a loaded 2-core machine.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest

from bench.live_kit import SECRET, Poster
from pipeline.live.worker import LiveWorker
from pipeline.receiver.process import ReceiverProcess
from pipeline.simulator.simulation import build

pytestmark = pytest.mark.slow

LOADED_DEADLINE_S = 1500.0  # < the 3600 s seals below, so only a request can pass this test


def _segments_loaded(stats: Path) -> int:
    if not stats.exists():
        return 0
    return sum(json.loads(line)["segments_loaded"] for line in stats.read_text().splitlines())


@pytest.mark.timeout(2400)
def test_a_waiting_worker_has_new_deliveries_sealed_and_loads_them(
    live_worker: LiveWorker, tmp_path: Path
) -> None:
    stats = tmp_path / "stats.jsonl"
    live_worker.options = dataclasses.replace(live_worker.options, stats_path=stats)
    args = ["--segment-max-age", "3600", "--segment-idle-seal", "3600"]
    deliveries = [d for d in build(2, 5, SECRET.encode()).deliveries if d.should_be_accepted]
    with ReceiverProcess(live_worker.landing, secrets=[SECRET], args=args) as receiver:
        loop = threading.Thread(target=live_worker.run_forever, name="live-loop", daemon=True)
        loop.start()
        poster = Poster(receiver.webhook_url)
        try:
            assert {poster.post(delivery) for delivery in deliveries} == {204}
            deadline = time.monotonic() + LOADED_DEADLINE_S
            while _segments_loaded(stats) == 0:
                assert loop.is_alive(), "the worker's loop ended"
                assert time.monotonic() < deadline, "no delivery sealed and loaded"
                time.sleep(0.5)
        finally:
            poster.close()
            live_worker.stop.set()
            loop.join(LOADED_DEADLINE_S)
    assert not list(live_worker.landing.rglob("*.ndjson.open"))  # the receiver sealed the rest
