"""LandingWriter and recover(): group commit, sealing, crash recovery, shared landing dirs."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.loader.landing_watch import request_seal
from pipeline.receiver import landing
from pipeline.receiver.landing import LandingWriter, line_partition, recover
from pipeline.receiver.landing_format import (
    OPEN_SUFFIX,
    REJECTS_DIR,
    SEALED_GLOB,
    Authentication,
    format_line,
    parse_line,
)

AUTH = Authentication("hmac", "raw", 0, None)
NOW = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)


def _line(n: int, at: datetime = NOW) -> bytes:
    return format_line(f'{{"type":"x","n":{n}}}'.encode(), AUTH, at)


def _sealed_lines(landing: Path) -> list[bytes]:
    return [
        line for p in sorted(landing.glob(SEALED_GLOB)) for line in p.read_bytes().splitlines(True)
    ]


def _wait_for_sealed(landing: Path, count: int) -> list[Path]:
    """The sealed segments once there are ``count``. The deadline only keeps a broken writer from
    hanging the suite: 60 s, far beyond any seal threshold used here, on any machine."""
    deadline = time.monotonic() + 60
    while len(sealed := sorted(landing.glob(SEALED_GLOB))) < count:
        assert time.monotonic() < deadline, f"{len(sealed)} of {count} segments sealed"
        time.sleep(0.02)
    return sealed


def test_write_all_lands_every_line_in_a_sealed_segment_on_close(tmp_path: Path) -> None:
    lines = [_line(n) for n in range(1000)]
    with LandingWriter(tmp_path) as writer:
        assert writer.write_all(lines) == 1000
    assert sorted(_sealed_lines(tmp_path)) == sorted(lines)
    assert not list(tmp_path.rglob(f"*{OPEN_SUFFIX}"))


def test_concurrent_appends_share_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The first fsync is held until 8 threads have queued 1,600 more lines: group commit must then
    # write them all in ONE more round, whatever the machine's speed.
    in_first_fsync, release = threading.Event(), threading.Event()
    real_fdatasync = os.fdatasync

    def held_fdatasync(fd: int) -> None:
        if not in_first_fsync.is_set():
            in_first_fsync.set()
            release.wait(60)
        real_fdatasync(fd)

    monkeypatch.setattr(landing.os, "fdatasync", held_fdatasync)
    with LandingWriter(tmp_path, lanes=1) as writer:
        futures = [writer.append(_line(0))]
        assert in_first_fsync.wait(60)

        def client(offset: int) -> None:
            for n in range(200):
                futures.append(writer.append(_line(offset + n)))

        threads = [threading.Thread(target=client, args=(k * 1000 + 1,)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        release.set()
        for future in futures:
            future.result(timeout=60)
        assert writer.stats.landed_lines == 1601
        assert writer.stats.fsync_batches == 2  # the held line, then the 1,600 queued behind it


def test_a_resolved_future_means_the_line_is_already_in_the_file(tmp_path: Path) -> None:
    with LandingWriter(tmp_path) as writer:
        line = _line(7)
        writer.append(line).result(timeout=10)
        open_segments = list(tmp_path.rglob(f"*{OPEN_SUFFIX}"))
        assert [p.read_bytes() for p in open_segments] == [line]


def test_lines_land_in_the_partition_of_their_receive_date(tmp_path: Path) -> None:
    yesterday = NOW - timedelta(days=1)
    with LandingWriter(tmp_path) as writer:
        writer.write_all([_line(1, yesterday), _line(2), _line(3, yesterday)])
    partitions = sorted(p.parent.name for p in tmp_path.glob(SEALED_GLOB))
    assert partitions == ["received_date=2026-11-28", "received_date=2026-11-29"]


def test_segment_is_sealed_when_it_reaches_the_size_threshold(tmp_path: Path) -> None:
    line = _line(0)
    with LandingWriter(tmp_path, max_segment_bytes=len(line) * 3, lanes=1) as writer:
        for n in range(7):
            writer.append(_line(n)).result(timeout=10)
        sealed_while_running = len(list(tmp_path.glob(SEALED_GLOB)))
    assert sealed_while_running == 2
    assert len(_sealed_lines(tmp_path)) == 7


def test_segment_is_sealed_when_it_reaches_the_age_threshold(tmp_path: Path) -> None:
    with LandingWriter(tmp_path, max_segment_age_s=0.2) as writer:
        writer.append(_line(1)).result(timeout=10)
        [sealed] = _wait_for_sealed(tmp_path, 1)
        assert sealed.read_bytes() == _line(1)
        assert writer.stats.sealed_segments == 1


def test_an_idle_segment_is_sealed_long_before_its_age_threshold(tmp_path: Path) -> None:
    # An hour's age limit: only the idle seal can seal these while the writer runs.
    with LandingWriter(tmp_path, max_segment_age_s=3600, idle_seal_s=0.2, lanes=1) as writer:
        writer.append(_line(1)).result(timeout=10)
        [first] = _wait_for_sealed(tmp_path, 1)
        writer.append(_line(2)).result(timeout=10)  # a later delivery opens a new segment
        sealed = _wait_for_sealed(tmp_path, 2)
        assert writer.stats.sealed_segments == 2
    assert first.read_bytes() == _line(1)
    assert [p.read_bytes() for p in sealed if p != first] == [_line(2)]


def test_without_an_idle_seal_a_quiet_segment_stays_open(tmp_path: Path) -> None:
    with LandingWriter(tmp_path, max_segment_age_s=3600, lanes=1) as writer:
        writer.append(_line(1)).result(timeout=10)
        # Let the lane wake up on its own several times (it polls at least once a second).
        time.sleep(1.5)
        assert writer.stats.sealed_segments == 0
        assert len(list(tmp_path.rglob(f"*{OPEN_SUFFIX}"))) == 1


def test_a_seal_request_seals_what_the_lanes_hold_long_before_their_idle_seal(
    tmp_path: Path,
) -> None:
    # Age and idle seal an hour away: only the request can seal these while the writer runs.
    with LandingWriter(tmp_path, max_segment_age_s=3600, idle_seal_s=3600, lanes=2) as writer:
        writer.write_all([_line(1)])
        assert request_seal(tmp_path)
        [first] = _wait_for_sealed(tmp_path, 1)
        assert first.read_bytes() == _line(1)
        # A segment opened after the request waits for the next one.
        writer.write_all([_line(2)])
        time.sleep(10 * landing.SEAL_REQUEST_CHECK_S)
        assert len(list(tmp_path.glob(SEALED_GLOB))) == 1
        assert request_seal(tmp_path)
        assert len(_wait_for_sealed(tmp_path, 2)) == 2
        assert writer.stats.sealed_segments == 2


def test_without_an_idle_seal_a_seal_request_is_ignored(tmp_path: Path) -> None:
    with LandingWriter(tmp_path, max_segment_age_s=3600, lanes=1) as writer:
        writer.write_all([_line(1)])
        assert request_seal(tmp_path)
        time.sleep(10 * landing.SEAL_REQUEST_CHECK_S)  # the lane wakes up on its own meanwhile
        assert writer.stats.sealed_segments == 0
    assert not request_seal(tmp_path / "missing")  # nowhere to ask: no error, the answer is no


def test_two_writers_in_one_landing_dir_never_share_a_segment(tmp_path: Path) -> None:
    with LandingWriter(tmp_path) as first, LandingWriter(tmp_path) as second:
        first.write_all([_line(1)])
        second.write_all([_line(2)])
        names = {p.name for p in tmp_path.rglob(f"*{OPEN_SUFFIX}")}
        assert len(names) == 2
    assert len(list(tmp_path.glob(SEALED_GLOB))) == 2


def test_append_refuses_a_line_that_is_not_a_landing_line(tmp_path: Path) -> None:
    with LandingWriter(tmp_path) as writer, pytest.raises(ValueError, match="format_line"):
        writer.append(b'{"not":"a landing line"}\n')


def test_append_after_close_is_refused(tmp_path: Path) -> None:
    writer = LandingWriter(tmp_path)
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.append(_line(1))


def _leftover(landing: Path, content: bytes, name: str = "crashed-1") -> Path:
    partition = landing / line_partition(_line(0))
    partition.mkdir(parents=True, exist_ok=True)
    path = partition / f"{name}{OPEN_SUFFIX}"
    path.write_bytes(content)
    return path


def test_recovery_seals_a_leftover_segment_and_cuts_its_torn_tail_into_rejects(
    tmp_path: Path,
) -> None:
    good = _line(1) + _line(2)
    torn = _line(3)[:40]
    path = _leftover(tmp_path, good + torn)
    report = recover(tmp_path)
    assert _sealed_lines(tmp_path) == [_line(1), _line(2)]
    assert not path.exists()
    assert (tmp_path / REJECTS_DIR / "crashed-1.rejected").read_bytes() == torn
    assert report.rejected_bytes == len(torn)


def test_recovery_moves_a_corrupt_middle_line_to_rejects_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    garbage = b"\x00\x00garbage\n"
    _leftover(tmp_path, _line(1) + garbage + _line(2))
    recover(tmp_path)
    assert [parse_line(line).body for line in _sealed_lines(tmp_path)] == [
        parse_line(_line(1)).body,
        parse_line(_line(2)).body,
    ]
    assert (tmp_path / REJECTS_DIR / "crashed-1.rejected").read_bytes() == garbage


def test_recovery_leaves_a_segment_a_live_writer_holds_alone(tmp_path: Path) -> None:
    path = _leftover(tmp_path, _line(1))
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a live writer holds on its open segments
        recover(tmp_path)
        assert path.exists()
        assert not list(tmp_path.glob(SEALED_GLOB))
    finally:
        os.close(fd)


def test_recovery_skips_a_segment_another_process_recovered_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two receivers starting together over one landing: this one opened the leftover segment, and
    # before it took the lock the other one recovered it (sealed it by rename) and let go. This
    # one must find the segment gone from its name and leave it alone, not fail or seal it twice.
    path = _leftover(tmp_path, _line(1) + _line(2)[:30])
    sealed_by_the_other = path.with_name("crashed-1.ndjson")
    real_flock = fcntl.flock
    races = []

    def flock_after_the_other_recovered(fd: int, operation: int) -> None:
        if not races:
            races.append(fd)
            other = os.open(path, os.O_RDWR)
            try:
                real_flock(other, fcntl.LOCK_EX)
                os.ftruncate(other, len(_line(1)))  # what the winner's recovery does
                os.rename(path, sealed_by_the_other)
            finally:
                os.close(other)  # its lock goes with it
        real_flock(fd, operation)

    monkeypatch.setattr(landing.fcntl, "flock", flock_after_the_other_recovered)
    report = recover(tmp_path)

    assert races, "recover() never tried to lock the leftover segment"
    assert report.sealed == [] and report.rejected_bytes == 0  # this one did nothing
    assert sealed_by_the_other.read_bytes() == _line(1)
    assert not (tmp_path / REJECTS_DIR).exists()
    assert not path.exists()
