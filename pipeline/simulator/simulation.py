"""A whole simulated company: every delivery in sending order and the ground truth (pure).

The pieces live beside this module (catalogue, generate, deliveries); ``edume-pipeline simulate``
(``pipeline/cli/simulate.py``) wires arguments to them and to the I/O in ``post.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from pipeline.simulator.deliveries import Delivery, Noise, plan_deliveries
from pipeline.simulator.generate import Truth, generate

DEFAULT_LEARNERS = 300
DEFAULT_SEED = 7


@dataclass(frozen=True)
class Simulation:
    deliveries: list[Delivery]
    truth: Truth


def build(
    learners: int, seed: int, secret: bytes, noise: Noise | None = None, end: datetime | None = None
) -> Simulation:
    """Every delivery in sending order, and the ground truth. Pure and deterministic."""
    events, truth = generate(learners, seed, end)
    deliveries = plan_deliveries(events, secret, noise or Noise(), seed, truth)
    return Simulation(deliveries, truth)


def truth_json(truth: Truth) -> bytes:
    """The ground truth as indented JSON (course and activity ids become string keys)."""
    return orjson.dumps(
        dataclasses.asdict(truth), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    )


def write_truth(truth: Truth, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(truth_json(truth))
    os.replace(temporary, path)


def parse_end(value: str) -> datetime:
    """``today`` (UTC midnight), or an ISO date / date-time (UTC when naive)."""
    if value == "today":
        now = datetime.now(UTC)
        return datetime(now.year, now.month, now.day, tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or 'today': {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
