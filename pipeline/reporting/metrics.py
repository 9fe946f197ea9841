"""The receiver's ``/metrics`` (Prometheus text), read back for the report and the demo.

The demo saves the receiver's ``/metrics`` text before stopping it; ``edume-pipeline report
--metrics`` takes that file or a live receiver's URL. The text is read with prometheus_client's
own parser (the format's escaping, comments and types, exactly as Prometheus reads them). Only
the counters the report shows are kept: accepted, rejected by reason, deferred.
"""

from __future__ import annotations

import errno
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

PREFIX = "edume_receiver_"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ReceiverMetrics:
    source: str
    accepted: int = 0
    deferred: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


def parse(text: str, source: str) -> ReceiverMetrics:
    """Read the counters from Prometheus text exposition (other metrics are ignored). Raises
    ``ValueError`` for text that is not the exposition format."""
    accepted = deferred = 0
    rejected: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            value = int(sample.value)
            if sample.name == f"{PREFIX}deliveries_accepted_total":
                accepted = value
            elif sample.name == f"{PREFIX}deliveries_deferred_total":
                deferred = value
            elif sample.name == f"{PREFIX}deliveries_rejected_total":
                reason = sample.labels.get("reason", "unspecified")
                rejected[reason] = rejected.get(reason, 0) + value
    return ReceiverMetrics(source, accepted, deferred, rejected)


def fetch_text(url: str, timeout_s: float = 10.0) -> str:
    opener = urllib.request.build_opener()
    if urlsplit(url).hostname in LOOPBACK:  # never send a loopback request through a proxy
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout_s) as response:
        return response.read().decode("utf-8")


def load(location: str) -> ReceiverMetrics:
    """From a saved file or a live ``http(s)://.../metrics`` URL; ``OSError`` if unreadable or
    not Prometheus text."""
    if location.startswith(("http://", "https://")):
        text = fetch_text(location)
    else:
        text = Path(location).read_text(encoding="utf-8")
    try:
        return parse(text, location)
    except ValueError as exc:
        message = f"{location} is not Prometheus text exposition: {exc}"
        raise OSError(errno.EINVAL, message) from None
