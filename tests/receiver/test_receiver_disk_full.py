"""Disk full or unwritable landing: 503 + Retry-After, never a 204 for a line not on disk, and
recovery by itself once space returns. Real mechanisms: a tiny tmpfs mount (filled, emptied,
remounted read-only) and, where mounting is not permitted, RLIMIT_FSIZE on the child process."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from receiver_kit import SECRET, event, landed, metric, post, signed_headers

from pipeline.receiver.process import ReceiverProcess

PADDING = "x" * 12_000  # larger than a page: a full tmpfs cannot take it in a page's slack


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for this test. As root (CI) a failed mount fails the test; without
    root the test is skipped with a line saying so (the RLIMIT_FSIZE test still runs)."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint)], capture_output=True
    )
    if mounted.returncode != 0:
        why = mounted.stderr.decode().strip()
        if os.geteuid() == 0:
            pytest.fail(f"root could not mount a tmpfs: {why}", pytrace=False)
        pytest.skip(
            f"NOT RUN: mounting a tmpfs needs root (run the suite as root, as CI does): {why}"
        )
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    with contextlib.suppress(OSError), open(filler, "ab") as out:  # the last partial page too
        for _ in range(65536):
            out.write(b"\0")
            out.flush()
    probe = disk / "probe"
    with pytest.raises(OSError) as full:
        probe.write_bytes(b"x" * 8192)
    assert full.value.errno == errno.ENOSPC
    probe.unlink(missing_ok=True)
    return filler


def test_full_disk_answers_503_with_retry_after_and_recovers_when_space_returns(
    tiny_disk: Path, tmp_path: Path
) -> None:
    landing = tiny_disk / "landing"
    with ReceiverProcess(landing, secrets=[SECRET], log_path=tmp_path / "receiver.log") as receiver:
        before = event(1, padding=PADDING)
        assert post(receiver.webhook_url, before, signed_headers(before)).status == 204

        filler = _fill(tiny_disk)
        refused = event(2, padding=PADDING)
        reply = post(receiver.webhook_url, refused, signed_headers(refused))
        assert reply.status == 503
        assert int(reply.headers["retry-after"]) > 0
        assert refused not in {d.body for d in landed(landing)}
        assert metric(receiver.url, "edume_receiver_landing_writable") == 0

        filler.unlink()  # space returns; eduMe retries the same delivery
        assert post(receiver.webhook_url, refused, signed_headers(refused)).status == 204
        assert metric(receiver.url, "edume_receiver_landing_writable") == 1
        assert receiver.stop() == 0
    assert sorted(d.body for d in landed(landing, include_open=False)) == sorted([before, refused])


def test_read_only_landing_answers_503_and_recovers_when_writable_again(
    tiny_disk: Path, tmp_path: Path
) -> None:
    landing = tiny_disk / "landing"
    with ReceiverProcess(
        landing,
        secrets=[SECRET],
        log_path=tmp_path / "receiver.log",
        args=["--segment-max-age", "0.2"],
    ) as receiver:
        first = event(3)
        assert post(receiver.webhook_url, first, signed_headers(first)).status == 204
        _wait_until_sealed(landing)  # a file open for writing would make the remount "busy"
        subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
        try:
            refused = event(4)
            assert post(receiver.webhook_url, refused, signed_headers(refused)).status == 503
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(tiny_disk)], check=True)
        assert post(receiver.webhook_url, refused, signed_headers(refused)).status == 204
        assert receiver.stop() == 0
    assert sorted(d.body for d in landed(landing, include_open=False)) == sorted([first, refused])


def _wait_until_sealed(landing: Path) -> None:
    for _ in range(100):
        if not list(landing.rglob("*.open")):
            return
        time.sleep(0.05)
    raise AssertionError("the segment was not sealed by age")


def _limit_file_size() -> None:
    # Runs in the child before exec: files it writes may not grow past 200 kB, and exceeding the
    # limit fails the write with EFBIG instead of killing the process with SIGXFSZ.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_file_size_limit_answers_503_and_never_acknowledges_a_line_not_written(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "landing"
    statuses: dict[bytes, int] = {}
    with ReceiverProcess(
        landing,
        secrets=[SECRET],
        args=["--landing-lanes", "1"],
        preexec_fn=_limit_file_size,
        log_path=tmp_path / "receiver.log",
    ) as receiver:
        for n in range(40):  # 40 x 12 kB: crosses the 200 kB limit more than once
            body = event(n, padding=PADDING)
            reply = post(receiver.webhook_url, body, signed_headers(body))
            statuses[body] = reply.status
            if reply.status == 503:
                assert "retry-after" in reply.headers
        assert receiver.stop() == 0
    assert set(statuses.values()) == {204, 503}
    sealed = {d.body for d in landed(landing, include_open=False)}
    assert {b for b, s in statuses.items() if s == 204} == sealed
    assert os.path.getsize(tmp_path / "receiver.log") > 0
