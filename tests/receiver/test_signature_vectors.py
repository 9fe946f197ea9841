"""Known-answer vectors made by Node.js (tests/vectors/make_vectors.js) and a cross-check of the
JSON.stringify emulation against Node itself."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from system_tools import require

from pipeline.receiver.signature import Credentials, js_stringify_bytes, sign, verify

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors"
VECTORS = json.loads((VECTORS_DIR / "signature_vectors.json").read_text(encoding="utf-8"))[
    "vectors"
]


def _id(vector: dict) -> str:
    return vector["name"]


@pytest.mark.parametrize("vector", [v for v in VECTORS if v["form"] == "raw"], ids=_id)
def test_sign_gives_the_digest_node_gives(vector: dict) -> None:
    assert sign(vector["body"].encode(), vector["secret"].encode()) == vector["signature"]


@pytest.mark.parametrize("vector", VECTORS, ids=_id)
def test_vector_verifies_with_the_form_node_signed(vector: dict) -> None:
    credentials = Credentials(secrets=(b"not-this-one", vector["secret"].encode()))
    headers = {"x-edume-signature": vector["signature"]}
    auth = verify(vector["body"].encode(), headers, credentials)
    assert (auth.mode, auth.signature_form, auth.secret_index) == ("hmac", vector["form"], 1)


@pytest.mark.parametrize("vector", [v for v in VECTORS if v["form"] == "raw"], ids=_id)
def test_reserialising_a_stringify_output_gives_it_back_unchanged(vector: dict) -> None:
    assert js_stringify_bytes(vector["body"].encode()) == vector["body"].encode()


def test_committed_vectors_are_what_make_vectors_js_prints_today() -> None:
    printed = subprocess.run(
        [require("node"), str(VECTORS_DIR / "make_vectors.js")],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    assert printed == (VECTORS_DIR / "signature_vectors.json").read_bytes()


def _random_json(rng: random.Random, depth: int = 0) -> object:
    kind = rng.choice(["num", "float", "str", "lit", "arr", "obj"] if depth < 4 else ["num", "str"])
    if kind == "num":
        return rng.choice(
            [0, -1, 2**53 - 1, -(2**53), 2**60, 10**21, 10**22, rng.randint(-(10**6), 10**6)]
        )
    if kind == "float":
        exponent = rng.randint(-330, 308)
        return rng.choice([rng.random() * 10.0**exponent, -rng.random(), 1e21, 1e-7, 5e-324, 0.1])
    if kind == "str":
        alphabet = [
            '"',
            "\\",
            "\n",
            "\x00",
            "\x1f",
            "\x7f",
            "\u2028",
            "é",
            "安",
            "🚀",
            "\ud800",
            "\udfff",
            "a",
            "/",
            " ",
        ]
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
    if kind == "lit":
        return rng.choice([True, False, None])
    if kind == "arr":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["a", "b", "0", "1", "10", "01", "-1", "4294967294", "4294967295", "é", "__proto__"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def test_js_stringify_matches_node_on_2000_random_json_texts() -> None:
    rng = random.Random(20260529)
    texts = [
        json.dumps(_random_json(rng), ensure_ascii=True, indent=rng.choice([None, 1]))
        for _ in range(2000)
    ]
    node_out = subprocess.run(
        [require("node"), str(VECTORS_DIR / "stringify.js")],
        input=json.dumps(texts).encode(),
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    expected = json.loads(node_out)
    mismatches = [
        (text, want)
        for text, want in zip(texts, expected, strict=True)
        if js_stringify_bytes(text.encode()) != want.encode("utf-8", "surrogatepass")
    ]
    assert mismatches == []
