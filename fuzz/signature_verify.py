"""Fuzz target: ``pipeline.receiver.signature.verify`` on arbitrary bytes and header values.

Properties checked on every input (an ``AssertionError`` is a finding):

1. ``verify`` returns an ``Authentication`` or raises ``AuthenticationError``; nothing else escapes.
2. The HMAC of the raw bytes, from any configured secret, is accepted as form ``raw``.
3. When JSON.parse accepts the body, the HMAC that Node.js computes over
   ``JSON.stringify(JSON.parse(body))`` (eduMe's own recipe, run by ``fuzz/js_oracle.js``: the
   expected signature never comes from the code under test) is accepted: form ``raw`` when that
   text is the body itself, ``reserialized`` otherwise; also in upper case and padded by spaces.
4. A signature made with a secret that is not configured, a missing header, a wrong or missing
   bearer token are refused with ``AuthenticationError``.

Input layout: one control byte (header scenario), then the body. Values nested deeper than
``MAX_DEPTH`` skip property 3: the re-serialiser refuses absurd nesting by design (``js_parse``).
Run: ``python fuzz/signature_verify.py [libFuzzer flags] [corpus dirs]`` (see fuzz/run.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["pipeline"]):
    from pipeline.receiver import signature

SECRETS = (b"whsec_edume_known_answer", "sécret-ü-🔑".encode())
TOKEN = "edume-bearer-token"
MAX_DEPTH = 128
ORACLE = Path(__file__).with_name("js_oracle.js")


class NodeOracle:
    """A long-lived ``node fuzz/js_oracle.js``: one line in, one line out."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["node", str(ORACLE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, body: bytes, secret: bytes) -> dict:
        request = {
            "body": base64.b64encode(body).decode(),
            "secret": secret.decode(),
            "max_depth": MAX_DEPTH,
        }
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())


_oracle: NodeOracle | None = None


def _node() -> NodeOracle:
    global _oracle  # started lazily: libFuzzer may fork after Setup
    if _oracle is None:
        _oracle = NodeOracle()
    return _oracle


def _hmac(secret: bytes, data: bytes) -> str:
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def _verify(body: bytes, headers: dict[str, str], credentials: signature.Credentials):
    """``verify``, or the ``AuthenticationError`` it raised; any other exception propagates."""
    try:
        return signature.verify(body, headers, credentials)
    except signature.AuthenticationError as error:
        return error


def check(data: bytes) -> None:
    if not data:
        return
    control, body = data[0], data[1:]
    which = control >> 7  # which configured secret eduMe used
    with_token = bool(control & 0x40)
    credentials = signature.Credentials(SECRETS, (TOKEN,) if with_token else ())
    headers: dict[str, str] = {}
    if with_token and control & 0x20:
        headers["authorization"] = f"Bearer {TOKEN}"
    token_ok = not with_token or "authorization" in headers

    scenario = control & 0x07
    if scenario == 0:  # eduMe signed the raw bytes
        headers["x-edume-signature"] = _hmac(SECRETS[which], body)
        expected_form = "raw"
    elif scenario in (1, 2):  # eduMe signed JSON.stringify of the parsed body (Node's answer)
        answer = _node().ask(body, SECRETS[which])
        if "signature" not in answer:
            return  # not JSON for Node (or absurdly deep): nothing eduMe would send
        presented = answer["signature"]
        if scenario == 2:
            presented = f"  {presented.upper()} "  # hex in either case, padded
        headers["x-edume-signature"] = presented
        expected_form = "raw" if answer["text"].encode() == body else "reserialized"
    elif scenario == 3:  # signed with a secret the receiver does not hold
        headers["x-edume-signature"] = _hmac(b"an old secret nobody configured", body)
        expected_form = None
    elif scenario == 4:  # no signature at all
        expected_form = None
    else:  # arbitrary header values, as a latin-1 decoding server hands them over
        headers["x-edume-signature"] = body[:80].decode("latin-1")
        if with_token:
            headers["authorization"] = body[-60:].decode("latin-1")
        outcome = _verify(body, headers, credentials)
        assert isinstance(outcome, signature.AuthenticationError | signature.Authentication)
        return

    outcome = _verify(body, headers, credentials)
    if expected_form is not None and token_ok:
        assert isinstance(outcome, signature.Authentication), (outcome, headers, body)
        assert outcome.signature_form == expected_form, (outcome, expected_form, body)
        assert outcome.secret_index == which, outcome
        assert outcome.mode == ("hmac+bearer" if with_token else "hmac"), outcome
    else:
        assert isinstance(outcome, signature.AuthenticationError), (outcome, headers, body)


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
