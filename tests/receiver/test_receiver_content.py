"""A real receiver on loopback: the media type never decides, the signature does; gzip bodies are
decoded (within the body limit) before they are verified, and other encodings get 415."""

from __future__ import annotations

import gzip
import zlib

import pytest
from receiver_kit import SECRET, event, landed, landing_size, metric, post

from pipeline.receiver.signature import sign


def _signed(body: bytes, **headers: str) -> dict[str, str]:
    """The signature header plus ``headers`` (names with underscores become dashes), and no
    Content-Type unless one is given."""
    return {"x-edume-signature": sign(body, SECRET.encode())} | {
        name.replace("_", "-"): value for name, value in headers.items()
    }


@pytest.mark.parametrize(
    ("n", "content_type"),
    [(100, "text/plain"), (101, "application/x-www-form-urlencoded"), (102, None), (103, "")],
)
def test_a_signed_json_object_lands_losslessly_whatever_its_content_type(
    hmac_receiver, n: int, content_type: str | None
) -> None:
    body = event(n, note="Grüße — 🚀")
    headers = _signed(body, user_agent="eduMe-webhooks/1.0 (+node-fetch)")
    if content_type is not None:
        headers["content-type"] = content_type
    assert post(hmac_receiver.webhook_url, body, headers).status == 204
    [line] = [d for d in landed(hmac_receiver.landing_dir) if d.body == body]
    assert line.envelope.content_type == content_type
    assert line.envelope.content_encoding is None
    assert line.envelope.user_agent == "eduMe-webhooks/1.0 (+node-fetch)"


def test_accepted_media_types_are_counted_by_label(hmac_receiver) -> None:
    name = 'edume_receiver_deliveries_by_media_type_total{media_type="text/csv"}'
    body = event(110)
    reply = post(hmac_receiver.webhook_url, body, _signed(body, content_type="Text/CSV"))
    assert reply.status == 204
    assert metric(hmac_receiver.url, name) == 1


def test_a_gzip_body_is_verified_and_landed_decoded(hmac_receiver) -> None:
    body = event(120)
    # Two compressions of the same body differ (the header's mtime), like two retries would.
    first = gzip.compress(body, mtime=1)
    second = gzip.compress(body, mtime=2)
    assert first != second
    for compressed in (first, second):
        headers = _signed(body, content_type="application/json", content_encoding="gzip")
        assert post(hmac_receiver.webhook_url, compressed, headers).status == 204
    lines = [d for d in landed(hmac_receiver.landing_dir) if d.body == body]
    assert len(lines) == 2 and lines[0].delivery_id == lines[1].delivery_id
    assert {d.envelope.content_encoding for d in lines} == {"gzip"}


def test_a_gzip_body_signed_over_its_compressed_bytes_is_refused(hmac_receiver) -> None:
    compressed = gzip.compress(event(121))
    before = landing_size(hmac_receiver.landing_dir)
    headers = _signed(compressed, content_encoding="gzip")
    assert post(hmac_receiver.webhook_url, compressed, headers).status == 401
    assert landing_size(hmac_receiver.landing_dir) == before


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress", "gzip, br", "zstd"])
def test_an_encoding_the_receiver_cannot_decode_gets_415_and_nothing_lands(
    hmac_receiver, encoding: str
) -> None:
    body = event(130)
    before = landing_size(hmac_receiver.landing_dir)
    reply = post(hmac_receiver.webhook_url, body, _signed(body, content_encoding=encoding))
    assert reply.status == 415
    assert b'"unsupported_content_encoding"' in reply.body
    assert landing_size(hmac_receiver.landing_dir) == before


def test_identity_encoding_is_no_encoding(hmac_receiver) -> None:
    body = event(131)
    reply = post(hmac_receiver.webhook_url, body, _signed(body, content_encoding="identity"))
    assert reply.status == 204
    [line] = [d for d in landed(hmac_receiver.landing_dir) if d.body == body]
    assert line.envelope.content_encoding == "identity"


def test_a_zip_bomb_gets_413_and_nothing_lands(hmac_receiver) -> None:
    # 64 MiB of zeros compress to about 64 KiB, well under the 1 MiB limit on the wire; decoded,
    # it is 64 times the limit. The signature is right, so only the decoded size can refuse it.
    decoded = b'{"type":"x","pad":"' + b"0" * (64 * 1024 * 1024) + b'"}'
    bomb = gzip.compress(decoded, compresslevel=9)
    assert len(bomb) < 1024 * 1024
    before = landing_size(hmac_receiver.landing_dir)
    reply = post(hmac_receiver.webhook_url, bomb, _signed(decoded, content_encoding="gzip"))
    assert reply.status == 413
    assert landing_size(hmac_receiver.landing_dir) == before


def test_a_corrupt_gzip_body_gets_400_and_nothing_lands(hmac_receiver) -> None:
    body = event(140)
    corrupt = gzip.compress(body)[:-12] + zlib.compress(b"junk")[:12]
    before = landing_size(hmac_receiver.landing_dir)
    reply = post(hmac_receiver.webhook_url, corrupt, _signed(body, content_encoding="gzip"))
    assert reply.status == 400
    assert b'"invalid_gzip"' in reply.body
    assert landing_size(hmac_receiver.landing_dir) == before


def test_each_landed_line_names_its_body_shape(hmac_receiver) -> None:
    # Equal shapes get equal names whatever the values; a type, a key or an array item differing
    # anywhere gets another; nesting too deep to name (over 254 levels) still lands, unnamed.
    bodies = {
        "a": b'{"type":"x","payload":{"score":1,"teams":[{"id":1},{"id":2}]}}',
        "same": b'{"type":"y","payload":{"score":99,"teams":[{"id":7}]}}',
        "string_score": b'{"type":"x","payload":{"score":"1","teams":[{"id":1}]}}',
        "other_item": b'{"type":"x","payload":{"score":1,"teams":[{"id":1},{"name":"n"}]}}',
        "js_only": b'{"type":"x","payload":{"score":1,"teams":[{"id":1}]},"s":"\\ud800"}',
        "deep": b'{"type":"x","d":' + b"[" * 300 + b"]" * 300 + b"}",
    }
    for body in bodies.values():
        assert post(hmac_receiver.webhook_url, body, _signed(body)).status == 204
    shapes = {d.body: d.body_shape for d in landed(hmac_receiver.landing_dir)}
    named = {name: shapes[body] for name, body in bodies.items()}
    assert named["a"] == named["same"] is not None
    assert len({named[n] for n in ("a", "string_score", "other_item", "js_only")}) == 4
    assert named["js_only"] is not None and named["deep"] is None
