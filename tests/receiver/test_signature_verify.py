"""signature.verify as a pure function: every mode, every precise error, any JSON value."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.receiver.signature import (
    AuthenticationError,
    Credentials,
    js_number,
    js_stringify,
    sign,
    verify,
)

SECRET, OLD_SECRET, TOKEN = b"new-secret", b"old-secret", "tok-123"
BODY = b'{"type":"course.added","payload":{},"timestamp":"2023-05-31T11:42:57.633Z"}'


def _reason(body: bytes, headers: dict[str, str], credentials: Credentials) -> str:
    with pytest.raises(AuthenticationError) as caught:
        verify(body, headers, credentials)
    return caught.value.reason


def test_raw_signature_under_the_second_secret_reports_its_index() -> None:
    auth = verify(
        BODY,
        {"x-edume-signature": sign(BODY, OLD_SECRET)},
        Credentials(secrets=(SECRET, OLD_SECRET)),
    )
    assert (auth.mode, auth.signature_form, auth.secret_index, auth.token_index) == (
        "hmac",
        "raw",
        1,
        None,
    )


def test_upper_case_hex_and_surrounding_spaces_are_tolerated() -> None:
    header = f"  {sign(BODY, SECRET).upper()} "
    assert verify(BODY, {"x-edume-signature": header}, Credentials((SECRET,))).secret_index == 0


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_signature"),
        ("", "missing_signature"),
        (sign(BODY, SECRET)[:63], "malformed_signature"),
        ("z" * 64, "malformed_signature"),
        ("é" * 64, "malformed_signature"),
        (sign(BODY, OLD_SECRET), "signature_mismatch"),
    ],
)
def test_bad_signature_header_gives_a_precise_reason(header: str | None, reason: str) -> None:
    headers = {} if header is None else {"x-edume-signature": header}
    assert _reason(BODY, headers, Credentials((SECRET,))) == reason


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_token"),
        ("Basic dXNlcjpwdw==", "malformed_token"),
        ("Bearer", "malformed_token"),
        ("Bearer tok-12", "token_mismatch"),
        ("Bearer tok-1234", "token_mismatch"),
    ],
)
def test_bad_bearer_header_gives_a_precise_reason(header: str | None, reason: str) -> None:
    headers = {} if header is None else {"authorization": header}
    assert _reason(BODY, headers, Credentials(tokens=(TOKEN,))) == reason


def test_bearer_scheme_is_case_insensitive() -> None:
    auth = verify(BODY, {"authorization": f"bearer  {TOKEN}"}, Credentials(tokens=("x", TOKEN)))
    assert (auth.mode, auth.signature_form, auth.token_index) == ("bearer", None, 1)


def test_both_modes_configured_need_both() -> None:
    both = Credentials((SECRET,), (TOKEN,))
    signature = {"x-edume-signature": sign(BODY, SECRET)}
    assert _reason(BODY, signature, both) == "missing_token"
    assert _reason(BODY, {"authorization": f"Bearer {TOKEN}"}, both) == "missing_signature"
    auth = verify(BODY, {**signature, "authorization": f"Bearer {TOKEN}"}, both)
    assert (auth.mode, auth.secret_index, auth.token_index) == ("hmac+bearer", 0, 0)


def test_nothing_configured_is_a_programming_error_not_an_auth_failure() -> None:
    with pytest.raises(ValueError, match="no signature secrets"):
        verify(BODY, {}, Credentials())


def test_credentials_repr_hides_the_values() -> None:
    assert "new-secret" not in repr(Credentials((SECRET,), (TOKEN,)))
    assert TOKEN not in repr(Credentials((SECRET,), (TOKEN,)))


def test_absurdly_nested_body_is_refused_not_crashed_on() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    assert _reason(body, {"x-edume-signature": "0" * 64}, Credentials((SECRET,))) == (
        "signature_mismatch"
    )


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (1e20, "100000000000000000000"),
        (0.000001, "0.000001"),
        (2.0**60, "1152921504606847000"),
        (-0.0, "0"),
        (5e-324, "5e-324"),
        (123.456, "123.456"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (100.0, "100"),
        (-1.5e-9, "-1.5e-9"),
    ],
)
def test_numbers_print_as_javascript_prints_them(value: float, printed: str) -> None:
    assert js_number(value) == printed


# Any JSON value: arbitrary Unicode (lone surrogates included), any float, deep nesting.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(payload=json_values)
def test_any_json_value_signed_stringify_style_is_accepted_raw(payload: object) -> None:
    body = js_stringify({"type": "x", "payload": payload}).encode("utf-8", "surrogatepass")
    if b"\xed" in body and not _is_utf8(body):
        return  # unreachable: stringify escapes lone surrogates; kept as a guard for the encoder
    auth = verify(body, {"x-edume-signature": sign(body, SECRET)}, Credentials((SECRET,)))
    assert auth.signature_form == "raw"


@settings(max_examples=300, deadline=None)
@given(payload=json_values, indent=st.sampled_from([None, 1, 4]), ascii_only=st.booleans())
def test_any_json_value_reformatted_in_transit_is_accepted_reserialized(
    payload: object, indent: int | None, ascii_only: bool
) -> None:
    # What eduMe's JS object would print: JS puts array-index keys ("0", "7") first, ascending.
    signed = js_stringify(_js_key_order({"type": "x", "payload": payload})).encode(
        "utf-8", "surrogatepass"
    )
    sent = json.dumps({"type": "x", "payload": payload}, indent=indent, ensure_ascii=ascii_only)
    sent_bytes = sent.encode("utf-8", "surrogatepass")
    if not _is_utf8(sent_bytes):
        sent_bytes = json.dumps({"type": "x", "payload": payload}, indent=indent).encode()
    auth = verify(sent_bytes, {"x-edume-signature": sign(signed, SECRET)}, Credentials((SECRET,)))
    assert auth.signature_form == ("raw" if sent_bytes == signed else "reserialized")


def _js_key_order(value: object) -> object:
    if isinstance(value, list):
        return [_js_key_order(v) for v in value]
    if not isinstance(value, dict):
        return value
    index = [
        k for k in value if k.isdigit() and k.isascii() and str(int(k)) == k and int(k) < 2**32 - 1
    ]
    keys = sorted(index, key=int) + [k for k in value if k not in index]
    return {k: _js_key_order(value[k]) for k in keys}


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
