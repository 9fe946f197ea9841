"""The landing line format: the ONE contract between the receiver and the warehouse.

A landed line is one compact JSON object, keys in this order::

    {"received_at": "2026-11-29T05:00:00.123456Z",   # UTC, microseconds, when the receiver got it
     "delivery_id": "<64 lower-case hex>",           # SHA-256 of the body below
     "auth_mode": "hmac" | "bearer" | "hmac+bearer",
     "signature_form": "raw" | "reserialized" | null, # which bytes the HMAC matched
     "secret_index": 0 | null,                        # which configured secret (never its value)
     "token_index": 0 | null,                         # which configured bearer token
     "content_type": "text/plain" | null,             # the request's headers, as sent (Latin-1
     "content_encoding": "gzip" | null,               # decoded, so any byte survives), null
     "user_agent": "node-fetch/1.0" | null,           # when the header was absent
     "format_version": 3,
     "body_shape": "<16 lower-case hex>" | null,      # names the body's shape (body_shape())
     "body": "<the body, UTF-8 text, as a JSON string>"}

The body is kept as a string so that it is byte-for-byte lossless: ``sha256(body.encode())``
equals ``delivery_id``. For a ``Content-Encoding: gzip`` request the body is the DECODED bytes
(the ones the signature covers), so a retry whose gzip header differs still has the same id.

``body_shape`` lets the payload contract check (:mod:`pipeline.contracts.check`) group bodies by
shape without parsing them again: the receiver has parsed each body already, so naming its shape
costs a walk of the parsed value, and the loader's check a group-by on this column. Two bodies
with the same ``body_shape`` have the same shape (keys, JSON types, distinct array item shapes),
so the check validates one example of each.

Format versions: 1 had no ``content_type``, ``content_encoding``, ``user_agent`` or
``format_version`` keys; a line without them reads as version 1, with those headers null. 2 had
no ``body_shape``; a line without it reads with it null (the check then reads the body's shape
with DuckDB's ``json_structure``). A reader refuses a version it does not know rather than guess
at it.

Segments live under ``<landing>/received_date=YYYY-MM-DD/`` and are named
``<segment_id>.ndjson`` once sealed (``.ndjson.open`` while being appended to). Torn tails cut
during crash recovery go to ``<landing>/_rejects/``. Pure functions only: no I/O here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from pipeline.contracts.schema import shape_of

SEALED_SUFFIX = ".ndjson"
OPEN_SUFFIX = ".ndjson.open"
PARTITION_PREFIX = "received_date="
SEALED_GLOB = f"{PARTITION_PREFIX}*/*{SEALED_SUFFIX}"
REJECTS_DIR = "_rejects"
# A consumer waiting for data asks the writers to seal at once by setting this file's mtime
# (pipeline.loader.landing_watch.request_seal; pipeline.receiver.landing honours it).
SEAL_REQUEST = "_seal_request"
AUTH_MODES = ("hmac", "bearer", "hmac+bearer")
SIGNATURE_FORMS = ("raw", "reserialized")
FORMAT_VERSION = 3
FORMAT_VERSIONS = (1, 2, 3)  # what parse_line and the loader read


@dataclass(frozen=True)
class Authentication:
    """How a delivery proved it came from eduMe. Indexes, never secret values."""

    mode: str
    signature_form: str | None = None
    secret_index: int | None = None
    token_index: int | None = None


@dataclass(frozen=True)
class Envelope:
    """The request headers a delivery arrived with (``None``: absent), recorded so that the first
    real delivery shows what eduMe's HTTP client sends."""

    content_type: str | None = None
    content_encoding: str | None = None
    user_agent: str | None = None


_NO_ENVELOPE = Envelope()


@dataclass(frozen=True)
class LandedDelivery:
    received_at: datetime
    delivery_id: str
    auth: Authentication
    body: bytes
    envelope: Envelope = field(default_factory=Envelope)
    body_shape: str | None = None


def delivery_id(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def parse_body(body: bytes) -> object:
    """The body's JSON value as the receiver reads it: orjson's, or ``JSON.parse``'s where orjson
    refuses valid JSON (lone-surrogate escapes, 1e400). ``ValueError`` when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        from pipeline.receiver.signature import js_parse  # rare; signature imports this module

        return js_parse(body.decode("utf-8"))


def body_shape(value: object) -> str | None:
    """16 hex digits naming the shape (:func:`pipeline.contracts.schema.shape_of`) of a value
    from :func:`parse_body`: a digest of the shape's JSON, so equal names mean equal shapes.
    None for a value nested too deeply for orjson to write (over 254 levels)."""
    try:
        return hashlib.blake2b(orjson.dumps(shape_of(value)), digest_size=8).hexdigest()
    except (orjson.JSONEncodeError, RecursionError):
        return None


def format_received_at(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC; the year always has four digits."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def format_line(
    body: bytes,
    auth: Authentication,
    received_at: datetime,
    envelope: Envelope | None = None,
    shape: str | None = None,
) -> bytes:
    """One landed line (the current format version), newline included. ``body`` must be valid
    UTF-8 (the receiver ensures it, and that it is a JSON object). No ``envelope``: the headers
    are recorded as absent. No ``shape``: :func:`body_shape` of the body is computed here (the
    receiver passes the one of the value it parsed); null for a body that is not JSON."""
    envelope = envelope or _NO_ENVELOPE
    if shape is None:
        try:
            shape = body_shape(parse_body(body))
        except ValueError:
            shape = None
    return orjson.dumps(
        {
            "received_at": format_received_at(received_at),
            "delivery_id": delivery_id(body),
            "auth_mode": auth.mode,
            "signature_form": auth.signature_form,
            "secret_index": auth.secret_index,
            "token_index": auth.token_index,
            "content_type": envelope.content_type,
            "content_encoding": envelope.content_encoding,
            "user_agent": envelope.user_agent,
            "format_version": FORMAT_VERSION,
            "body_shape": shape,
            "body": body.decode("utf-8"),
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )


def parse_line(line: bytes) -> LandedDelivery:
    """Inverse of :func:`format_line`, for every version in ``FORMAT_VERSIONS``. Raises
    ``ValueError`` for anything that is not one."""
    try:
        record = orjson.loads(line)
        body = record["body"].encode("utf-8")
        version = record.get("format_version")
        if version is None:  # absent (format 1) or null: the loader reads both as format 1
            version = 1
        landed = LandedDelivery(
            received_at=datetime.strptime(record["received_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=UTC
            ),
            delivery_id=record["delivery_id"],
            auth=Authentication(
                record["auth_mode"],
                record["signature_form"],
                record["secret_index"],
                record["token_index"],
            ),
            body=body,
            envelope=Envelope(
                record.get("content_type"),
                record.get("content_encoding"),
                record.get("user_agent"),
            ),
            body_shape=record.get("body_shape"),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a landed line: {exc}") from exc
    if type(version) is not int or version not in FORMAT_VERSIONS:
        raise ValueError(f"not a landed line: format_version {version!r}")
    for name, value in [*vars(landed.envelope).items(), ("body_shape", landed.body_shape)]:
        if value is not None and not isinstance(value, str):
            raise ValueError(f"not a landed line: {name} {value!r}")
    if delivery_id(body) != landed.delivery_id:
        raise ValueError("delivery_id does not match the SHA-256 of the body")
    _check_authentication(landed.auth)
    return landed


def _check_authentication(auth: Authentication) -> None:
    """Refuse what :func:`format_line` never writes: the recorded authentication must be one the
    receiver can produce (a known mode and form, indexes absent or non-negative integers)."""
    if auth.mode not in AUTH_MODES:
        raise ValueError(f"not a landed line: auth_mode {auth.mode!r}")
    if auth.signature_form is not None and auth.signature_form not in SIGNATURE_FORMS:
        raise ValueError(f"not a landed line: signature_form {auth.signature_form!r}")
    for name, index in (("secret_index", auth.secret_index), ("token_index", auth.token_index)):
        if index is not None and (type(index) is not int or index < 0):
            raise ValueError(f"not a landed line: {name} {index!r}")


def partition_name(received_at: datetime) -> str:
    return f"{PARTITION_PREFIX}{received_at.astimezone(UTC):%Y-%m-%d}"
