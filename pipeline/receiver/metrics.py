"""The receiver's ``/metrics``: prometheus_client's exposition over counters kept by hand.

The hot path (one delivery) only adds to plain ints and to :class:`Histogram`, a bucket list
filled with ``bisect``; a scrape turns them into metric families (:class:`ReceiverCollector`)
and ``prometheus_client`` writes the text, with its standard process metrics (RSS, open fds, CPU,
for the server and for its landing process). Why not prometheus_client's own ``Counter`` and
``Histogram`` on the hot path: each update takes a lock, and a labelled one a dictionary lookup
under another; measured here, a ``Histogram.observe`` cost about 5 us, a ``labels(...).inc()``
about 9 us and the hand-kept histogram 1 us, against a request budget of about 50 us of CPU. The
names, types and text are the same either way.

Histograms: ``edume_receiver_request_duration_seconds`` (every request to the webhook path, from
its first ASGI call to the answer sent: every status counts, once), ``..._fsync_wait_seconds``
(a verified delivery's wait for the fdatasync that covers its line) and
``..._fsync_batch_deliveries`` (lines made durable by one fdatasync, from the landing process).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pipeline.receiver.landing import FSYNC_LINES_BUCKETS, LandingStats

if TYPE_CHECKING:
    from pipeline.receiver.app import ReceiverApp

CONTENT_TYPE = CONTENT_TYPE_LATEST
PREFIX = "edume_receiver_"
# Seconds; a 204 waits for an fsync (about 1-10 ms on a local disk), so the bulk sits low.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Histogram:
    """A histogram kept by hand: per-bucket counts (the last is ``+Inf``) and a sum. Not locked:
    only the event loop's thread observes and scrapes it."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        return _histogram_family(name, documentation, self.bounds, self.counts, self.sum)


def _histogram_family(
    name: str, documentation: str, bounds: Sequence[float], counts: Sequence[int], total: float
) -> HistogramMetricFamily:
    cumulative, buckets = 0, []
    for bound, count in zip((*map(str, bounds), "+Inf"), counts, strict=True):
        cumulative += count
        buckets.append((bound, cumulative))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=total)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, documentation, value=value)


def _labelled(name: str, documentation: str, label: str, values: dict[str, int]) -> Metric:
    family = CounterMetricFamily(PREFIX + name, documentation, labels=[label])
    for value, count in sorted(values.items()):
        family.add_metric([value], count)
    return family


class ReceiverCollector:
    """Reads the app's counters at scrape time; names as before prometheus_client was used."""

    def __init__(self, app: ReceiverApp) -> None:
        self.app = app
        self._started = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        app, counters = self.app, self.app.counters
        yield _counter(
            "deliveries_accepted",
            "Deliveries verified, landed and fsynced (answered 204).",
            counters.accepted,
        )
        yield _labelled(
            "deliveries_rejected",
            "Requests refused for client input, by reason (401, 400, 413, 415, 408, 404, 405).",
            "reason",
            counters.rejected,
        )
        yield _counter(
            "deliveries_deferred",
            "Verified deliveries answered 503 because the landing could not be written.",
            counters.deferred,
        )
        yield _labelled(
            "deliveries_by_media_type",
            "Accepted deliveries by Content-Type media type (none: no header; at most 32 values, "
            "then other).",
            "media_type",
            counters.media_types,
        )
        yield _labelled(
            "deliveries_by_content_encoding",
            "Accepted deliveries by Content-Encoding (none: no header).",
            "content_encoding",
            counters.encodings,
        )
        stats = app.writer.stats if app.writer is not None else LandingStats()
        for name, documentation, value in (
            ("landed_lines", "Lines fsynced into segments.", stats.landed_lines),
            ("landed_bytes", "Bytes fsynced into segments.", stats.landed_bytes),
            ("fsync_batches", "Group commits (one fdatasync each).", stats.fsync_batches),
            ("sealed_segments", "Segments sealed by rename.", stats.sealed_segments),
            ("landing_write_errors", "Failed writes or fsyncs.", stats.write_errors),
            (
                "landing_restarts",
                "Landing writer processes started again after one was lost.",
                counters.writer_restarts,
            ),
        ):
            yield _counter(name, documentation, value)
        yield app.request_seconds.family(
            PREFIX + "request_duration_seconds",
            "Time from a webhook request's arrival to its answer, whatever the status.",
        )
        yield app.fsync_wait_seconds.family(
            PREFIX + "fsync_wait_seconds",
            "Time a verified delivery waited for the fdatasync covering its line.",
        )
        yield _histogram_family(
            PREFIX + "fsync_batch_deliveries",
            "Deliveries made durable by one fdatasync (group commit's batch size).",
            FSYNC_LINES_BUCKETS,
            stats.fsyncs_by_lines,
            stats.landed_lines,
        )
        healthy = 1 if app.writer is not None and app.writer.healthy else 0
        yield GaugeMetricFamily(
            PREFIX + "landing_writable", "1 when the last landing write succeeded.", value=healthy
        )
        yield GaugeMetricFamily(
            PREFIX + "segment_idle_seal_seconds",
            "A segment that got no line for this long is sealed (0: off).",
            value=app.config.idle_seal_s or 0,
        )
        yield GaugeMetricFamily(
            PREFIX + "up_seconds",
            "Seconds since the process started.",
            value=round(time.monotonic() - self._started, 3),
        )


def build_registry(app: ReceiverApp, landing_pid: Callable[[], int | None]) -> CollectorRegistry:
    """A registry of the app's metrics plus the process metrics of the server
    (``process_*``) and of its landing process (``edume_receiver_landing_process_*``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReceiverCollector(app))
    ProcessCollector(registry=registry)
    ProcessCollector(namespace=PREFIX + "landing", pid=_pid_text(landing_pid), registry=registry)
    return registry


def _pid_text(landing_pid: Callable[[], int | None]) -> Callable[[], str]:
    """The landing process's pid for ProcessCollector; while there is none, a pid that cannot
    exist, for which it reports nothing."""

    def pid() -> str:
        value = landing_pid()
        return str(value) if value is not None else "0"

    return pid
