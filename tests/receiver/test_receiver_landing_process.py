"""The landing writer's own process: it dies with the server; a lost one is replaced."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from receiver_kit import SECRET, event, landed, landing_child, metric, post, signed_headers

from pipeline.receiver.process import ReceiverProcess

# How long to wait for an event (a process gone, a writer replaced) before calling it broken; it
# only keeps a broken receiver from hanging the suite, so it is far beyond any machine's need.
GIVE_UP_S = 60.0


def _gone(pid: int, timeout_s: float = GIVE_UP_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # dead, waiting for a parent that no longer exists to reap it
            return True
        time.sleep(0.05)
    return False


def test_sigkilled_server_takes_its_landing_process_with_it(tmp_path: Path) -> None:
    receiver = ReceiverProcess(tmp_path / "landing", secrets=[SECRET])
    child = landing_child(receiver)
    receiver.kill()
    assert _gone(child), "the landing process outlived a SIGKILLed server"


def test_lost_landing_process_is_replaced_and_deliveries_land_again(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    with ReceiverProcess(landing, secrets=[SECRET], log_path=tmp_path / "r.log") as receiver:
        first = event(1)
        assert post(receiver.webhook_url, first, signed_headers(first)).status == 204
        lost_child = landing_child(receiver)
        os.kill(lost_child, signal.SIGKILL)
        assert _gone(lost_child)
        lost = event(2)
        statuses = []
        deadline = time.monotonic() + GIVE_UP_S
        while time.monotonic() < deadline:  # a new writer is started at most once a second
            statuses.append(post(receiver.webhook_url, lost, signed_headers(lost)).status)
            if statuses[-1] == 204:
                break
            time.sleep(0.05)
        # 503 while the loss is noticed; the first delivery after it starts a new writer.
        assert statuses[-1] == 204 and set(statuses[:-1]) <= {503}, statuses
        assert metric(receiver.url, "edume_receiver_landing_restarts_total") == 1
        assert metric(receiver.url, "edume_receiver_landing_writable") == 1
        assert landing_child(receiver) != lost_child
        # The new writer's recovery sealed the lost one's segment, first delivery included.
        assert first in {d.body for d in landed(landing, include_open=False)}
    assert [d.body for d in landed(landing)].count(lost) == 1
