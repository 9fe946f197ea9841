"""The server's landing writer, in a child process, so its threads never take the event loop's GIL.

A :class:`~pipeline.receiver.landing.LandingWriter` run inside the server made every fsync round
take the GIL from the event loop several times (to dequeue, after ``write``, after
``fdatasync``, to wake the loop); each forced switch stalled the loop, and that, not the disk,
bounded the receiver. Here the writer (recovery, lanes, group commit, sealing: all of
``landing.py``) runs in a child process; the event loop only does two system calls per loop pass.

Pipe protocol (both pipes created by the parent, inherited by the child):

* parent -> child, one frame per receive date per loop pass: ``<QI10sI`` (frame id, number of
  lines, ``YYYY-MM-DD``, byte length) followed by the lines themselves;
* child -> parent, fixed-size records ``<QiB5Q`` (frame id, errno or 0, landing writable, the five
  :class:`~pipeline.receiver.landing.LandingStats` counters). The child answers a frame only once
  the fsync covering all its lines has returned (errno 0) or failed; frame id 0 carries the
  start-up result (recovery and opening the writer), then periodic statistics.

The parent closing its end is the order to flush, seal and exit; the child is killed with the
parent (``PR_SET_PDEATHSIG``), after which the next start's recovery seals what it left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import os
import signal
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

from pipeline.receiver.landing import (
    RECORD_FIELDS,
    LandingStats,
    LandingUnavailable,
    LandingWriter,
    line_partition,
    recover,
)
from pipeline.receiver.landing_format import PARTITION_PREFIX

_FRAME = struct.Struct("<QI10sI")
_RECORD = struct.Struct(f"<QiB{RECORD_FIELDS}Q")
_STARTUP = 0  # frame id of the start-up record and of periodic statistics
_PIPE_BYTES = 1024 * 1024  # room for a burst of frames before the parent has to buffer
_STATS_INTERVAL_S = 1.0
_PR_SET_PDEATHSIG = 1
_F_SETPIPE_SZ = 1031


class LandingProcess:
    """Parent side: same contract as ``LandingWriter.append_async``, ``stats`` and ``healthy``.

    :meth:`start` spawns the child and waits until it has recovered the landing dir and opened
    its writer (``OSError`` if it could not). Call it from the thread that runs the server: the
    child dies with that thread. :meth:`close` flushes, seals and waits for the child.
    """

    def __init__(self, process: subprocess.Popen[bytes], to_child: int, from_child: int) -> None:
        self.stats = LandingStats()
        self.healthy = True
        self._process = process
        self._to_child = to_child
        self._from_child = from_child
        self._frame_ids = iter(range(1, 2**63))
        self._waiting: dict[int, list[asyncio.Future[None]]] = {}
        self._batches: dict[str, tuple[list[bytes], list[asyncio.Future[None]]]] = {}
        self._unsent = bytearray()
        self._received = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: LandingUnavailable | None = None
        self._closed = False

    @classmethod
    def start(
        cls,
        landing_dir: Path,
        *,
        max_segment_bytes: int,
        max_segment_age_s: float,
        lanes: int,
        idle_seal_s: float | None = None,
    ) -> LandingProcess:
        to_child_r, to_child_w = os.pipe2(os.O_CLOEXEC)
        from_child_r, from_child_w = os.pipe2(os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # a larger pipe absorbs bursts; the default works too
            fcntl.fcntl(to_child_w, _F_SETPIPE_SZ, _PIPE_BYTES)
        command = [
            sys.executable,
            "-m",
            "pipeline.receiver.landing_process",
            str(os.getpid()),
            str(to_child_r),
            str(from_child_w),
            str(landing_dir),
            str(max_segment_bytes),
            str(max_segment_age_s),
            str(lanes),
            str(idle_seal_s or 0),  # 0: off
        ]
        process = subprocess.Popen(command, pass_fds=(to_child_r, from_child_w))
        os.close(to_child_r)
        os.close(from_child_w)
        self = cls(process, to_child_w, from_child_r)
        record = _read_exactly(from_child_r, _RECORD.size)
        if record is None:
            process.wait()
            raise OSError(errno.EIO, f"the landing process exited ({process.returncode})")
        _frame_id, code = self._apply(record)
        if code:
            process.wait()
            raise OSError(code, os.strerror(code))
        os.set_blocking(to_child_w, False)
        os.set_blocking(from_child_r, False)
        return self

    @property
    def pid(self) -> int:
        """The child's process id (for its process metrics)."""
        return self._process.pid

    def append_async(self, line: bytes) -> asyncio.Future[None]:
        """Queue one line (from ``format_line``); the future resolves once it is fsynced, or
        fails with :class:`LandingUnavailable`. Lines of one loop pass travel as one frame."""
        if self._failure is not None:
            raise self._failure
        partition = line_partition(line)
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            loop.add_reader(self._from_child, self._on_records)
        waiter = loop.create_future()
        batch = self._batches.get(partition)
        if batch is None:
            if not self._batches:
                loop.call_soon(self._send_batches)
            batch = self._batches[partition] = ([], [])
        batch[0].append(line)
        batch[1].append(waiter)
        return waiter

    @property
    def lost(self) -> bool:
        """The child is gone (or unreachable): every append fails until a new one is started."""
        return self._failure is not None

    def close(self) -> None:
        """Let the child land what it was sent, seal every segment and exit; wait for it.
        A lost child is killed instead (it may be wedged). Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._failure is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        if self._loop is not None:
            with contextlib.suppress(RuntimeError, ValueError):
                self._loop.remove_reader(self._from_child)
                self._loop.remove_writer(self._to_child)
        if self._unsent:  # the loop has stopped: finish sending, blocking
            os.set_blocking(self._to_child, True)
            with contextlib.suppress(OSError):
                os.write(self._to_child, self._unsent)
        os.close(self._to_child)
        self._process.wait()
        with contextlib.suppress(OSError):
            while record := _read_exactly(self._from_child, _RECORD.size):
                self._apply(record)
        os.close(self._from_child)
        self._fail_all(LandingUnavailable(errno.ESHUTDOWN, "the landing writer is closed"))

    # --- event-loop side --------------------------------------------------------------------

    def _send_batches(self) -> None:
        frames = []
        for partition, (lines, waiters) in self._batches.items():
            frame_id = next(self._frame_ids)
            data = b"".join(lines)
            date = partition.removeprefix(PARTITION_PREFIX).encode("ascii")
            frames.append(_FRAME.pack(frame_id, len(lines), date, len(data)))
            frames.append(data)
            self._waiting[frame_id] = waiters
        self._batches.clear()
        idle = not self._unsent  # else a writer callback is already waiting for the pipe
        self._unsent += b"".join(frames)
        if idle:
            self._flush()

    def _flush(self) -> None:
        try:
            sent = os.write(self._to_child, self._unsent)
        except BlockingIOError:
            sent = 0
        except OSError as exc:  # the child is gone
            self._lost(exc)
            return
        del self._unsent[:sent]
        assert self._loop is not None
        if self._unsent:
            self._loop.add_writer(self._to_child, self._flush)
        else:
            self._loop.remove_writer(self._to_child)

    def _on_records(self) -> None:
        try:
            chunk = os.read(self._from_child, 64 * _RECORD.size)
        except BlockingIOError:
            return
        if not chunk:
            self._lost(OSError(errno.EPIPE, "the landing process exited"))
            return
        self._received += chunk
        whole = len(self._received) - len(self._received) % _RECORD.size
        for offset in range(0, whole, _RECORD.size):
            frame_id, code = self._apply(self._received[offset : offset + _RECORD.size])
            waiters = self._waiting.pop(frame_id, None) if frame_id else None
            if waiters is not None:
                error = None
                if code:
                    error = LandingUnavailable(code, f"landing write failed: {os.strerror(code)}")
                _settle(waiters, error)
        del self._received[:whole]

    def _apply(self, record: bytes | bytearray) -> tuple[int, ...]:
        frame_id, code, healthy, *counters = _RECORD.unpack(record)
        self.healthy = bool(healthy)
        self.stats = LandingStats.from_record(tuple(counters))
        return (frame_id, code)

    def _lost(self, exc: OSError) -> None:
        self.healthy = False
        self._failure = LandingUnavailable(exc.errno or errno.EIO, f"landing process lost: {exc}")
        if self._loop is not None:
            self._loop.remove_reader(self._from_child)
            self._loop.remove_writer(self._to_child)
        self._fail_all(self._failure)

    def _fail_all(self, error: LandingUnavailable) -> None:
        for waiters in self._waiting.values():
            _settle(waiters, error)
        self._waiting.clear()
        for _lines, waiters in self._batches.values():
            _settle(waiters, error)
        self._batches.clear()


def _settle(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for waiter in waiters:
        if not waiter.done():  # the request may have been cancelled (client gone)
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)


def _die_with_parent(parent: int) -> None:
    # A SIGKILLed server must not leave its writer running (and holding segment locks that would
    # stop the next start's recovery from sealing them). Signals meant for the server (Ctrl-C
    # reaches the whole process group) are its business: it closes our pipe to stop us.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _read_exactly(fd: int, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


# --- child side ----------------------------------------------------------------------------------


class _Child:
    """Reads frames, hands each to the writer as one batch, answers when it is durable."""

    def __init__(self, writer: LandingWriter, answers: int) -> None:
        self.writer = writer
        self.answers = answers
        self._lock = threading.Lock()

    def answer(self, frame_id: int, code: int) -> None:
        record = _RECORD.pack(
            frame_id, code, 1 if self.writer.healthy else 0, *self.writer.stats.as_record()
        )
        with self._lock:
            os.write(self.answers, record)  # < PIPE_BUF: never interleaved, never partial

    def on_done(self, frame_id: int, future: Future[None]) -> None:
        error = future.exception()
        code = 0 if error is None else (getattr(error, "errno", None) or errno.EIO)
        self.answer(frame_id, code)

    def serve(self, frames: int) -> None:
        buffer = bytearray()
        while chunk := os.read(frames, _PIPE_BYTES):
            buffer += chunk
            offset = 0
            while len(buffer) - offset >= _FRAME.size:
                frame_id, lines, date, size = _FRAME.unpack_from(buffer, offset)
                end = offset + _FRAME.size + size
                if len(buffer) < end:
                    break
                data = bytes(buffer[offset + _FRAME.size : end])
                partition = PARTITION_PREFIX + date.decode("ascii")
                try:
                    future = self.writer.append_batch(partition, data, lines)
                except RuntimeError:
                    self.answer(frame_id, errno.ESHUTDOWN)
                else:
                    future.add_done_callback(lambda f, frame_id=frame_id: self.on_done(frame_id, f))
                offset = end
            del buffer[:offset]

    def report_stats(self, stop: threading.Event) -> None:
        last = None
        while not stop.wait(_STATS_INTERVAL_S):
            now = (self.writer.healthy, self.writer.stats.as_record())
            if now != last:
                self.answer(_STARTUP, 0)
                last = now


def _child_main(argv: list[str]) -> int:
    _die_with_parent(int(argv[0]))
    frames, answers = int(argv[1]), int(argv[2])
    landing_dir = Path(argv[3])
    try:
        recover(landing_dir)
        writer = LandingWriter(
            landing_dir,
            max_segment_bytes=int(argv[4]),
            max_segment_age_s=float(argv[5]),
            lanes=int(argv[6]),
            idle_seal_s=float(argv[7]) or None,
        )
    except OSError as exc:
        failed = _RECORD.pack(_STARTUP, exc.errno or errno.EIO, 0, *LandingStats().as_record())
        os.write(answers, failed)
        return 1
    child = _Child(writer, answers)
    child.answer(_STARTUP, 0)
    stop = threading.Event()
    reporter = threading.Thread(target=child.report_stats, args=(stop,), daemon=True)
    reporter.start()
    try:
        child.serve(frames)
    finally:
        writer.close()  # every queued frame lands and is answered, every segment is sealed
        stop.set()
        reporter.join()
        child.answer(_STARTUP, 0)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
