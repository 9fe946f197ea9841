"""Durable landing: NDJSON segments, group-commit fsync, sealing and crash recovery. Files only.

Callers hand a :class:`LandingWriter` finished lines
(:func:`pipeline.receiver.landing_format.format_line`). A writer thread ("lane") takes whatever
has queued up since its last round, appends it to its open segment with one ``write``,
``fdatasync``s it, and only then resolves every waiting future: many concurrent requests share
one fsync (group commit), and a future resolves only once the fsync covering its line has
returned. With several lanes (``lanes``; the server uses 8) each owns its segments, so one
lane's flush overlaps the next lane's round instead of queueing behind it.

Segments are ``<landing>/received_date=YYYY-MM-DD/<segment_id>.ndjson.open`` while appended to and
are sealed by atomic rename to ``<segment_id>.ndjson`` when they reach ``max_segment_bytes``, when
they are ``max_segment_age_s`` old, when no line was appended for ``idle_seal_s`` (if set: under a
trickle the loader then sees each delivery within seconds, while under load lines keep coming and
segments grow to the size or age limit), on request (below), and on :meth:`LandingWriter.close`.
A line's partition is its own ``received_at`` date. Segment ids carry host, pid and a random
token, so several writers (several receivers behind a load balancer, the simulator) can share one
landing directory; each holds an exclusive ``flock`` on its open segments, which is how
:func:`recover` tells a live writer's segment from one a crashed process left behind.

**Seal requests.** A consumer that has caught up and waits for data (the live worker) sets the
mtime of ``<landing>/_seal_request`` to the current time
(:func:`pipeline.loader.landing_watch.request_seal`). While the idle seal is on, each lane that
holds lines looks at that file every ``SEAL_REQUEST_CHECK_S`` and seals every segment it opened
at or before the request, without waiting for the idle seal (lines appended after the request go
in too: they are as welcome). A busy consumer asks nothing; it asks when a batch ends and nothing
is sealed, so this adds at most one segment per lane per batch, and under load segments hold a
batch's worth of lines (or seal by size or age first). With the idle seal off, requests are
ignored too: segments seal by size and age only.

Usable outside the server (the simulator and tests land files through it)::

    with LandingWriter(Path("landing")) as writer:
        writer.write_all(format_line(body, auth, now) for body in bodies)  # returns once durable
        future = writer.append(line)   # concurrent.futures.Future, resolved after the fsync
        future.result()
    # leaving the block seals every open segment

A failed write or fsync (disk full, read-only or vanished landing) fails the futures of that
round with :class:`LandingUnavailable`, cuts the segment back to its last durable byte and seals
it; the next round opens a fresh segment, so the writer recovers by itself when space returns.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import queue
import re
import secrets
import socket
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.receiver.landing_format import (
    OPEN_SUFFIX,
    PARTITION_PREFIX,
    REJECTS_DIR,
    SEAL_REQUEST,
    SEALED_SUFFIX,
    parse_line,
)

DEFAULT_MAX_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_SEGMENT_AGE_S = 60.0
DEFAULT_IDLE_SEAL_S = 1.0  # what the server uses (serve --segment-idle-seal); the library: off
DEFAULT_LANES = 1  # the server asks for 8 (serve --landing-lanes)
SEAL_REQUEST_CHECK_S = 0.05  # how often a lane holding lines looks for a seal request
_MAX_ROUND_BYTES = 8 * 1024 * 1024  # one round's write; bounds the latency of a huge backlog
_WRITE_ALL_CHUNK_BYTES = 4 * 1024 * 1024
_LINE_PREFIX = b'{"received_at":"'  # format_line writes received_at first, so the date is here
_DATE = re.compile(rb"\d{4}-\d{2}-\d{2}")
_FRESH_EMPTY_SEGMENT_S = 60.0  # an empty, unlocked .open younger than this may be mid-creation
_STOP = object()
_PARTITIONS: dict[bytes, str] = {}  # date bytes already checked -> partition name
_PARTITIONS_KEPT = 64


class LandingUnavailable(OSError):
    """The line could not be made durable (disk full, landing unwritable). Retry later."""


# Upper bounds of the "lines made durable by one fdatasync" histogram (group commit's batch sizes).
FSYNC_LINES_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_SCALAR_STATS = 5


@dataclass
class LandingStats:
    """Counters since the writer started; read from any thread (ints are updated atomically)."""

    landed_lines: int = 0
    landed_bytes: int = 0
    fsync_batches: int = 0
    sealed_segments: int = 0
    write_errors: int = 0
    # fsyncs by how many lines each made durable: [i] counts those with at most
    # FSYNC_LINES_BUCKETS[i] lines (and more than the bound before); the last, more than them all.
    fsyncs_by_lines: list[int] = field(default_factory=lambda: [0] * (len(FSYNC_LINES_BUCKETS) + 1))

    def as_record(self) -> tuple[int, ...]:
        """Every counter, flat (what the landing process sends its parent)."""
        return (
            self.landed_lines,
            self.landed_bytes,
            self.fsync_batches,
            self.sealed_segments,
            self.write_errors,
            *self.fsyncs_by_lines,
        )

    @classmethod
    def from_record(cls, values: tuple[int, ...]) -> LandingStats:
        """Inverse of :meth:`as_record`."""
        return cls(*values[:_SCALAR_STATS], fsyncs_by_lines=list(values[_SCALAR_STATS:]))


RECORD_FIELDS = len(LandingStats().as_record())


@dataclass
class _Pending:
    partition: str
    data: bytes
    lines: int
    future: Future[None]


@dataclass
class _Segment:
    segment_id: str
    path: Path
    fd: int
    opened_at: float
    last_line_at: float  # when a line was last appended (monotonic), for the idle seal
    durable_size: int = 0
    opened_ns: int = 0  # when it was opened on the wall clock (time.time_ns), for seal requests


@dataclass
class RecoveryReport:
    """What :func:`recover` did: segments sealed and bytes cut into ``_rejects/``."""

    sealed: list[Path] = field(default_factory=list)
    rejected_bytes: int = 0


def line_partition(line: bytes) -> str:
    """``received_date=YYYY-MM-DD`` for a line made by ``format_line``; ``ValueError`` otherwise."""
    date = line[len(_LINE_PREFIX) : len(_LINE_PREFIX) + 10]
    if not line.startswith(_LINE_PREFIX):
        raise ValueError("not a landing line: it must come from landing_format.format_line")
    if line.find(b"\n") != len(line) - 1:
        raise ValueError("a landing line is exactly one line ending in a newline")
    partition = _PARTITIONS.get(date)  # per request on the server: skip the regex for known dates
    if partition is None:
        if not _DATE.fullmatch(date):
            raise ValueError("not a landing line: it must come from landing_format.format_line")
        if len(_PARTITIONS) >= _PARTITIONS_KEPT:
            _PARTITIONS.clear()
        partition = _PARTITIONS[date] = PARTITION_PREFIX + date.decode("ascii")
    return partition


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_fully(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:  # pragma: no cover - regular files never do this, but never spin
            raise OSError(errno.EIO, "write returned 0")
        view = view[written:]


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", socket.gethostname())[:32].strip("-") or "host"


class LandingWriter:
    """Appends landing lines durably; see the module docstring for the contract.

    Thread-safe: :meth:`append` and :meth:`append_batch` may be called from any thread (the
    server calls them in a process of their own, :mod:`pipeline.receiver.landing_process`, so
    these threads never take its event loop's GIL). ``lanes`` writer threads share one queue,
    each with its own open segments: while one waits in ``fdatasync`` the next takes whatever
    queued meanwhile, so flushes overlap (a journaling filesystem commits concurrent fsyncs
    together). Threads start on construction and stop in :meth:`close`.
    """

    def __init__(
        self,
        landing_dir: Path,
        *,
        max_segment_bytes: int = DEFAULT_MAX_SEGMENT_BYTES,
        max_segment_age_s: float = DEFAULT_MAX_SEGMENT_AGE_S,
        lanes: int = DEFAULT_LANES,
        idle_seal_s: float | None = None,
    ) -> None:
        if max_segment_bytes <= 0 or max_segment_age_s <= 0 or lanes <= 0:
            raise ValueError("segment thresholds and the number of lanes must be positive")
        if idle_seal_s is not None and idle_seal_s <= 0:
            raise ValueError("the idle seal must be positive (or None: off)")
        self.landing_dir = Path(landing_dir)
        self.landing_dir.mkdir(parents=True, exist_ok=True)
        self.max_segment_bytes = max_segment_bytes
        self.max_segment_age_s = max_segment_age_s
        self.idle_seal_s = idle_seal_s
        self.stats = LandingStats()
        self.healthy = True
        self._writer_tag = f"{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}"
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()  # guards stats, the closed flag and segment naming
        self._queue: queue.SimpleQueue[list[_Pending] | object] = queue.SimpleQueue()
        self._closed = False
        self._threads = [
            threading.Thread(target=_Lane(self).run, name=f"landing-lane-{n}", daemon=True)
            for n in range(lanes)
        ]
        for thread in self._threads:
            thread.start()

    # --- public API -------------------------------------------------------------------------

    def append(self, line: bytes) -> Future[None]:
        """Queue one line; the future resolves once it is fsynced, or fails with
        :class:`LandingUnavailable`. Raises ``ValueError`` for a malformed line and
        ``RuntimeError`` after :meth:`close`."""
        future: Future[None] = Future()
        self._submit([_Pending(line_partition(line), line, 1, future=future)])
        return future

    def append_batch(self, partition: str, data: bytes, lines: int) -> Future[None]:
        """Queue ``lines`` landing lines of one receive date, already joined into ``data`` and
        checked with :func:`line_partition`; they are written together, so they land (and the
        future resolves) or fail together. Raises ``RuntimeError`` after :meth:`close`."""
        future: Future[None] = Future()
        self._submit([_Pending(partition, data, lines, future=future)])
        return future

    def write_all(self, lines: Iterable[bytes]) -> int:
        """Land every line and return how many, once all are durable. Lines may span several
        receive dates. Raises :class:`LandingUnavailable` if any could not be made durable."""
        futures: deque[Future[None]] = deque()
        chunks: dict[str, list[bytes]] = {}
        sizes: dict[str, int] = {}
        count = 0

        def flush(partition: str) -> None:
            batch = chunks.pop(partition)
            sizes.pop(partition)
            future: Future[None] = Future()
            self._submit([_Pending(partition, b"".join(batch), len(batch), future=future)])
            futures.append(future)

        for line in lines:
            partition = line_partition(line)
            chunks.setdefault(partition, []).append(line)
            sizes[partition] = sizes.get(partition, 0) + len(line)
            count += 1
            if sizes[partition] >= _WRITE_ALL_CHUNK_BYTES:
                flush(partition)
                if len(futures) >= 2 * len(self._threads):  # bounded memory
                    futures.popleft().result()
        for partition in list(chunks):
            flush(partition)
        for future in futures:
            future.result()
        return count

    def close(self) -> None:
        """Finish every queued line, seal every open segment and stop the threads. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._threads:
                self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> LandingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- shared by the lanes ----------------------------------------------------------------

    def _submit(self, batch: list[_Pending]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the landing writer is closed")
            self._queue.put(batch)

    def _next_segment_id(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{stamp}-{self._writer_tag}-{next(self._sequence):06d}"

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)

    def _count_fsync(self, lines: int, size: int) -> None:
        with self._lock:
            stats = self.stats
            stats.landed_lines += lines
            stats.landed_bytes += size
            stats.fsync_batches += 1
            stats.fsyncs_by_lines[bisect_left(FSYNC_LINES_BUCKETS, lines)] += 1


def _resolve(round_: list[_Pending], error: BaseException | None) -> None:
    """Complete every future of a round."""
    for pending in round_:
        if not pending.future.done():
            if error is None:
                pending.future.set_result(None)
            else:
                pending.future.set_exception(error)


class _Lane:
    """One writer thread and its open segments (one per receive date)."""

    def __init__(self, writer: LandingWriter) -> None:
        self.writer = writer
        self.segments: dict[str, _Segment] = {}
        self.request_checked_at = 0.0  # monotonic time of the last look for a seal request

    def run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self.writer._queue.get(timeout=self._seconds_to_next_expiry())
            except queue.Empty:
                self._seal_expired()
                continue
            round_: list[_Pending] = []
            size = 0
            item = first
            while True:
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, list)
                round_.extend(item)
                size += sum(len(pending.data) for pending in item)
                if size >= _MAX_ROUND_BYTES:
                    break
                try:
                    item = self.writer._queue.get_nowait()
                except queue.Empty:
                    break
            if round_:
                try:
                    self._commit(round_)
                except Exception as exc:  # a bug must fail the waiters, never hang them
                    self.writer._count(write_errors=1)
                    _resolve(round_, LandingUnavailable(errno.EIO, f"landing error: {exc!r}"))
            self._seal_expired()
        for partition in list(self.segments):
            with contextlib.suppress(OSError):
                self._seal(partition)

    def _seal_due_at(self, segment: _Segment) -> float:
        """When ``segment`` must be sealed (monotonic) unless it fills up first."""
        due = segment.opened_at + self.writer.max_segment_age_s
        if self.writer.idle_seal_s is not None:
            due = min(due, segment.last_line_at + self.writer.idle_seal_s)
        return due

    def _seconds_to_next_expiry(self) -> float:
        if not self.segments:
            return 1.0
        due = min(self._seal_due_at(segment) for segment in self.segments.values())
        if self.writer.idle_seal_s is not None:  # lines wait: look for a seal request soon
            due = min(due, self.request_checked_at + SEAL_REQUEST_CHECK_S)
        return max(0.01, min(1.0, due - time.monotonic()))

    def _seal_request_ns(self, now: float) -> int | None:
        """When a consumer last asked for a seal (the request file's mtime, wall clock ns), or
        None: no request, the idle seal is off, or this lane looked less than
        ``SEAL_REQUEST_CHECK_S`` ago."""
        if self.writer.idle_seal_s is None or now < self.request_checked_at + SEAL_REQUEST_CHECK_S:
            return None
        self.request_checked_at = now
        try:
            return os.stat(self.writer.landing_dir / SEAL_REQUEST).st_mtime_ns
        except OSError:
            return None

    def _commit(self, round_: list[_Pending]) -> None:
        by_partition: dict[str, list[_Pending]] = {}
        for pending in round_:
            by_partition.setdefault(pending.partition, []).append(pending)
        for partition, items in by_partition.items():
            data = b"".join(item.data for item in items)
            try:
                segment = self.segments.get(partition) or self._open(partition)
                _write_fully(segment.fd, data)
                os.fdatasync(segment.fd)
            except OSError as exc:
                self._fail(partition, items, exc)
                continue
            segment.durable_size += len(data)
            segment.last_line_at = time.monotonic()
            self.writer._count_fsync(sum(item.lines for item in items), len(data))
            self.writer.healthy = True
            _resolve(items, None)
            if segment.durable_size >= self.writer.max_segment_bytes:
                self._seal(partition)

    def _fail(self, partition: str, items: list[_Pending], exc: OSError) -> None:
        self.writer._count(write_errors=1)
        self.writer.healthy = False
        segment = self.segments.get(partition)
        if segment is not None:
            # Cut the segment back to its last durable byte (never leave half a round behind) and
            # seal it; if the cut fails, close it open-named: recovery cuts its torn tail later.
            try:
                os.ftruncate(segment.fd, segment.durable_size)
                os.fsync(segment.fd)
            except OSError:
                del self.segments[partition]
                os.close(segment.fd)
            else:
                with contextlib.suppress(OSError):
                    self._seal(partition)
        error = LandingUnavailable(exc.errno or errno.EIO, f"landing write failed: {exc.strerror}")
        _resolve(items, error)

    def _open(self, partition: str) -> _Segment:
        directory = self.writer.landing_dir / partition
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            _fsync_dir(self.writer.landing_dir)
        segment_id = self.writer._next_segment_id()
        path = directory / f"{segment_id}{OPEN_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # marks the segment as live
            _fsync_dir(directory)  # the new name must survive a crash for its lines to count
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        now = time.monotonic()
        segment = _Segment(
            segment_id, path, fd, opened_at=now, last_line_at=now, opened_ns=time.time_ns()
        )
        self.segments[partition] = segment
        return segment

    def _seal(self, partition: str) -> None:
        segment = self.segments.pop(partition)
        try:
            if segment.durable_size:
                os.rename(segment.path, segment.path.with_name(segment.segment_id + SEALED_SUFFIX))
                self.writer._count(sealed_segments=1)
            else:
                segment.path.unlink()
            _fsync_dir(segment.path.parent)
        finally:
            os.close(segment.fd)

    def _seal_expired(self) -> None:
        now = time.monotonic()
        requested_ns = self._seal_request_ns(now) if self.segments else None
        for partition, segment in list(self.segments.items()):
            asked = (
                requested_ns is not None
                and segment.durable_size > 0
                and segment.opened_ns <= requested_ns
            )
            if asked or now >= self._seal_due_at(segment):
                try:
                    self._seal(partition)
                except OSError:  # stays open-named; recovery seals it at the next start
                    self.writer._count(write_errors=1)


# --- crash recovery ------------------------------------------------------------------------------


def recover(landing_dir: Path) -> RecoveryReport:
    """Seal every ``.ndjson.open`` segment no live writer holds; run before a writer starts.

    Complete, valid lines stay in the segment, which is sealed by atomic rename. A torn last line
    (no newline: the process died mid-write) and any line that is not a valid landing line are
    moved to ``<landing>/_rejects/<segment_id>.rejected``, never into a sealed segment. A segment
    that another process holds locked is left alone: that writer is alive.
    """
    landing_dir = Path(landing_dir)
    report = RecoveryReport()
    for path in sorted(landing_dir.glob(f"{PARTITION_PREFIX}*/*{OPEN_SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # sealed by its owner between the listing and now
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer owns it
            if not _still_named(path, fd):
                continue  # another starting receiver recovered it while we waited
            _recover_segment(landing_dir, path, fd, report)
        finally:
            os.close(fd)
    return report


def _still_named(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _recover_segment(landing_dir: Path, path: Path, fd: int, report: RecoveryReport) -> None:
    stat = os.fstat(fd)
    if stat.st_size == 0:
        if time.time() - stat.st_mtime >= _FRESH_EMPTY_SEGMENT_S:
            path.unlink()
        return
    with open(fd, "rb", closefd=False) as handle:
        data = handle.read()
    cut = data.rfind(b"\n") + 1
    kept: list[bytes] = []
    rejected: list[bytes] = []
    for line in data[:cut].splitlines(keepends=True):
        try:
            parse_line(line)
            kept.append(line)
        except ValueError:
            rejected.append(line)
    if data[cut:]:
        rejected.append(data[cut:])
    segment_id = path.name[: -len(OPEN_SUFFIX)]
    if rejected:
        rejects = landing_dir / REJECTS_DIR
        rejects.mkdir(exist_ok=True)
        reject_path = rejects / f"{segment_id}.rejected"
        with open(reject_path, "ab") as out:
            out.write(b"".join(rejected))
            out.flush()
            os.fsync(out.fileno())
        _fsync_dir(rejects)
        report.rejected_bytes += sum(len(part) for part in rejected)
    sealed = path.with_name(segment_id + SEALED_SUFFIX)
    if not kept:
        path.unlink()
    elif sum(map(len, kept)) == cut:  # only a torn tail: cut it in place
        os.ftruncate(fd, cut)
        os.fsync(fd)
        os.rename(path, sealed)
        report.sealed.append(sealed)
    else:  # bad lines in the middle: write the good ones aside, then swap
        aside = path.with_name(segment_id + ".recovering")
        with open(aside, "wb") as out:
            out.write(b"".join(kept))
            out.flush()
            os.fsync(out.fileno())
        os.rename(aside, sealed)
        path.unlink()
        report.sealed.append(sealed)
    _fsync_dir(path.parent)
