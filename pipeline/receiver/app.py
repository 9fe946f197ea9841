"""The thin ASGI adapter: read the bytes, verify them, land them, map every outcome to a status.

Routes: ``POST /webhooks/edume``, ``GET /healthz``, ``GET /metrics`` (Prometheus text).
For a delivery, in this order: 415 (reason ``unsupported_content_encoding``) for a
``Content-Encoding`` other than ``gzip`` or ``identity``; 413 when the body exceeds the limit
(counted while reading, so never more than the limit is held; the excess is read and dropped, up
to an allowance, so the client sees the 413 before the connection closes; a declared length
beyond that allowance is refused at once); 408 when the body does not arrive within the read
deadline; a gzip body is then decoded, streamed with a cap, so its DECODED size obeys the same
limit (413, no zip bombs) and a corrupt one is a 400; 401 when authentication fails
(``signature.verify`` on the decoded bytes, before any parsing), 400 when the verified body is not
a JSON object, then the line (with the name of the body's shape, from the value just parsed) is
appended and the answer waits for the fsync that covers it: 204,
or 503 with ``Retry-After`` if the landing cannot be written.

Any ``Content-Type`` (or none) is accepted: the signature or token, not the media type, makes a
delivery trustworthy, and an HTTP client's default (``text/plain``,
``application/x-www-form-urlencoded``) must not turn every real delivery into a refusal and a
retry storm. The media types and encodings seen are counted, and each landed line records the
delivery's ``Content-Type``, ``Content-Encoding`` and ``User-Agent``.

Unauthenticated bodies are never stored. Every rejection is counted by reason and logged as one
JSON line (time, remote address, reason, size, body SHA-256); header values go through the JSON
encoder, so they cannot forge log lines, and secrets are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import generate_latest

from pipeline.receiver.landing import (
    DEFAULT_IDLE_SEAL_S,
    DEFAULT_MAX_SEGMENT_AGE_S,
    DEFAULT_MAX_SEGMENT_BYTES,
    LandingUnavailable,
)
from pipeline.receiver.landing_format import Envelope, body_shape, format_line, parse_body
from pipeline.receiver.landing_process import LandingProcess
from pipeline.receiver.metrics import CONTENT_TYPE, LATENCY_BUCKETS, Histogram, build_registry
from pipeline.receiver.signature import AuthenticationError, Credentials, verify

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WEBHOOK_PATH = "/webhooks/edume"
RESTART_INTERVAL_S = 1.0  # how often a lost landing writer is started again
_LOGGED_HEADER_CHARS = 200
_IDENTITY_ENCODINGS = ("", "identity")
_GZIP_ENCODINGS = ("gzip", "x-gzip")  # x-gzip: RFC 9110 asks recipients to treat it as gzip
_MEDIA_TYPES_COUNTED = 32  # distinct label values kept; any further one counts as "other"
# The 204's two ASGI messages, built once (the server only reads them).
_ACCEPTED_START: Message = {"type": "http.response.start", "status": 204, "headers": ()}
_ACCEPTED_BODY: Message = {"type": "http.response.body", "body": b""}


@dataclass(frozen=True)
class ReceiverConfig:
    """Everything the app needs; built by ``serve`` from the settings and flags."""

    credentials: Credentials
    landing_dir: Path
    max_body_bytes: int
    body_timeout_s: float = 15.0
    retry_after_s: int = 30
    max_segment_bytes: int = DEFAULT_MAX_SEGMENT_BYTES
    max_segment_age_s: float = DEFAULT_MAX_SEGMENT_AGE_S
    landing_lanes: int = 8
    idle_seal_s: float | None = DEFAULT_IDLE_SEAL_S  # None: segments seal by size and age only


@dataclass
class _Counters:
    accepted: int = 0
    deferred: int = 0  # 503: the landing could not be written; eduMe retries
    writer_restarts: int = 0  # a lost landing process replaced
    rejected: Counter[str] = field(default_factory=Counter)
    media_types: Counter[str] = field(default_factory=Counter)  # of accepted deliveries
    encodings: Counter[str] = field(default_factory=Counter)  # of accepted deliveries


class _Reject(Exception):
    def __init__(self, status: int, reason: str, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.reason, self.close = status, reason, close


class _BodyTooLarge(Exception):
    def __init__(self, received: bytes) -> None:
        self.received = received


def json_object(body: bytes) -> dict | None:
    """The body's value when it is UTF-8 JSON text whose top-level value is an object, else None."""
    try:
        value = parse_body(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _rejection_logger() -> logging.Logger:
    logger = logging.getLogger("pipeline.receiver.rejections")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


class ReceiverApp:
    """An ASGI 3 application. The landing writer starts and stops with the ASGI lifespan."""

    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config
        self.counters = _Counters()
        self.writer: LandingProcess | None = None
        self.request_seconds = Histogram(LATENCY_BUCKETS)
        self.fsync_wait_seconds = Histogram(LATENCY_BUCKETS)
        self._registry = build_registry(self, lambda: self.writer.pid if self.writer else None)
        self._log = _rejection_logger()
        self._restart_tried_at = float("-inf")
        # How much of an oversize body is read and dropped so the 413 reaches the client intact
        # (closing on unread data makes the kernel reset the connection, losing the answer).
        self._drain_bytes = max(4 * config.max_body_bytes, 8 * 1024 * 1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    # --- lifespan ---------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.writer = self._start_writer()
                except OSError as exc:
                    text = f"cannot use landing dir {self.config.landing_dir}: {exc}"
                    await send({"type": "lifespan.startup.failed", "message": text})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.writer is not None:
                    await loop.run_in_executor(None, self.writer.close)  # flush and seal
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- routing ----------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == WEBHOOK_PATH:
            started = time.perf_counter()
            if method != "POST":
                await _respond(send, 405, {"error": "method_not_allowed"}, [(b"allow", b"POST")])
                self.counters.rejected["method_not_allowed"] += 1
            else:
                await self._delivery(scope, receive, send)
            self.request_seconds.observe(time.perf_counter() - started)
        elif path == "/healthz" and method in ("GET", "HEAD"):
            healthy = self.writer is not None and self.writer.healthy
            await _respond(send, 200, {"status": "ok", "landing_writable": healthy})
        elif path == "/metrics" and method == "GET":
            await _respond_text(send, 200, generate_latest(self._registry))
        else:
            self.counters.rejected["not_found"] += 1
            await _respond(send, 404, {"error": "not_found"})

    # --- deliveries -------------------------------------------------------------------------

    async def _delivery(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        body = b""
        encoding = headers.get("content-encoding")
        try:
            self._check_declared_length(headers.get("content-length"))
            gzipped = _is_gzip(encoding)
            body = await self._read_body(receive)
            if gzipped:
                body = gunzip(body, self.config.max_body_bytes)
            try:
                auth = verify(body, headers, self.config.credentials)
            except AuthenticationError as exc:
                raise _Reject(401, exc.reason, str(exc)) from None
            value = json_object(body)
            if value is None:
                raise _Reject(400, "not_a_json_object", "the body must be a JSON object")
            content_type = headers.get("content-type")
            envelope = Envelope(content_type, encoding, headers.get("user-agent"))
            await self._land(body, auth, envelope, body_shape(value))
        except _BodyTooLarge as exc:
            body = exc.received
            limit = self.config.max_body_bytes
            reject = _Reject(413, "body_too_large", f"the body exceeds {limit} bytes", close=True)
            await self._reject(scope, headers, body, reject, send)
        except _Reject as reject:
            await self._reject(scope, headers, body, reject, send)
        except LandingUnavailable:
            self.counters.deferred += 1
            retry = str(self.config.retry_after_s).encode()
            await _respond(send, 503, {"error": "landing_unavailable"}, [(b"retry-after", retry)])
        else:
            self.counters.accepted += 1
            self._count_media(content_type, encoding)
            await send(_ACCEPTED_START)
            await send(_ACCEPTED_BODY)

    def _check_declared_length(self, declared: str | None) -> None:
        if declared is None:
            return
        try:
            length = int(declared)
        except ValueError:
            raise _Reject(400, "bad_content_length", "Content-Length is not a number") from None
        if length > self.config.max_body_bytes + self._drain_bytes:
            raise _BodyTooLarge(b"")

    async def _read_body(self, receive: Receive) -> bytes:
        """The whole body, refusing to hold more than the limit or to wait past the deadline."""
        limit = self.config.max_body_bytes
        body = bytearray()
        oversize = 0  # bytes beyond the limit, read and dropped
        # One timer that cancels this task, cheaper than asyncio.timeout() on the hot path.
        task = asyncio.current_task()
        assert task is not None
        expired = []

        def expire() -> None:
            expired.append(True)
            task.cancel()

        deadline = asyncio.get_running_loop().call_later(self.config.body_timeout_s, expire)
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Reject(400, "client_disconnected", "the client went away")
                chunk = message.get("body", b"")
                more = message.get("more_body", False)
                if oversize or len(body) + len(chunk) > limit:
                    if not oversize:
                        body += chunk[: limit - len(body)]
                    oversize += len(chunk)
                    # Drain (not keep) the rest so the client can read the 413 before we close;
                    # a body past the drain allowance is answered at once.
                    if not more or oversize > self._drain_bytes:
                        raise _BodyTooLarge(bytes(body))
                    continue
                if not more:
                    # One chunk (the usual case): no copy. bytes() of a bytes is the same object.
                    return bytes(chunk) if not body else bytes(body + chunk)
                body += chunk
        except asyncio.CancelledError:
            if not expired or task.cancelling() > 1:
                raise  # cancelled for another reason (shutdown): not ours to swallow
            task.uncancel()
            raise _Reject(
                408, "body_timeout", "the body did not arrive in time", close=True
            ) from None
        finally:
            deadline.cancel()

    async def _land(self, body: bytes, auth: Any, envelope: Envelope, shape: str | None) -> None:
        writer = self._live_writer()
        line = format_line(body, auth, datetime.now(UTC), envelope, shape)
        waiting = time.perf_counter()
        await writer.append_async(line)
        self.fsync_wait_seconds.observe(time.perf_counter() - waiting)

    def _count_media(self, content_type: str | None, encoding: str | None) -> None:
        """Count an accepted delivery's media type (``none`` when absent) and encoding. Label
        values are bounded: past ``_MEDIA_TYPES_COUNTED`` distinct ones, a new one is ``other``."""
        for counter, value in (
            (self.counters.media_types, _media_type(content_type)),
            (self.counters.encodings, (encoding or "").strip().lower() or "none"),
        ):
            if value not in counter and len(counter) >= _MEDIA_TYPES_COUNTED:
                value = "other"
            counter[value] += 1

    def _start_writer(self) -> LandingProcess:
        # From this (the loop's) thread: the writer process dies with it.
        return LandingProcess.start(
            self.config.landing_dir,
            max_segment_bytes=self.config.max_segment_bytes,
            max_segment_age_s=self.config.max_segment_age_s,
            lanes=self.config.landing_lanes,
            idle_seal_s=self.config.idle_seal_s,
        )

    def _live_writer(self) -> LandingProcess:
        """The landing writer. A lost one is replaced, at most once per ``RESTART_INTERVAL_S``
        (blocking the loop for the child's start-up, a rare event): the new child's recovery seals
        what the lost one left open. Until then :class:`LandingUnavailable` (a 503)."""
        writer = self.writer
        if writer is None:
            raise LandingUnavailable(0, "the landing writer is not running")
        if writer.lost and time.monotonic() - self._restart_tried_at >= RESTART_INTERVAL_S:
            self._restart_tried_at = time.monotonic()
            writer.close()
            try:
                self.writer = writer = self._start_writer()
            except OSError as exc:
                raise LandingUnavailable(exc.errno or 0, f"landing writer restart: {exc}") from exc
            self.counters.writer_restarts += 1
        return writer

    async def _reject(
        self, scope: Scope, headers: dict[str, str], body: bytes, reject: _Reject, send: Send
    ) -> None:
        self.counters.rejected[reject.reason] += 1
        client = scope.get("client")
        self._log.info(
            orjson.dumps(
                {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "event": "delivery_rejected",
                    "status": reject.status,
                    "reason": reject.reason,
                    "remote": f"{client[0]}:{client[1]}" if client else None,
                    "size": len(body),
                    "body_sha256": hashlib.sha256(body).hexdigest(),
                    "content_type": headers.get("content-type", "")[:_LOGGED_HEADER_CHARS],
                    "content_encoding": headers.get("content-encoding", "")[:_LOGGED_HEADER_CHARS],
                    "user_agent": headers.get("user-agent", "")[:_LOGGED_HEADER_CHARS],
                }
            ).decode()
        )
        extra = [(b"connection", b"close")] if reject.close else []
        await _respond(send, reject.status, {"error": reject.reason, "message": str(reject)}, extra)


def _media_type(content_type: str | None) -> str:
    """The media type without parameters, lower case; ``none`` when the header is absent."""
    if content_type is None:
        return "none"
    return content_type.split(";", 1)[0].strip().lower()[:_LOGGED_HEADER_CHARS] or "none"


def _is_gzip(encoding: str | None) -> bool:
    """Whether the body must be gunzipped; 415 for an encoding the receiver cannot decode."""
    codings = [c.strip().lower() for c in (encoding or "").split(",")]
    codings = [c for c in codings if c not in _IDENTITY_ENCODINGS]
    if not codings:
        return False
    if codings == ["gzip"] or codings == ["x-gzip"]:
        return True
    raise _Reject(
        415,
        "unsupported_content_encoding",
        "Content-Encoding must be gzip or identity (or absent)",
    )


def gunzip(data: bytes, limit: int) -> bytes:
    """Decode a gzip body (one or more members), never producing more than ``limit`` bytes:
    :class:`_BodyTooLarge` past it (a zip bomb stops there), a 400 for a corrupt stream."""
    out = bytearray()
    rest = data
    try:
        while True:
            decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            out += decoder.decompress(rest, limit + 1 - len(out))
            if len(out) > limit or decoder.unconsumed_tail:
                raise _BodyTooLarge(b"")
            if not decoder.eof:
                raise _Reject(400, "invalid_gzip", "the gzip body is truncated")
            rest = decoder.unused_data
            if not rest:
                return bytes(out)
    except zlib.error:
        raise _Reject(400, "invalid_gzip", "the body is not valid gzip") from None


def _headers(scope: Scope) -> dict[str, str]:
    # Latin-1 maps every byte to one character, so any header value decodes; names are lower case.
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


async def _respond(
    send: Send, status: int, payload: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = orjson.dumps(payload) + b"\n"
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})


async def _respond_text(send: Send, status: int, body: bytes) -> None:
    headers = [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
