"""The receiver's ``/metrics`` (Prometheus text), read back for the report and the demo.

The demo saves the receiver's ``/metrics`` text before stopping it; ``edume-pipeline report
--metrics`` takes that file or a live receiver's URL. Only the counters the report shows are
kept: accepted, rejected by reason, deferred.
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PREFIX = "edume_receiver_"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


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
    """Read the counters from Prometheus text exposition; unknown lines are ignored."""
    accepted = deferred = 0
    rejected: dict[str, int] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or not match["name"].startswith(PREFIX):
            continue
        name = match["name"].removeprefix(PREFIX)
        value = int(float(match["value"]))
        labels = dict(_LABEL.findall(match["labels"] or ""))
        if name == "deliveries_accepted_total":
            accepted = value
        elif name == "deliveries_deferred_total":
            deferred = value
        elif name == "deliveries_rejected_total":
            reason = labels.get("reason", "unspecified")
            rejected[reason] = rejected.get(reason, 0) + value
    return ReceiverMetrics(source, accepted, deferred, rejected)


def fetch_text(url: str, timeout_s: float = 10.0) -> str:
    opener = urllib.request.build_opener()
    if urlsplit(url).hostname in LOOPBACK:  # never send a loopback request through a proxy
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout_s) as response:
        return response.read().decode("utf-8")


def load(location: str) -> ReceiverMetrics:
    """From a saved file or a live ``http(s)://.../metrics`` URL; ``OSError`` if unreadable."""
    if location.startswith(("http://", "https://")):
        return parse(fetch_text(location), location)
    return parse(Path(location).read_text(encoding="utf-8"), location)
