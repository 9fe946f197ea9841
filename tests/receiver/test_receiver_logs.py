"""Logs: one structured JSON line per rejection, header values escaped, never a secret."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from receiver_kit import SECRET, TOKEN, event, landed, post, signed_headers

from pipeline.receiver.process import ReceiverProcess


def _raw_request(port: int, head: bytes, body: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return sock.recv(200)


def _exercise(receiver: ReceiverProcess) -> None:
    """Every kind of delivery, including the secret and token sent where they do not belong."""
    good = event(1)
    both = {**signed_headers(good), "authorization": f"Bearer {TOKEN}"}
    assert post(receiver.webhook_url, good, both).status == 204
    leaky = event(2, note=SECRET)
    for headers in (
        {**signed_headers(leaky), "authorization": f"Bearer {SECRET}"},  # secret as token
        {
            "content-type": "application/json",
            "x-edume-signature": SECRET,
            "authorization": f"Bearer {TOKEN}x",
        },  # secret as signature
        {**signed_headers(leaky), "authorization": f"Bearer {TOKEN}", "content-encoding": "br"},
        {**signed_headers(b"[]"), "authorization": f"Bearer {TOKEN}"},
    ):
        assert post(receiver.webhook_url, leaky, headers).status in (400, 401, 415)


def test_secrets_and_tokens_never_appear_in_the_logs(tmp_path: Path) -> None:
    log = tmp_path / "receiver.log"
    with ReceiverProcess(
        tmp_path / "landing", secrets=[SECRET], tokens=[TOKEN], log_path=log, args=["--access-log"]
    ) as receiver:
        _exercise(receiver)
        assert receiver.stop() == 0
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "delivery_rejected" in text  # the log was written, so the search below means something
    assert SECRET not in text
    assert TOKEN not in text


def test_each_rejection_is_one_json_line_with_time_remote_reason_size_and_sha256(
    tmp_path: Path,
) -> None:
    log = tmp_path / "receiver.log"
    with ReceiverProcess(tmp_path / "landing", secrets=[SECRET], log_path=log) as receiver:
        body = event(3)
        post(receiver.webhook_url, body, signed_headers(body, "wrong"))
        receiver.stop()
    [line] = [json.loads(x) for x in log.read_text().splitlines() if "delivery_rejected" in x]
    assert line["reason"] == "signature_mismatch" and line["status"] == 401
    assert line["size"] == len(body)
    assert line["remote"].startswith("127.0.0.1:")
    assert {"time", "body_sha256"} <= line.keys()
    assert not landed(tmp_path / "landing")


def test_hostile_header_values_cannot_forge_log_lines(tmp_path: Path) -> None:
    log = tmp_path / "receiver.log"
    body = b'x"}\n{"event":"delivery_accepted","reason":"forged"}'
    with ReceiverProcess(tmp_path / "landing", secrets=[SECRET], log_path=log) as receiver:
        head = (
            b"POST /webhooks/edume HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\n"
            b'User-Agent: evil\t\xff"},{"reason":"forged","x":"\r\n'
            b"X-Edume-Signature: " + b"0" * 64 + b"\r\n"
        )
        assert _raw_request(receiver.port, head, body).startswith(b"HTTP/1.1 415")
        escape = b"POST /webhooks/edume HTTP/1.1\r\nHost: x\r\nUser-Agent: a\x1b[2J\x07\r\n"
        assert _raw_request(receiver.port, escape, b"{}").startswith(b"HTTP/1.1 400")
        receiver.stop()
    raw = log.read_bytes()
    assert b"\x1b" not in raw and b"\x07" not in raw  # terminal escapes never reach the log
    rejections = [x for x in raw.decode().splitlines() if "delivery_rejected" in x]
    assert len(rejections) == 1
    record = json.loads(rejections[0])
    assert record["user_agent"] == 'evil\t\xff"},{"reason":"forged","x":"'
    assert record["reason"] == "unsupported_content_encoding"
