"""Land bodies as sealed segments, load them and run the contract check: the real parts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from bench.synthetic import as_format_2, landed_lines, write_segment
from pipeline.contracts.check import ContractCheckResult, check_new_deliveries, read_deviations
from pipeline.loader.ndjson import load_landing

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
RECEIVED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

# Landing format 3 lines carry the receiver's name for the body's shape; older lines are checked
# through DuckDB's json_structure. Tests set this to False to land format 2 lines.
NAMED_SHAPES = True


def documented_samples() -> list[dict[str, Any]]:
    """eduMe's published samples (tests/vectors/edume_documented_samples.json)."""
    return json.loads((VECTORS / "edume_documented_samples.json").read_text())["samples"]


def body(event: dict[str, Any]) -> bytes:
    """A body exactly as eduMe's JSON.stringify writes it."""
    return orjson.dumps(event)


def land_and_check(
    workspace: Path, bodies: Iterable[bytes], *, segment: str = "seg-1"
) -> ContractCheckResult:
    """Land ``bodies`` as one sealed segment (format 3 lines, or 2 unless ``NAMED_SHAPES``), load
    it, run the contract check."""
    landing, warehouse = workspace / "landing", workspace / "warehouse.duckdb"
    lines = landed_lines(bodies, RECEIVED)
    if not NAMED_SHAPES:
        lines = map(as_format_2, lines)
    write_segment(landing, segment, lines, received_at=RECEIVED)
    load_landing(landing, warehouse)
    return check_new_deliveries(warehouse)


def deviations(workspace: Path) -> list[dict[str, Any]]:
    with duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True) as con:
        return read_deviations(con)


def learner_added(user_id: int, **user: Any) -> dict[str, Any]:
    """A learner.added event as the hypothesis has it, with ``user`` fields overridden."""
    fields = {"userId": user_id, "externalUserId": f"emp-{user_id}", "firstName": "Ada",
              "lastName": "Okafor", **user}  # fmt: skip
    return {
        "type": "learner.added",
        "payload": {
            "group": {"groupId": 1297},
            "teams": [{"teamId": 3493}],
            "user": {k: v for k, v in fields.items() if v is not None},
            "course": {"courseId": 14148, "courseKey": "reboarding", "title": "Reboarding"},
            "version": 1,
        },
        "timestamp": f"2026-11-01T08:00:{user_id % 60:02d}.000Z",
    }
