"""Helpers shared by the receiver tests: sign and post deliveries, read what landed."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from pipeline.receiver.landing_format import (
    OPEN_SUFFIX,
    SEALED_GLOB,
    SEALED_SUFFIX,
    LandedDelivery,
    parse_line,
)
from pipeline.receiver.process import ReceiverProcess
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


def _files(landing_dir: Path) -> dict[str, bytes]:
    """Every file under the landing dir, by path relative to it, an open segment under its sealed
    name (sealing renames it; its bytes stay). A receiver may seal segments meanwhile (the idle
    seal), and a directory listing that races a rename may show the file twice, once, or not at
    all: the landing is read until two reads in a row agree."""
    previous = None
    while True:
        current: dict[str, bytes] = {}
        for path in sorted(landing_dir.rglob("*")):
            name = path.relative_to(landing_dir).as_posix()
            try:
                current[name.replace(OPEN_SUFFIX, SEALED_SUFFIX)] = path.read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                continue  # renamed since the listing, or a partition directory
        if current == previous:
            return current
        previous = current


def landed(landing_dir: Path, *, include_open: bool = True) -> list[LandedDelivery]:
    """Every line in the landing's segments (open ones too unless told otherwise)."""
    lines = []
    if include_open:
        files = _files(landing_dir)
        names = [n for n in files if fnmatch(n, SEALED_GLOB)]
    else:  # sealed now: listed by their own name, no stable read needed
        files = {
            p.relative_to(landing_dir).as_posix(): p.read_bytes()
            for p in sorted(landing_dir.glob(SEALED_GLOB))
        }
        names = list(files)
    for name in names:
        lines.extend(parse_line(line) for line in files[name].splitlines(True))
    return lines


def landing_child(receiver: ReceiverProcess) -> int:
    """The pid of the receiver's landing writer process (its only child)."""
    children = Path(f"/proc/{receiver.pid}/task/{receiver.pid}/children").read_text().split()
    assert len(children) == 1, f"expected one landing process, found {children}"
    return int(children[0])


def landing_size(landing_dir: Path) -> int:
    """Total bytes in every file under the landing dir: changes iff anything landed."""
    return sum(map(len, _files(landing_dir).values()))


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
