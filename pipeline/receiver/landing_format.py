"""The landing line format: the ONE contract between the receiver and the warehouse.

A landed line is one compact JSON object, keys in this order::

    {"received_at": "2026-11-29T05:00:00.123456Z",   # UTC, microseconds, when the receiver got it
     "delivery_id": "<64 lower-case hex>",           # SHA-256 of the raw request body
     "auth_mode": "hmac" | "bearer" | "hmac+bearer",
     "signature_form": "raw" | "reserialized" | null, # which bytes the HMAC matched
     "secret_index": 0 | null,                        # which configured secret (never its value)
     "token_index": 0 | null,                         # which configured bearer token
     "body": "<the raw body, UTF-8 text, as a JSON string>"}

The body is kept as a string so that it is byte-for-byte lossless: ``sha256(body.encode())``
equals ``delivery_id``. Segments live under ``<landing>/received_date=YYYY-MM-DD/`` and are named
``<segment_id>.ndjson`` once sealed (``.ndjson.open`` while being appended to). Torn tails cut
during crash recovery go to ``<landing>/_rejects/``. Pure functions only: no I/O here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

SEALED_SUFFIX = ".ndjson"
OPEN_SUFFIX = ".ndjson.open"
PARTITION_PREFIX = "received_date="
SEALED_GLOB = f"{PARTITION_PREFIX}*/*{SEALED_SUFFIX}"
REJECTS_DIR = "_rejects"
AUTH_MODES = ("hmac", "bearer", "hmac+bearer")
SIGNATURE_FORMS = ("raw", "reserialized")


@dataclass(frozen=True)
class Authentication:
    """How a delivery proved it came from eduMe. Indexes, never secret values."""

    mode: str
    signature_form: str | None = None
    secret_index: int | None = None
    token_index: int | None = None


@dataclass(frozen=True)
class LandedDelivery:
    received_at: datetime
    delivery_id: str
    auth: Authentication
    body: bytes


def delivery_id(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def format_received_at(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC; the year always has four digits."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def format_line(body: bytes, auth: Authentication, received_at: datetime) -> bytes:
    """One landed line, newline included. ``body`` must be valid UTF-8 (the receiver ensures it)."""
    return orjson.dumps(
        {
            "received_at": format_received_at(received_at),
            "delivery_id": delivery_id(body),
            "auth_mode": auth.mode,
            "signature_form": auth.signature_form,
            "secret_index": auth.secret_index,
            "token_index": auth.token_index,
            "body": body.decode("utf-8"),
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )


def parse_line(line: bytes) -> LandedDelivery:
    """Inverse of :func:`format_line`. Raises ``ValueError`` for anything that is not one."""
    try:
        record = orjson.loads(line)
        body = record["body"].encode("utf-8")
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
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a landed line: {exc}") from exc
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
