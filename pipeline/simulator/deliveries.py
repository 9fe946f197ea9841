"""From events to deliveries: serialised and signed exactly as eduMe does, plus realistic noise.

eduMe's body is ``JSON.stringify(envelope)``: compact, keys in insertion order, non-ASCII left
unescaped. ``orjson.dumps`` prints exactly that for the values used here (str, int, bool, None,
lists and dicts; no floats, whose formatting could differ). The signature is the lower-case hex
HMAC-SHA256 of those bytes (the receiver's own :func:`~pipeline.receiver.signature.sign`).

Noise, all deterministic for a seed: retried duplicates (the same bytes again, later), deliveries
out of order, a few forgeries with a bad signature (which would change the marts if accepted), and
a few events of a type this project does not know yet. Pure: no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson

from pipeline.receiver.signature import sign
from pipeline.simulator.generate import DAY_MS, Event, Truth, envelope

# Kinds of delivery, and what the receiver must answer to each.
VALID, DUPLICATE = "valid", "duplicate"
UNKNOWN_TYPE, BAD_SIGNATURE = "unknown_type", "bad_signature"
UNKNOWN_EVENT_TYPE = "learner.badge.awarded"  # a type eduMe could add tomorrow
FORGED_USER_ID_BASE = 990_001


@dataclass(frozen=True)
class Delivery:
    body: bytes
    signature: str
    kind: str

    @property
    def should_be_accepted(self) -> bool:
        return self.kind != BAD_SIGNATURE


@dataclass(frozen=True)
class Noise:
    duplicate_fraction: float = 0.05
    disorder_fraction: float = 0.1
    bad_signature_count: int = 3
    unknown_type_count: int = 2

    def __post_init__(self) -> None:
        for name in ("duplicate_fraction", "disorder_fraction"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name.replace('_', '-')} must be between 0 and 1, got {value}")
        for name in ("bad_signature_count", "unknown_type_count"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', '-')} must be zero or more")


def serialise(event: Event) -> bytes:
    """``JSON.stringify(envelope)`` as UTF-8 bytes."""
    return orjson.dumps(event.body)


def _unknown_events(events: list[Event], count: int, rng: random.Random) -> list[Event]:
    learners = [e for e in events if e.body["type"] == "learner.activated"]
    chosen = [rng.choice(learners) for _ in range(count)] if learners else []
    return [
        envelope(
            UNKNOWN_EVENT_TYPE,
            {
                "group": e.body["payload"]["group"],
                "user": e.body["payload"]["user"],
                "badge": {"badgeId": 501 + index, "name": "Safety star ⭐"},
                "version": 1,
            },
            e.at_ms + rng.randint(1, DAY_MS),
        )
        for index, e in enumerate(chosen)
    ]


def _forgeries(
    events: list[Event], count: int, rng: random.Random, secret: bytes
) -> list[Delivery]:
    """Deliveries that must be refused: half signed with a wrong secret, half tampered after
    signing. Each would add a learner to a course if it were wrongly accepted."""
    added = [e for e in events if e.body["type"] == "learner.added"]
    forged: list[Delivery] = []
    for index in range(count if added else 0):
        template = rng.choice(added).body
        payload = dict(template["payload"])
        payload["user"] = {
            "userId": FORGED_USER_ID_BASE + index,
            "firstName": "Mallory",
            "lastName": "Forger",
        }
        body = orjson.dumps(
            {"type": template["type"], "payload": payload, "timestamp": template["timestamp"]}
        )
        if index % 2 == 0:
            signature = sign(body, b"not-the-customer-secret")
        else:  # signed honestly, then the user id was changed on the way
            signature = sign(body, secret)
            body = body.replace(
                str(FORGED_USER_ID_BASE + index).encode(),
                str(FORGED_USER_ID_BASE + 500 + index).encode(),
            )
        forged.append(Delivery(body, signature, BAD_SIGNATURE))
    return forged


def plan_deliveries(
    events: list[Event], secret: bytes, noise: Noise, seed: int, truth: Truth | None = None
) -> list[Delivery]:
    """The deliveries in the order they are sent. Adds delivery counts to ``truth`` if given.

    Every event appears once as a ``valid`` delivery; some again as ``duplicate`` (same bytes,
    sent later); ``unknown_type`` and ``bad_signature`` deliveries are extra.
    """
    rng = random.Random(f"deliveries-{seed}")
    timeline = sorted(
        [*events, *_unknown_events(events, noise.unknown_type_count, rng)], key=lambda e: e.at_ms
    )
    known = {id(e) for e in events}
    keyed: list[tuple[float, Delivery]] = []
    for position, event in enumerate(timeline):
        body = serialise(event)
        kind = VALID if id(event) in known else UNKNOWN_TYPE
        keyed.append((float(position), Delivery(body, sign(body, secret), kind)))
    # Sorting on a key keeps this O(n log n) for a million events in --landing mode.
    span = float(len(keyed))
    keyed = [
        (rng.uniform(0, span), d) if rng.random() < noise.disorder_fraction else (k, d)
        for k, d in keyed
    ]
    keyed += [
        (k + rng.uniform(0.5, 500), Delivery(d.body, d.signature, DUPLICATE))
        for k, d in keyed
        if rng.random() < noise.duplicate_fraction
    ]
    keyed += [
        (rng.uniform(0, span), forged)
        for forged in _forgeries(events, noise.bad_signature_count, rng, secret)
    ]
    deliveries = [d for _, d in sorted(keyed, key=lambda pair: pair[0])]
    if truth is not None:
        truth.deliveries = delivery_counts(deliveries)
    return deliveries


def stream_bodies(
    batches: Iterable[list[Event]], noise: Noise, seed: int, truth: Truth | None = None
) -> Iterator[bytes]:
    """The accepted bodies for ``--landing``, streamed in bounded memory.

    Arrival order is generation order (catalogue, then learner by learner), as in a backfill,
    so ``disorder_fraction`` is not needed; a retried duplicate lands one batch after its
    original; one unknown-type event joins each early batch until ``unknown_type_count`` are
    out; forgeries are left out (a receiver lands none). ``truth.deliveries`` is filled in
    when the stream is exhausted.
    """
    rng = random.Random(f"stream-{seed}")
    counts = dict.fromkeys(
        (
            "sent",
            "accepted",
            "rejected_bad_signature",
            "duplicates",
            "unknown_type",
            "distinct_accepted",
        ),
        0,
    )
    retries: list[bytes] = []
    for batch in batches:
        unknown = (
            _unknown_events(batch, 1, rng)
            if counts["unknown_type"] < noise.unknown_type_count
            else []
        )
        counts["unknown_type"] += len(unknown)
        later: list[bytes] = []
        for event in [*batch, *unknown]:
            body = serialise(event)
            counts["distinct_accepted"] += 1
            yield body
            if rng.random() < noise.duplicate_fraction:
                later.append(body)
        yield from retries
        counts["duplicates"] += len(retries)
        retries = later
    yield from retries
    counts["duplicates"] += len(retries)
    counts["accepted"] = counts["sent"] = counts["distinct_accepted"] + counts["duplicates"]
    if truth is not None:
        truth.deliveries = counts


def delivery_counts(deliveries: list[Delivery]) -> dict[str, int]:
    """What the receiver and the warehouse should see: sent, accepted, rejected, distinct."""
    kinds = [d.kind for d in deliveries]
    accepted = [d.body for d in deliveries if d.should_be_accepted]
    return {
        "sent": len(deliveries),
        "accepted": len(accepted),
        "rejected_bad_signature": kinds.count(BAD_SIGNATURE),
        "duplicates": kinds.count(DUPLICATE),
        "unknown_type": kinds.count(UNKNOWN_TYPE),
        "distinct_accepted": len(set(accepted)),
    }
