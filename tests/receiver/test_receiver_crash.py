"""SIGKILL under concurrent load: every 204 survives in a sealed segment, no torn line does."""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from pathlib import Path

from receiver_kit import SECRET, event, landed, landing_child, signed_headers

from pipeline.receiver.landing_format import REJECTS_DIR
from pipeline.receiver.process import ReceiverProcess


def _client(port: int, worker: int, acknowledged: list[bytes], stop: threading.Event) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    n = 0
    try:
        while not stop.is_set():
            # Some bodies are large so that a kill can land in the middle of a big write.
            body = event(worker * 1_000_000 + n, padding="p" * (n % 7) * 20_000)
            n += 1
            connection.request("POST", "/webhooks/edume", body=body, headers=signed_headers(body))
            response = connection.getresponse()
            response.read()
            if response.status == 204:
                acknowledged.append(body)
    except (OSError, http.client.HTTPException):
        pass  # the receiver died mid-request: that delivery was never acknowledged
    finally:
        connection.close()


def test_every_acknowledged_delivery_survives_sigkill_and_no_torn_line_is_sealed(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "landing"
    # Nothing seals a segment before the cut (no size, age or idle seal), so the cut always leaves
    # open segments for recovery to decide on.
    never = ["--segment-max-bytes", str(1 << 40), "--segment-max-age", "86400"]
    receiver = ReceiverProcess(landing, secrets=[SECRET], args=[*never, "--segment-idle-seal", "0"])
    acknowledged: list[bytes] = []
    stop = threading.Event()
    clients = [
        threading.Thread(target=_client, args=(receiver.port, w, acknowledged, stop))
        for w in range(16)
    ]
    for client in clients:
        client.start()
    # Kill once 100 deliveries were acknowledged (an event, not a time); the deadline only keeps
    # a receiver that never answers from hanging the suite.
    deadline = time.monotonic() + 120
    while len(acknowledged) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(acknowledged) >= 100, "the load never got going"
    # A power cut, mid-load: the landing writer dies first, in the middle of whatever it was
    # writing, then the server. (Killing only the server lets the writer see its pipe close and
    # seal its segments cleanly before the kernel's parent-death SIGKILL reaches it, so nothing
    # would be left for recovery.)
    os.kill(landing_child(receiver), signal.SIGKILL)
    assert receiver.kill() < 0
    stop.set()
    for client in clients:
        client.join(timeout=30)
    assert list(landing.rglob("*.ndjson.open")), "the kill should leave an open segment behind"

    with ReceiverProcess(landing, secrets=[SECRET]) as restarted:  # recovery runs at start
        pass
    assert restarted.process.returncode == 0

    sealed = landed(landing, include_open=False)  # parse_line checks every line's sha256
    sealed_bodies = {delivery.body for delivery in sealed}
    assert [body for body in acknowledged if body not in sealed_bodies] == []
    assert not list(landing.rglob("*.ndjson.open"))
    rejects = landing / REJECTS_DIR
    for reject in rejects.glob("*") if rejects.exists() else []:
        assert reject.read_bytes().count(b"\n") <= 1  # only a torn tail is ever cut away
