"""Fuzz target: the landing line format (``pipeline/receiver/landing_format.py``).

Properties checked on every input (an ``AssertionError`` or any other exception is a finding):

1. Round trip: for any UTF-8 body, any authentication the receiver can record, any request
   headers (any Latin-1 text, or absent) and any receive time,
   ``parse_line(format_line(body, auth, t, envelope))`` gives back exactly that body (byte for
   byte), its SHA-256 as the delivery id, that authentication, those headers, ``t`` in UTC and
   the name of the body's shape (null when the body is not JSON); the line is ONE line (a single
   trailing newline) and ``line_partition`` files it under the receive date.
2. Garbage: ``parse_line`` of arbitrary bytes raises ``ValueError`` (its documented error) or
   returns a delivery that formats back into a line that parses to the same delivery (a line of
   format 1 or 2, without ``body_shape``, gains one).

Input layout: one control byte (even: round trip, odd: garbage); for a round trip, 12 bytes of
authentication and time, then the body (when the control byte's bit 1 is set, the body is first
split at NUL bytes into Content-Type, Content-Encoding, User-Agent and the body); for garbage,
the line.
Receive times span 1970-9999 (``received_at`` is the receiver's clock, never client input).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import atheris

with atheris.instrument_imports(include=["pipeline"]):
    from pipeline.receiver import landing, landing_format

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
SPAN_US = int((datetime(9999, 12, 30, tzinfo=UTC) - EARLIEST) / timedelta(microseconds=1))
ROUND_TRIP_HEADER = 13  # control byte, auth (2), UTC offset (2), receive time (8)


def _envelope(data: bytes) -> tuple[landing_format.Envelope, bytes]:
    """Request headers from the front of ``data`` (NUL-separated; an empty one is absent), and
    the rest as the body. Header values are Latin-1, as the receiver decodes them."""
    *headers, body = data.split(b"\x00", 3) if data.count(b"\x00") >= 3 else [b"", b"", b"", data]
    values = [value.decode("latin-1") or None for value in headers]
    return landing_format.Envelope(*values), body


def _round_trip(header: bytes, body: bytes, with_headers: bool) -> None:
    mode = landing_format.AUTH_MODES[header[0] % 3]
    hmac_used = mode != "bearer"
    auth = landing_format.Authentication(
        mode,
        landing_format.SIGNATURE_FORMS[header[0] >> 7] if hmac_used else None,
        header[1] >> 4 if hmac_used else None,
        header[1] & 0x0F if mode != "hmac" else None,
    )
    minutes = int.from_bytes(header[2:4], "big", signed=True) % (47 * 60) - 23 * 60
    micros = int.from_bytes(header[4:12], "big") % SPAN_US
    moment = (EARLIEST + timedelta(microseconds=micros)).astimezone(
        timezone(timedelta(minutes=minutes))
    )
    envelope, body = _envelope(body) if with_headers else (landing_format.Envelope(), body)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return  # format_line's contract: the receiver only lands UTF-8 bodies

    line = landing_format.format_line(body, auth, moment, envelope)
    assert line.endswith(b"\n") and line.count(b"\n") == 1, line
    parsed = landing_format.parse_line(line)
    assert parsed.body == body, (parsed.body, body)
    assert parsed.delivery_id == hashlib.sha256(body).hexdigest()
    assert parsed.auth == auth, (parsed.auth, auth)
    assert parsed.envelope == envelope, (parsed.envelope, envelope)
    try:
        shape = landing_format.body_shape(landing_format.parse_body(body))
    except ValueError:
        shape = None  # not JSON: the receiver never lands it, format_line still writes it
    assert parsed.body_shape == shape, (parsed.body_shape, shape)
    assert parsed.received_at == moment and parsed.received_at.tzinfo is UTC, parsed.received_at
    assert landing.line_partition(line) == landing_format.partition_name(moment)


def _garbage(line: bytes) -> None:
    try:
        parsed = landing_format.parse_line(line)
    except ValueError:
        return  # the documented rejection
    again = landing_format.format_line(
        parsed.body, parsed.auth, parsed.received_at, parsed.envelope, parsed.body_shape
    )
    reparsed = landing_format.parse_line(again)
    # A line of format 1 or 2 (no body_shape) gains one: everything else reads back the same.
    assert reparsed == replace(parsed, body_shape=reparsed.body_shape), (line, again)
    assert parsed.body_shape in (None, reparsed.body_shape), (line, again)


def check(data: bytes) -> None:
    if not data:
        return
    if data[0] & 1:
        _garbage(data[1:])
    elif len(data) > ROUND_TRIP_HEADER:
        _round_trip(data[1:ROUND_TRIP_HEADER], data[ROUND_TRIP_HEADER:], bool(data[0] & 2))


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
