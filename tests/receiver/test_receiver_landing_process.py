"""The landing writer's own process: it lives and dies with the server, and losing it is a 503."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from receiver_kit import SECRET, event, landed, metric, post, signed_headers

from pipeline.receiver.process import ReceiverProcess


def _landing_child(receiver: ReceiverProcess) -> int:
    children = Path(f"/proc/{receiver.pid}/task/{receiver.pid}/children").read_text().split()
    assert len(children) == 1, f"expected one landing process, found {children}"
    return int(children[0])


def _gone(pid: int, timeout_s: float = 5.0) -> bool:
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
    child = _landing_child(receiver)
    receiver.kill()
    assert _gone(child), "the landing process outlived a SIGKILLed server"


def test_lost_landing_process_answers_503_and_never_204(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    with ReceiverProcess(landing, secrets=[SECRET], log_path=tmp_path / "r.log") as receiver:
        first = event(1)
        assert post(receiver.webhook_url, first, signed_headers(first)).status == 204
        os.kill(_landing_child(receiver), signal.SIGKILL)
        lost = event(2)
        for _ in range(50):  # until the server has read the end of the pipe
            reply = post(receiver.webhook_url, lost, signed_headers(lost))
            assert reply.status == 503
            if metric(receiver.url, "edume_receiver_landing_writable") == 0:
                break
            time.sleep(0.05)
        assert metric(receiver.url, "edume_receiver_landing_writable") == 0
        assert lost not in {d.body for d in landed(landing)}
    assert first in {d.body for d in landed(landing)}
