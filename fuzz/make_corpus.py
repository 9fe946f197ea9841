"""Write the seed corpora ``fuzz/corpus/<target>/`` from the Node-made signature vectors.

Each seed is a vector's body (``tests/vectors/signature_vectors.json``, made by Node.js) behind
the control bytes its harness reads, so fuzzing starts from real eduMe deliveries. Deterministic:
run ``PYTHONPATH=. .venv/bin/python fuzz/make_corpus.py`` after the vectors change and commit
the result.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pipeline.receiver.landing_format import Authentication, format_line

FUZZ_DIR = Path(__file__).resolve().parent
VECTORS = FUZZ_DIR.parent / "tests" / "vectors" / "signature_vectors.json"
RECEIVED_AT = datetime(2026, 11, 29, 5, 0, 0, 123456, tzinfo=UTC)
ROUND_TRIP_HEADER = bytes([0x81, 0x12, 0x00, 0x3C]) + (1_795_000_000_000_000).to_bytes(8, "big")


def vector_bodies() -> Iterator[tuple[str, bytes]]:
    """``(name, body)`` of every distinct body among the vectors."""
    seen: set[bytes] = set()
    for vector in json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"]:
        body = vector["body"].encode("utf-8")
        if body not in seen:
            seen.add(body)
            yield vector["name"], body


def seeds(name: str, body: bytes) -> Iterator[tuple[str, str, bytes]]:
    """``(target, file name, seed)`` for one body."""
    yield "signature_verify", f"{name}.node-signed", b"\x01" + body
    yield "signature_verify", f"{name}.second-secret-and-token", b"\xe2" + body
    yield "landing_line", f"{name}.round-trip", b"\x00" + ROUND_TRIP_HEADER + body
    line = format_line(body, Authentication("hmac", "raw", 0, None), RECEIVED_AT)
    yield "landing_line", f"{name}.line", b"\x01" + line
    yield "receiver_app", f"{name}.delivery", b"\x00\x08\x01" + body


def main() -> None:
    for name, body in vector_bodies():
        for target, file_name, seed in seeds(name, body):
            directory = FUZZ_DIR / "corpus" / target
            directory.mkdir(parents=True, exist_ok=True)
            (directory / file_name).write_bytes(seed)


if __name__ == "__main__":
    main()
