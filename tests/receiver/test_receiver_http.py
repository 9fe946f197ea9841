"""A real receiver on loopback: each bad delivery answers its code and lands nothing."""

from __future__ import annotations

import json
import socket

import pytest
from receiver_kit import (
    OTHER_SECRET,
    SECRET,
    TOKEN,
    event,
    get,
    landed,
    landing_size,
    metric,
    post,
    signed_headers,
)

from pipeline.receiver.process import ReceiverProcess


def _rejected(receiver: ReceiverProcess, body: bytes, headers: dict[str, str]) -> int:
    """POST, assert nothing landed and the refusal is counted; return the status."""
    before = landing_size(receiver.landing_dir)
    reply = post(receiver.webhook_url, body, headers)
    assert landing_size(receiver.landing_dir) == before
    assert reply.headers["content-type"] == "application/json"
    return reply.status


def test_signed_delivery_is_acknowledged_and_lands_byte_for_byte(hmac_receiver) -> None:
    body = event(1)
    reply = post(hmac_receiver.webhook_url, body, signed_headers(body))
    assert reply.status == 204
    [line] = [d for d in landed(hmac_receiver.landing_dir) if d.body == body]
    assert (line.auth.mode, line.auth.signature_form, line.auth.secret_index) == ("hmac", "raw", 0)


def test_verified_object_with_an_unknown_type_is_still_landed(hmac_receiver) -> None:
    body = b'{"type":"something.eduMe.added.later","payload":{"x":1}}'
    assert post(hmac_receiver.webhook_url, body, signed_headers(body)).status == 204
    assert body in [d.body for d in landed(hmac_receiver.landing_dir)]


def test_pretty_printed_body_is_accepted_as_reserialized(hmac_receiver) -> None:
    signed = b'{"type":"x","payload":{"score":1}}'
    sent = b'{\n  "type": "x",\n  "payload": {"score": 1.0}\n}'
    headers = {**signed_headers(signed), "content-type": "application/json; charset=utf-8"}
    assert post(hmac_receiver.webhook_url, sent, headers).status == 204
    [line] = [d for d in landed(hmac_receiver.landing_dir) if d.body == sent]
    assert line.auth.signature_form == "reserialized"


def test_tampered_body_is_rejected_and_nothing_lands(hmac_receiver) -> None:
    body = event(2)
    headers = signed_headers(body)
    assert _rejected(hmac_receiver, body.replace(b"90002", b"90003"), headers) == 401


def test_wrong_secret_is_rejected_and_nothing_lands(hmac_receiver) -> None:
    body = event(3)
    assert _rejected(hmac_receiver, body, signed_headers(body, OTHER_SECRET)) == 401


def test_missing_signature_header_is_rejected_and_nothing_lands(hmac_receiver) -> None:
    assert _rejected(hmac_receiver, event(4), {"content-type": "application/json"}) == 401


def test_truncated_signature_is_rejected_and_nothing_lands(hmac_receiver) -> None:
    body = event(5)
    headers = signed_headers(body)
    headers["x-edume-signature"] = headers["x-edume-signature"][:40]
    assert _rejected(hmac_receiver, body, headers) == 401


def test_empty_body_is_rejected_and_nothing_lands(hmac_receiver) -> None:
    assert _rejected(hmac_receiver, b"", signed_headers(b"")) == 400


def test_invalid_json_is_rejected_and_nothing_lands(hmac_receiver) -> None:
    body = b'{"type":"course.added","payload":'
    assert _rejected(hmac_receiver, body, signed_headers(body)) == 400


def test_json_array_is_rejected_and_nothing_lands(hmac_receiver) -> None:
    body = b'[{"type":"course.added"}]'
    assert _rejected(hmac_receiver, body, signed_headers(body)) == 400


def test_oversize_body_is_rejected_and_nothing_lands(hmac_receiver) -> None:
    body = event(7, padding="x" * (1024 * 1024))
    assert _rejected(hmac_receiver, body, signed_headers(body)) == 413


def test_oversize_chunked_body_is_cut_off_while_reading(hmac_receiver) -> None:
    # No Content-Length: the limit must be enforced on the bytes as they arrive.
    before = landing_size(hmac_receiver.landing_dir)
    with socket.create_connection(("127.0.0.1", hmac_receiver.port), timeout=10) as sock:
        sock.sendall(
            b"POST /webhooks/edume HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nX-Edume-Signature: " + b"0" * 64 + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 65536
        try:
            for _ in range(40):  # 2.5 MiB offered, more than twice the limit
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        status_line = sock.recv(200).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert landing_size(hmac_receiver.landing_dir) == before


def test_get_on_the_webhook_path_is_405(hmac_receiver) -> None:
    assert get(hmac_receiver.webhook_url).status == 405


def test_unknown_path_is_404(hmac_receiver) -> None:
    assert get(f"{hmac_receiver.url}/webhooks/../etc/passwd").status == 404


def test_rejections_are_counted_by_reason_in_metrics(hmac_receiver) -> None:
    name = 'edume_receiver_deliveries_rejected_total{reason="signature_mismatch"}'
    before = metric(hmac_receiver.url, name, default=0)  # absent until the first mismatch
    body = event(8)
    post(hmac_receiver.webhook_url, body, signed_headers(body, OTHER_SECRET))
    assert metric(hmac_receiver.url, name) == before + 1


def test_healthz_answers_200_with_a_writable_landing(hmac_receiver) -> None:
    reply = get(f"{hmac_receiver.url}/healthz")
    assert reply.status == 200
    assert json.loads(reply.body) == {"status": "ok", "landing_writable": True}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}"])
def test_missing_or_wrong_bearer_token_is_rejected_and_nothing_lands(
    bearer_receiver, authorization: str | None
) -> None:
    body = event(9)
    headers = signed_headers(body)
    if authorization:
        headers["authorization"] = authorization
    assert _rejected(bearer_receiver, body, headers) == 401


def test_valid_token_without_signature_is_rejected_when_both_are_configured(
    bearer_receiver,
) -> None:
    headers = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}
    assert _rejected(bearer_receiver, event(10), headers) == 401


def test_signature_and_token_together_are_accepted(bearer_receiver) -> None:
    body = event(11)
    headers = {**signed_headers(body), "authorization": f"Bearer {TOKEN}"}
    assert post(bearer_receiver.webhook_url, body, headers).status == 204
    [line] = [d for d in landed(bearer_receiver.landing_dir) if d.body == body]
    assert (line.auth.mode, line.auth.token_index) == ("hmac+bearer", 0)


def test_token_only_receiver_accepts_the_right_token(token_only_receiver) -> None:
    body = event(12)
    headers = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}
    assert post(token_only_receiver.webhook_url, body, headers).status == 204
    [line] = [d for d in landed(token_only_receiver.landing_dir) if d.body == body]
    assert (line.auth.mode, line.auth.token_index) == ("bearer", 0)
    assert (line.auth.signature_form, line.auth.secret_index) == (None, None)


def test_token_only_receiver_refuses_a_wrong_token_with_401(token_only_receiver) -> None:
    headers = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}x"}
    assert _rejected(token_only_receiver, event(13), headers) == 401


def test_token_only_receiver_refuses_a_signature_only_delivery_with_401(
    token_only_receiver,
) -> None:
    body = event(14)
    assert _rejected(token_only_receiver, body, signed_headers(body)) == 401


def test_both_rotation_secrets_are_accepted_at_once(tmp_path) -> None:
    new, old = "whsec_new_rotation", SECRET
    with ReceiverProcess(tmp_path / "landing", secrets=[new, old]) as receiver:
        first, second = event(20), event(21)
        assert post(receiver.webhook_url, first, signed_headers(first, new)).status == 204
        assert post(receiver.webhook_url, second, signed_headers(second, old)).status == 204
        indexes = {d.body: d.auth.secret_index for d in landed(receiver.landing_dir)}
    assert (indexes[first], indexes[second]) == (0, 1)


def test_a_removed_secret_is_refused_after_rotation(tmp_path) -> None:
    new, old = "whsec_new_rotation", SECRET
    with ReceiverProcess(tmp_path / "landing", secrets=[new]) as receiver:
        body = event(22)
        assert post(receiver.webhook_url, body, signed_headers(body, old)).status == 401
        assert post(receiver.webhook_url, body, signed_headers(body, new)).status == 204


def test_serve_refuses_to_start_without_secrets_or_tokens(tmp_path) -> None:
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "EDUME_LANDING_DIR": str(tmp_path / "landing")}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "EDUME_SIGNATURE_SECRETS" in done.stderr
    assert not (tmp_path / "landing").exists()


def test_sigterm_seals_open_segments_and_exits_zero(tmp_path) -> None:
    receiver = ReceiverProcess(tmp_path / "landing", secrets=[SECRET])
    bodies = [event(n) for n in range(30, 40)]
    for body in bodies:
        assert post(receiver.webhook_url, body, signed_headers(body)).status == 204
    assert receiver.stop() == 0
    assert sorted(d.body for d in landed(tmp_path / "landing", include_open=False)) == sorted(
        bodies
    )
    assert not list((tmp_path / "landing").rglob("*.open"))
