"""Property-based fuzzing of a real receiver: random bodies, headers, content types and raw bytes.
It never answers 5xx for client input, never dies, and lands exactly the verified JSON objects."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from receiver_kit import SECRET, landed, landing_size, post

from pipeline.receiver.process import ReceiverProcess
from pipeline.receiver.signature import js_stringify, sign

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
content_types = (
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/vnd.edume+json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
            "application/jsonx",
            "json",
        ]
    )
    | header_text
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.binary(max_size=2000) | json_values.map(
    lambda v: js_stringify(v).encode("utf-8", "surrogatepass")
)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverProcess]:
    root = tmp_path_factory.mktemp("fuzzed")
    with ReceiverProcess(root / "landing", secrets=[SECRET], log_path=root / "receiver.log") as r:
        yield r
        assert r.running(), "the receiver died while being fuzzed"


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False


@FUZZ
@given(
    body=bodies,
    content_type=content_types,
    signed=st.booleans(),
    extra=st.dictionaries(
        st.sampled_from(
            [
                "x-edume-signature",
                "authorization",
                "user-agent",
                "x-forwarded-for",
                "content-encoding",
            ]
        ),
        header_text,
        max_size=3,
    ),
)
def test_random_requests_never_5xx_and_only_verified_objects_land(
    fuzzed, body: bytes, content_type: str, signed: bool, extra: dict[str, str]
) -> None:
    headers = {**extra, "content-type": content_type}
    if signed:
        headers["x-edume-signature"] = sign(body, SECRET.encode())
    before = landing_size(fuzzed.landing_dir)
    reply = post(fuzzed.webhook_url, body, headers)
    assert reply.status < 500
    # Any media type is fine once the signature verifies; an encoding other than identity is not.
    codings = {c.strip().lower() for c in extra.get("content-encoding", "").split(",")}
    acceptable = signed and _is_json_object(body) and codings <= {"", "identity"}
    assert (reply.status == 204) == acceptable, (reply.status, reply.body)
    if reply.status != 204:
        assert landing_size(fuzzed.landing_dir) == before


@FUZZ
@given(payload=json_values)
def test_any_json_value_signed_stringify_style_is_accepted_over_http(fuzzed, payload) -> None:
    body = js_stringify({"type": "fuzz", "payload": payload}).encode()
    headers = {"content-type": "application/json", "x-edume-signature": sign(body, SECRET.encode())}
    assert post(fuzzed.webhook_url, body, headers).status == 204
    assert body in {d.body for d in landed(fuzzed.landing_dir)}


@FUZZ
@given(
    raw=st.binary(min_size=1, max_size=3000)
    | st.builds(lambda tail: b"POST /webhooks/edume HTTP/1.1\r\n" + tail, st.binary(max_size=500))
)
def test_random_bytes_on_the_socket_never_get_a_5xx(fuzzed, raw: bytes) -> None:
    before = landing_size(fuzzed.landing_dir)
    with socket.create_connection(("127.0.0.1", fuzzed.port), timeout=5) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            reply = sock.recv(64)
        except (ConnectionResetError, BrokenPipeError, TimeoutError):
            reply = b""
    if reply:
        status = int(reply.split(b" ", 2)[1])
        assert status < 500
    assert landing_size(fuzzed.landing_dir) == before
