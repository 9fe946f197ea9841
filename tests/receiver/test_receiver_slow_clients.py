"""Slow and hostile clients: a never-ending or trickling request is cut off by a read deadline
and can exhaust neither connections nor memory."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from receiver_kit import SECRET, event, landing_size, post, signed_headers

from pipeline.receiver.process import ReceiverProcess

HEAD = b"POST /webhooks/edume HTTP/1.1\r\nHost: 127.0.0.1\r\n"
# No test here measures how fast the server reacts. Its deadlines are 1 s; a test waits for the
# EVENT (the connection closed, the descriptors released) for up to GIVE_UP_S, which only keeps
# a broken server from hanging the suite: a loaded machine may be slow, never that slow.
GIVE_UP_S = 60.0


@pytest.fixture(scope="module")
def strict_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverProcess]:
    root = tmp_path_factory.mktemp("strict-receiver")
    args = ["--head-timeout", "1", "--body-timeout", "1", "--keep-alive-timeout", "1"]
    with ReceiverProcess(root / "landing", secrets=[SECRET], args=args) as receiver:
        yield receiver


def _open(receiver: ReceiverProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", receiver.port), timeout=10)


def _closed_within(
    sock: socket.socket, seconds: float = GIVE_UP_S, trickle: bytes = b""
) -> tuple[bool, bytes]:
    """Keep sending ``trickle`` every 0.1 s; True once the server has closed the connection."""
    deadline = time.monotonic() + seconds
    received = b""
    sock.settimeout(0.1)
    while time.monotonic() < deadline:
        try:
            if trickle:
                sock.sendall(trickle)
            chunk = sock.recv(4096)
            if not chunk:
                return True, received
            received += chunk
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return True, received
    return False, received


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_connection_that_never_sends_a_request_is_closed(strict_receiver) -> None:
    with _open(strict_receiver) as sock:
        closed, received = _closed_within(sock)
    assert closed and received == b""


def test_headers_that_never_end_are_cut_off_by_the_head_timeout(strict_receiver) -> None:
    # The client keeps sending, so no idle timeout applies; and in GIVE_UP_S it sends at most
    # 11 bytes every 0.1 s (under 7 KiB), far below the 32 KiB head cap: only the head deadline
    # can close this connection.
    with _open(strict_receiver) as sock:
        sock.sendall(HEAD)
        closed, received = _closed_within(sock, trickle=b"X-Slow: y\r\n")
    assert closed and received == b""


def test_trickling_body_is_cut_off_with_408_and_nothing_lands(strict_receiver) -> None:
    body = event(1)
    headers = signed_headers(body)
    before = landing_size(strict_receiver.landing_dir)
    with _open(strict_receiver) as sock:
        sock.sendall(
            HEAD
            + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
            # Far more than a trickle of one byte per 0.1 s sends in GIVE_UP_S, and within the
            # body limit: only the body deadline can end this request.
            + b"Content-Length: 100000\r\n\r\n"
        )
        closed, received = _closed_within(sock, trickle=b" ")
    assert closed
    assert received.startswith(b"HTTP/1.1 408 ")
    assert landing_size(strict_receiver.landing_dir) == before


def test_endless_headers_are_refused_with_431_without_growing_memory(strict_receiver) -> None:
    rss_before = _rss_kib(strict_receiver.pid)
    sent = 0
    with _open(strict_receiver) as sock:
        sock.sendall(HEAD)
        line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        try:
            while sent < 50_000_000:
                sock.sendall(line * 64)
                sent += len(line) * 64
        except (BrokenPipeError, ConnectionResetError):
            pass
        # The server wrote the 431 before closing on unread bytes (which resets the connection):
        # TCP delivers it first, and the kernel hands queued data over before the reset's error.
        sock.settimeout(GIVE_UP_S)
        reply = sock.recv(200)
    assert sent < 5_000_000, "the server kept reading an endless header block"
    assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert _rss_kib(strict_receiver.pid) - rss_before < 20_000


def test_many_slow_connections_neither_block_deliveries_nor_leak_descriptors(
    tmp_path: Path,
) -> None:
    # A head deadline of 10 s (not the module's 1 s): the check that the 300 connections are
    # really held runs while they must still be open, and opening them takes milliseconds, so
    # this leaves a loaded machine about a thousand times the time it needs.
    args = ["--head-timeout", "10", "--keep-alive-timeout", "1"]
    with ReceiverProcess(tmp_path / "landing", secrets=[SECRET], args=args) as receiver:
        _slow_connections_are_released(receiver)


def _slow_connections_are_released(receiver: ReceiverProcess) -> None:
    pid = receiver.pid
    baseline = _open_fds(pid)
    slow = [_open(receiver) for _ in range(300)]
    try:
        for sock in slow:
            sock.sendall(HEAD)  # and never finish
        body = event(2)
        reply = post(receiver.webhook_url, body, signed_headers(body), timeout=GIVE_UP_S)
        assert reply.status == 204
        assert _open_fds(pid) >= baseline + 250  # they were really being held
        deadline = time.monotonic() + GIVE_UP_S
        while time.monotonic() < deadline and _open_fds(pid) > baseline + 5:
            time.sleep(0.1)
        assert _open_fds(pid) <= baseline + 5  # the head deadline released them all
    finally:
        for sock in slow:
            sock.close()
