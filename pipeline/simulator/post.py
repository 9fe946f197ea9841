"""The simulator's I/O: POST deliveries to a receiver, or land them as sealed segments directly.

Posting uses a bounded pool of threads, one keep-alive ``http.client`` connection each (no new
dependency). Like eduMe, a delivery that meets a connection error, a 5xx or a 429 is retried
with backoff; a 4xx is an answer, not a failure. Every delivery ends with a status (or the last
error), so the caller knows that each one was acknowledged.
"""

from __future__ import annotations

import http.client
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.receiver.landing import LandingWriter
from pipeline.receiver.landing_format import Authentication, format_line
from pipeline.simulator.deliveries import Delivery
from pipeline.simulator.progress import Progress

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 6
TIMEOUT_S = 30.0


@dataclass
class PostReport:
    """Per status code, how many deliveries got it; ``unexpected`` lists the surprises."""

    statuses: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    retries: int = 0
    seconds: float = 0.0

    @property
    def accepted(self) -> int:
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    @property
    def rejected(self) -> int:
        return sum(count for status, count in self.statuses.items() if 400 <= status < 500)


class _Sender:
    """One thread's keep-alive connection to the receiver."""

    def __init__(self, url: str, bearer_token: str | None = None) -> None:
        self.bearer_token = bearer_token
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url must be an http(s) URL, got {url!r}")
        self.path = parts.path or "/"
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        self._connect = lambda: connection_class(parts.hostname, parts.port, timeout=TIMEOUT_S)
        self.connection = self._connect()

    def send(self, delivery: Delivery) -> tuple[int, int]:
        """POST until answered; returns (status, retries). Status 0: never answered."""
        headers = {
            "Content-Type": "application/json",
            "X-Edume-Signature": delivery.signature,
            "User-Agent": "edume-pipeline-simulator",
            **({"Authorization": f"Bearer {self.bearer_token}"} if self.bearer_token else {}),
        }
        for attempt in range(MAX_ATTEMPTS):
            try:
                self.connection.request("POST", self.path, body=delivery.body, headers=headers)
                response = self.connection.getresponse()
                response.read()
                if response.status not in RETRY_STATUSES:
                    return response.status, attempt
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = self._connect()
            time.sleep(min(0.05 * 2**attempt, 2.0))
        return 0, MAX_ATTEMPTS - 1


def post_deliveries(
    url: str,
    deliveries: Sequence[Delivery],
    concurrency: int = 8,
    progress_label: str | None = "posting",
    bearer_token: str | None = None,
) -> PostReport:
    """Send every delivery; return once each has an answer. Raises ``ValueError`` for a bad URL.

    A delivery is "unexpected" when a valid one is not accepted (2xx) or a forged one is. Once
    one delivery has gone unanswered through every retry the receiver is taken to be down: the
    rest are not sent (status 0, "not sent") so a dead receiver fails fast instead of retrying
    every delivery for minutes.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    _Sender(url).connection.close()  # validate the URL before starting threads
    work: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(deliveries)):
        work.put(index)
    statuses: list[int] = [0] * len(deliveries)
    retries = [0] * concurrency
    progress = Progress(progress_label, len(deliveries)) if progress_label else None
    started = time.monotonic()
    receiver_down = threading.Event()

    def worker(slot: int) -> None:
        sender = _Sender(url, bearer_token)
        try:
            while not receiver_down.is_set():
                try:
                    index = work.get_nowait()
                except queue.Empty:
                    return
                statuses[index], retried = sender.send(deliveries[index])
                retries[slot] += retried
                if statuses[index] == 0:
                    receiver_down.set()
                if progress:
                    progress.advance()
        finally:
            sender.connection.close()

    threads = [
        threading.Thread(target=worker, args=(slot,), name=f"post-{slot}", daemon=True)
        for slot in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if progress:
        progress.finish()
    report = PostReport(Counter(statuses), retries=sum(retries), seconds=time.monotonic() - started)
    if receiver_down.is_set():
        report.unexpected.append(
            f"{url} stopped answering: {statuses.count(0)} deliveries unanswered or not sent"
        )
    for index, (delivery, status) in enumerate(zip(deliveries, statuses, strict=True)):
        if (200 <= status < 300) != delivery.should_be_accepted:
            answer = status or "no answer"
            report.unexpected.append(f"delivery #{index} ({delivery.kind}) got {answer}")
    return report


def land_deliveries(
    landing_dir: Path, deliveries: Sequence[Delivery], received_at: datetime | None = None
) -> int:
    """Write the deliveries a receiver would accept as sealed segments; return how many lines.

    Forged deliveries are skipped (a receiver answers them 401 and lands nothing); duplicates are
    landed twice, as a receiver would.
    """
    return land_bodies(
        landing_dir, (d.body for d in deliveries if d.should_be_accepted), received_at
    )


def land_bodies(
    landing_dir: Path, bodies: Iterable[bytes], received_at: datetime | None = None
) -> int:
    """Land each body as one line (streamed, bounded memory), recorded as HMAC-verified over
    the raw bytes, as the receiver records eduMe's deliveries; return how many lines."""
    moment = received_at or datetime.now(UTC)
    auth = Authentication("hmac", "raw", 0, None)
    with LandingWriter(landing_dir) as writer:
        return writer.write_all(format_line(body, auth, moment) for body in bodies)
