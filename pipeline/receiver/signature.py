"""Who sent this delivery? Pure verification of eduMe's webhook authentication, and its mirror.

eduMe authenticates a delivery in one or both of two ways (see shared/edume-webhooks.md §2):

* **HMAC**: ``X-Edume-Signature`` is the lower-case hex HMAC-SHA256, keyed with the customer's
  signature secret, of ``JSON.stringify(payload)``. The raw body normally *is* that string, so the
  raw bytes are tried first; if no secret matches them, the body is re-serialised exactly as
  ``JSON.stringify(JSON.parse(body))`` would print it (:func:`js_stringify`) and tried again.
* **Bearer**: ``Authorization: Bearer <token>``.

When both are configured, both must pass. Every comparison is constant-time and every configured
secret and token is tried, so timing tells an attacker nothing about which one came close.
Nothing here does I/O; :func:`verify` takes bytes and headers and returns an
:class:`~pipeline.receiver.landing_format.Authentication` or raises :class:`AuthenticationError`,
whose ``reason`` is a short, stable, secret-free code used for metrics and logs.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.receiver.landing_format import Authentication

# Few distinct outcomes (mode x form x indexes) and the result is frozen: share the instances
# instead of building one per delivery.
_authentication = functools.lru_cache(maxsize=256)(Authentication)

SIGNATURE_HEADER = "x-edume-signature"
AUTHORIZATION_HEADER = "authorization"
_HEX_DIGEST_LENGTH = 64
_ARRAY_INDEX_MAX = 2**32 - 2  # ECMAScript orders keys that are array indexes first
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]{0,9}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class AuthenticationError(Exception):
    """The delivery did not prove it came from eduMe. ``reason`` is safe to log and count."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Credentials:
    """What the receiver accepts. Either tuple may be empty, not both (checked by the server)."""

    secrets: tuple[bytes, ...] = ()
    tokens: tuple[str, ...] = ()

    def __repr__(self) -> str:  # values never reach a log line or a traceback
        return f"Credentials(secrets=<{len(self.secrets)}>, tokens=<{len(self.tokens)}>)"


def sign(body: bytes, secret: bytes) -> str:
    """The ``X-Edume-Signature`` value eduMe sends for ``body``: lower-case hex HMAC-SHA256."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(body: bytes, headers: Mapping[str, str], credentials: Credentials) -> Authentication:
    """Check ``body`` against every configured mode; return how it was authenticated.

    ``headers`` maps lower-case header names to their (latin-1 decoded) values. Raises
    :class:`AuthenticationError` with the first failing mode's reason when any configured mode
    fails, and ``ValueError`` when ``credentials`` configures nothing at all.
    """
    if not credentials.secrets and not credentials.tokens:
        raise ValueError("no signature secrets and no bearer tokens are configured")
    form = secret_index = token_index = None
    if credentials.secrets:
        form, secret_index = _verify_signature(body, headers.get(SIGNATURE_HEADER), credentials)
    if credentials.tokens:
        token_index = _verify_bearer(headers.get(AUTHORIZATION_HEADER), credentials.tokens)
    if credentials.secrets and credentials.tokens:
        mode = "hmac+bearer"
    else:
        mode = "hmac" if credentials.secrets else "bearer"
    return _authentication(mode, form, secret_index, token_index)


def _verify_signature(body: bytes, header: str | None, credentials: Credentials) -> tuple[str, int]:
    if header is None or not header.strip():
        raise AuthenticationError("missing_signature", "X-Edume-Signature header is missing")
    presented = _digest_bytes(header.strip())
    if presented is None:
        raise AuthenticationError(
            "malformed_signature", "X-Edume-Signature is not a 64-character hex HMAC-SHA256"
        )
    index = _matching_secret(body, presented, credentials.secrets)
    if index is not None:
        return "raw", index
    reserialized = js_stringify_bytes(body)
    if reserialized is not None and reserialized != body:
        index = _matching_secret(reserialized, presented, credentials.secrets)
        if index is not None:
            return "reserialized", index
    raise AuthenticationError("signature_mismatch", "X-Edume-Signature does not match the body")


def _digest_bytes(header: str) -> bytes | None:
    """The 32 bytes a 64-hex-digit header spells (either case), or None."""
    if len(header) != _HEX_DIGEST_LENGTH:
        return None
    try:
        digest = bytes.fromhex(header)
    except ValueError:
        return None
    return digest if len(digest) == _HEX_DIGEST_LENGTH // 2 else None  # fromhex skips spaces


def _matching_secret(body: bytes, presented: bytes, secrets: Sequence[bytes]) -> int | None:
    """Index of the first secret whose digest matches; every secret is always tried."""
    found = None
    for index, secret in enumerate(secrets):
        expected = hmac.digest(secret, body, "sha256")
        if hmac.compare_digest(expected, presented) and found is None:
            found = index
    return found


def _verify_bearer(header: str | None, tokens: Sequence[str]) -> int:
    if header is None or not header.strip():
        raise AuthenticationError("missing_token", "Authorization: Bearer header is missing")
    scheme, _, presented = header.strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise AuthenticationError("malformed_token", "Authorization is not 'Bearer <token>'")
    presented_bytes = presented.encode("utf-8", "surrogateescape")
    found = None
    for index, token in enumerate(tokens):
        if hmac.compare_digest(token.encode("utf-8"), presented_bytes) and found is None:
            found = index
    if found is None:
        raise AuthenticationError("token_mismatch", "bearer token is not one of the configured")
    return found


# --- JSON.stringify(JSON.parse(text)), exactly as V8 prints it -----------------------------------


class _NotJson(ValueError):
    pass


def _reject_constant(name: str) -> float:
    raise _NotJson(f"{name} is not JSON")  # Python's json accepts NaN/Infinity; JSON.parse doesn't


def _js_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # JSON.parse keeps a duplicated key at its first position with its last value (dict does too);
    # then ECMAScript's OrdinaryOwnPropertyKeys puts array-index keys first, ascending.
    obj = dict(pairs)
    indexes = [k for k in obj if _ARRAY_INDEX.fullmatch(k) and int(k) <= _ARRAY_INDEX_MAX]
    if not indexes:
        return obj
    ordered = {k: obj[k] for k in sorted(indexes, key=int)}
    ordered.update((k, v) for k, v in obj.items() if k not in ordered)
    return ordered


def js_parse(text: str) -> object:
    """``JSON.parse(text)``: every number becomes a double, objects keep JS key order.

    Raises ``ValueError`` for text that ``JSON.parse`` would reject.
    """
    try:
        return json.loads(
            text,
            parse_int=float,
            parse_float=float,
            parse_constant=_reject_constant,
            object_pairs_hook=_js_object,
        )
    except RecursionError as exc:  # absurd nesting: not something eduMe sends
        raise _NotJson("nested too deeply") from exc


def js_number(value: float) -> str:
    """``Number.prototype.toString()`` for a double (ECMAScript Number::toString, radix 10)."""
    if math.isnan(value) or math.isinf(value):
        return "null"  # what JSON.stringify prints for them
    if value == 0:
        return "0"  # also -0
    sign = "-" if value < 0 else ""
    digits, point = _shortest_digits(abs(value))
    k, n = len(digits), point
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        exponent = n - 1
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"
    return sign + text


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest round-tripping decimal digits of ``value`` > 0 and the position of the point.

    ``value == 0.<digits> * 10**point``. Python's ``repr`` already finds the shortest digits
    (correctly rounded, like V8); only its layout differs from JavaScript's.
    """
    mantissa, _, exp = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = len(whole) + (int(exp) if exp else 0) - (len(whole + fraction) - len(digits))
    return digits.rstrip("0"), point


def _js_string(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)  # escapes exactly what JSON.stringify escapes...
    if _SURROGATE.search(text):  # ...except lone surrogates, which well-formed stringify escapes
        text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def js_stringify(value: object) -> str:
    """``JSON.stringify(value)`` for a value made by :func:`js_parse` (dict, list, str, float,
    bool, None). Compact, original key order, non-ASCII kept as is."""
    if isinstance(value, str):
        return _js_string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return js_number(float(value))
    if isinstance(value, dict):
        items = (f"{_js_string(k)}:{js_stringify(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(js_stringify(v) for v in value) + "]"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def js_stringify_bytes(body: bytes) -> bytes | None:
    """``JSON.stringify(JSON.parse(body))`` as UTF-8, or ``None`` when ``body`` is not JSON."""
    try:
        text = body.decode("utf-8")
        return js_stringify(js_parse(text)).encode("utf-8")
    except (ValueError, RecursionError):
        return None
