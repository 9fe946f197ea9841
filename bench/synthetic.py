"""Sealed landing segments of synthetic deliveries, for the loader's tests and benchmark.

Lines are made with :func:`pipeline.receiver.landing_format.format_line`, exactly as the receiver
lands them, and a segment is written as ``.ndjson.open`` then renamed, as the receiver seals.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from pipeline.receiver.landing_format import (
    OPEN_SUFFIX,
    SEALED_SUFFIX,
    Authentication,
    format_line,
    partition_name,
)

HMAC = Authentication("hmac", "raw", 0, None)
EPOCH = datetime(2026, 11, 1, tzinfo=UTC)


def event_body(index: int, *, event_type: str | None = "learner.activity.finished") -> bytes:
    """A compact eduMe-like body, distinct per ``index`` (so its SHA-256 is too)."""
    envelope: dict[str, object] = {}
    if event_type is not None:
        envelope["type"] = event_type
    occurred = EPOCH + timedelta(seconds=index)
    envelope["payload"] = {
        "user": {"userId": 1000 + index % 5000, "externalId": f"ext-{index % 5000}"},
        "group": {"groupId": 1297},
        "course": {"courseId": 14148 + index % 40, "title": "Reboarding your workforce"},
        "module": {"moduleId": 15010 + index % 7},
        "activity": {"activityId": 8558 + index % 30, "type": "lesson"},
        "teams": [{"teamId": 3493}],
    }
    envelope["timestamp"] = occurred.strftime("%Y-%m-%dT%H:%M:%S.") + f"{index % 1000:03d}Z"
    return orjson.dumps(envelope)


def landed_lines(bodies: Iterable[bytes], received_at: datetime = EPOCH) -> Iterator[bytes]:
    for offset, body in enumerate(bodies):
        yield format_line(body, HMAC, received_at + timedelta(microseconds=offset))


def as_format_2(line: bytes) -> bytes:
    """``line`` as landing format 2 wrote it: the same keys in the same order, but no
    ``body_shape`` (for tests and benchmarks of lines landed before format 3)."""
    record = orjson.loads(line)
    del record["body_shape"]
    record["format_version"] = 2
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def write_segment(
    landing_dir: Path,
    segment_id: str,
    lines: Iterable[bytes],
    *,
    received_at: datetime = EPOCH,
) -> Path:
    """Write ``lines`` (raw bytes, newlines included) as a sealed segment; return its path."""
    partition = Path(landing_dir) / partition_name(received_at)
    partition.mkdir(parents=True, exist_ok=True)
    open_path = partition / f"{segment_id}{OPEN_SUFFIX}"
    with open(open_path, "wb") as handle:
        for line in lines:
            handle.write(line)
    sealed = partition / f"{segment_id}{SEALED_SUFFIX}"
    os.replace(open_path, sealed)
    return sealed


def write_backlog(
    landing_dir: Path, *, events: int, per_segment: int, first_index: int = 0, prefix: str = "seg"
) -> list[Path]:
    """``events`` distinct deliveries spread over sealed segments of ``per_segment`` lines."""
    paths = []
    for start in range(first_index, first_index + events, per_segment):
        stop = min(start + per_segment, first_index + events)
        bodies = (event_body(i) for i in range(start, stop))
        paths.append(write_segment(landing_dir, f"{prefix}-{start:012d}", landed_lines(bodies)))
    return paths
