"""Helpers shared by the receiver tests: sign and post deliveries, read what landed."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from pipeline.receiver.landing_format import (
    OPEN_SUFFIX,
    PARTITION_PREFIX,
    SEALED_GLOB,
    LandedDelivery,
    parse_line,
)
from pipeline.receiver.signature import sign

SECRET = "whsec_receiver_test_secret_9f2c1d"
OTHER_SECRET = "whsec_someone_else_entirely_77aa"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.receiver-test-token.c2lnbmF0dXJl"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def event(n: int = 0, **extra: object) -> bytes:
    """A realistic delivery body, as eduMe would send it (compact JSON.stringify output)."""
    value = {
        "type": "learner.activity.finished",
        "payload": {
            "group": {"groupId": 1297},
            "user": {"userId": 90000 + n, "externalUserId": f"emp-{n:05d}"},
            "course": {"courseId": 14148, "title": "Sécurité — 安全 🚀"},
            "activity": {"type": "lesson", "activityId": 8558},
        },
        "timestamp": "2023-06-01T08:00:00.000Z",
        **extra,
    }
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def signed_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"content-type": "application/json", "x-edume-signature": sign(body, secret.encode())}


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30) -> Reply:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("POST", parts.path, body=body, headers=headers)
        response = connection.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def get(url: str) -> Reply:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", parts.path)
        response = connection.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def landed(landing_dir: Path, *, include_open: bool = True) -> list[LandedDelivery]:
    """Every line in the landing's segments (open ones too unless told otherwise)."""
    paths = sorted(landing_dir.glob(SEALED_GLOB))
    if include_open:
        paths += sorted(landing_dir.glob(f"{PARTITION_PREFIX}*/*{OPEN_SUFFIX}"))
    return [parse_line(line) for path in paths for line in path.read_bytes().splitlines(True)]


def landing_size(landing_dir: Path) -> int:
    """Total bytes in every file under the landing dir: changes iff anything landed."""
    return sum(p.stat().st_size for p in landing_dir.rglob("*") if p.is_file())


def metric(url: str, sample: str, *, default: float | None = None) -> float:
    """A sample's value from GET /metrics, read with prometheus_client's parser; ``sample`` is
    written as in the exposition (``'x_total{reason="y"}'``). A sample that is absent raises
    ``KeyError``, unless the caller states a ``default`` (a labelled counter before its first
    event)."""
    [wanted] = [s for f in text_string_to_metric_families(f"{sample} 0\n") for s in f.samples]
    for family in text_string_to_metric_families(get(f"{url}/metrics").body.decode()):
        for found in family.samples:
            if (found.name, found.labels) == (wanted.name, wanted.labels):
                return found.value
    if default is None:
        raise KeyError(f"{sample} is not in {url}/metrics")
    return default
