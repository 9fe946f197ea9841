"""Fuzz target: the receiver's ASGI app (``pipeline/receiver/app.py``), in-process, no sockets.

One real ``ReceiverApp`` with a real ``LandingWriter`` (started through the ASGI lifespan, landing
in a scratch directory) is driven with fake ``receive``/``send`` callables. Properties checked
on every request (an ``AssertionError`` or any other exception is a finding):

1. Never a 5xx for client input (the landing is healthy), and exactly one well-formed response.
2. 204 exactly when the request is a complete POST to ``/webhooks/edume`` (any content type, or
   none), no bogus Content-Length, a body within the limit that is a JSON object, and the HMAC
   eduMe would send (computed here with ``hmac``, not by the code under test).
3. Only a 204 lands anything: then exactly one line, of exactly the length of that body's line
   with its content type recorded (so unverified bytes never land, and a verified body lands
   once).

Input layout: three control bytes (route and method; content type, Content-Length and signature;
how the body is split into ASGI messages), then the body.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["pipeline"]):
    from pipeline.receiver.app import WEBHOOK_PATH, ReceiverApp, ReceiverConfig
    from pipeline.receiver.landing_format import Authentication, Envelope, format_line
    from pipeline.receiver.signature import Credentials

SECRET = b"whsec_edume_known_answer"
MAX_BODY = 2048
ROUTES = (
    (WEBHOOK_PATH, "POST"),
    (WEBHOOK_PATH, "POST"),
    (WEBHOOK_PATH, "GET"),
    ("/healthz", "GET"),
)
CONTENT_TYPES = (
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/VND.EDUME+JSON",
    "text/plain",
    "",
    "application/jsonx",
    "multipart/form-data; boundary=x",
    None,  # no header
)
DRAIN_ALLOWANCE = 8 * 1024 * 1024  # app.py reads and drops up to this much of an oversize body


class Harness:
    """The app, its event loop and its landing, started once per fuzzing process."""

    def __init__(self, landing_dir: Path) -> None:
        quiet = logging.getLogger("pipeline.receiver.rejections")
        quiet.addHandler(logging.NullHandler())  # one JSON line per rejection would flood stderr
        quiet.propagate = False
        config = ReceiverConfig(Credentials((SECRET,)), landing_dir, MAX_BODY, landing_lanes=1)
        self.app = ReceiverApp(config)
        self.loop = asyncio.new_event_loop()
        self.started = self.loop.create_future()
        self.lifespan = self.loop.create_task(self.app({"type": "lifespan"}, self._life, self._up))
        self.loop.run_until_complete(self.started)
        assert self.app.writer is not None

    async def _life(self) -> dict[str, str]:
        if not self.started.done():
            return {"type": "lifespan.startup"}
        await asyncio.Event().wait()  # never shut down: the process ends with the fuzzer
        raise AssertionError("unreachable")

    async def _up(self, message: dict[str, Any]) -> None:
        assert message["type"] == "lifespan.startup.complete", message
        self.started.set_result(None)

    def request(self, scope: dict[str, Any], messages: list[dict[str, Any]]) -> int:
        """Run one request; return its status after checking the response is well formed."""
        pending = list(messages)
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return pending.pop(0) if pending else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        self.loop.run_until_complete(self.app(scope, receive, send))
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"], sent
        assert not sent[1].get("more_body", False), sent
        return sent[0]["status"]


_harness: Harness | None = None


def _is_json_object(body: bytes) -> bool:
    """JSON.parse semantics (no NaN/Infinity, any number size), with the standard library."""

    def reject(name: str) -> None:
        raise ValueError(name)

    try:
        value = json.loads(body.decode("utf-8"), parse_constant=reject, parse_int=float)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict)


def _headers(control: int, body: bytes) -> tuple[list[tuple[bytes, bytes]], bool, str | None]:
    """Request headers from the control byte, whether they are what eduMe sends, and the
    Content-Type sent (``None``: no header)."""
    headers: list[tuple[bytes, bytes]] = []
    content_type = CONTENT_TYPES[control & 0x07]
    if content_type is not None:
        headers.append((b"content-type", content_type.encode()))
    length_mode = (control >> 3) & 0x03
    if length_mode == 1:
        headers.append((b"content-length", str(len(body)).encode()))
    elif length_mode == 2:
        headers.append((b"content-length", b"12x"))
    elif length_mode == 3:
        headers.append((b"content-length", str(MAX_BODY + DRAIN_ALLOWANCE + 1).encode()))
    digest = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    signature_mode = control >> 5
    presented = {
        4: None,
        5: hmac.new(b"not the secret", body, hashlib.sha256).hexdigest(),
        6: body[:64].decode("latin-1"),
        7: digest.upper(),
    }.get(signature_mode, digest)
    if presented is not None:
        headers.append((b"x-edume-signature", presented.encode("latin-1")))
    genuine = length_mode < 2 and signature_mode in (0, 1, 2, 3, 7)
    return headers, genuine, content_type


def _messages(control: int, body: bytes) -> tuple[list[dict[str, Any]], bool]:
    """The body as 1-4 ``http.request`` messages, maybe cut short; and whether it is complete."""
    pieces = (control & 0x03) + 1
    step = max(1, len(body) // pieces)
    chunks = [body[i : i + step] for i in range(0, len(body), step)] or [b""]
    complete = control & 0x0C != 0x0C  # one request in four is cut short
    if not complete:
        chunks = chunks[: max(1, len(chunks) - 1)]
    messages = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    messages[-1]["more_body"] = not complete
    return messages, complete


def check(data: bytes) -> None:
    if len(data) < 3:
        return
    assert _harness is not None
    path, method = ROUTES[data[0] & 0x03]
    body = data[3:]
    headers, genuine, content_type = _headers(data[1], body)
    messages, complete = _messages(data[2], body)
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers,
        "client": ("127.0.0.1", 50000),
    }
    before = _harness.app.writer.stats
    lines, size = before.landed_lines, before.landed_bytes

    status = _harness.request(scope, messages)

    stats = _harness.app.writer.stats  # read again: a writer may replace the object

    assert status < 500, (status, scope, body)
    acceptable = (
        (path, method) == (WEBHOOK_PATH, "POST")
        and genuine
        and complete
        and len(body) <= MAX_BODY
        and _is_json_object(body)
    )
    assert (status == 204) == acceptable, (status, acceptable, scope, body)
    if status == 204:
        auth = Authentication("hmac", "raw", 0, None)
        envelope = Envelope(content_type=content_type)
        expected = len(format_line(body, auth, datetime.now(UTC), envelope))
        assert (stats.landed_lines - lines, stats.landed_bytes - size) == (1, expected)
    else:
        assert (stats.landed_lines, stats.landed_bytes) == (lines, size), "a refusal landed"


def main() -> None:
    global _harness
    scratch = os.environ.get("EDUME_FUZZ_WORKDIR") or tempfile.mkdtemp(prefix="edume-fuzz-")
    _harness = Harness(Path(scratch) / "landing")
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
