"""``edume-pipeline simulate``: synthetic eduMe traffic for a company, signed as eduMe signs.

Deterministic for a given ``--seed``, ``--learners`` and ``--end``. Either POST the deliveries to a
receiver (``--url``, bounded concurrency) or land them as sealed segments (``--landing DIR``, for
large volumes), with progress on stderr either way, and optionally write the ground truth
(``--truth``).
The pure parts live in ``pipeline/simulator/`` (catalogue, generate, deliveries); this module
only wires arguments to them and to the I/O in ``pipeline/simulator/post.py``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.settings import load_settings
from pipeline.simulator.deliveries import Noise, stream_bodies
from pipeline.simulator.generate import Event, default_end, journeys
from pipeline.simulator.progress import Progress
from pipeline.simulator.simulation import (
    DEFAULT_LEARNERS,
    DEFAULT_SEED,
    build,
    parse_end,
    write_truth,
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--learners",
        type=int,
        default=DEFAULT_LEARNERS,
        help=f"learners in the company (default {DEFAULT_LEARNERS})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"random seed: same seed, same bytes (default {DEFAULT_SEED})",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--url",
        help="POST every delivery to this receiver URL (e.g. http://127.0.0.1:8000/webhooks/edume)",
    )
    target.add_argument(
        "--landing",
        type=Path,
        metavar="DIR",
        help="write sealed landing segments into DIR instead (large volumes)",
    )
    parser.add_argument(
        "--truth", type=Path, metavar="PATH", help="write the ground-truth summary JSON here"
    )
    parser.add_argument(
        "--secret", help="signature secret (default: the first of EDUME_SIGNATURE_SECRETS)"
    )
    parser.add_argument(
        "--bearer-token",
        help="also send 'Authorization: Bearer TOKEN' (default: the first of "
        "EDUME_BEARER_TOKENS, if any)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="requests in flight with --url (default 8)"
    )
    parser.add_argument(
        "--duplicate-fraction",
        type=float,
        default=Noise.duplicate_fraction,
        help="share of deliveries retried as exact duplicates (default %(default)s)",
    )
    parser.add_argument(
        "--disorder-fraction",
        type=float,
        default=Noise.disorder_fraction,
        help="share of deliveries sent out of order (default %(default)s)",
    )
    parser.add_argument(
        "--bad-signature-count",
        type=int,
        default=Noise.bad_signature_count,
        help="forged deliveries the receiver must refuse (default %(default)s)",
    )
    parser.add_argument(
        "--unknown-type-count",
        type=int,
        default=Noise.unknown_type_count,
        help="deliveries of an event type not in the catalogue (default %(default)s)",
    )
    parser.add_argument(
        "--end",
        type=parse_end,
        default=default_end(),
        help="when the simulated 90 days end: ISO date or 'today' "
        "(default 2026-11-01, fixed so a seed pins every byte)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _secret(args: argparse.Namespace) -> bytes:
    if args.secret:
        return args.secret.encode()
    secrets = load_settings().signature_secrets
    if secrets:
        return secrets[0]
    if args.url:
        raise SystemExit(
            "edume-pipeline simulate: no secret: pass --secret or set "
            "EDUME_SIGNATURE_SECRETS to the receiver's signature secret"
        )
    return b"simulator-secret"  # landing directly: nothing checks the signature


def _counted(batches: Iterable[list[Event]], progress: Progress | None) -> Iterator[list[Event]]:
    """The batches unchanged, advancing ``progress`` once each batch has been consumed."""
    for batch in batches:
        yield batch
        if progress:
            progress.advance()
    if progress:
        progress.finish()


def _land(args: argparse.Namespace, noise: Noise) -> int:
    """``--landing``: stream the journeys into sealed segments, then write the truth.

    The bodies are streamed, so their number is known only at the end: the progress counts
    learners (one batch each, after the catalogue's), which is what the run's length scales with.
    """
    from pipeline.simulator.post import land_bodies

    truth, batches = journeys(args.learners, args.seed, args.end)
    progress = None if args.quiet else Progress("landing learners", args.learners + 1)
    bodies = stream_bodies(_counted(batches, progress), noise, args.seed, truth)
    lines = land_bodies(args.landing, bodies)
    counts = truth.deliveries
    print(
        f"simulated {args.learners} learners (seed {args.seed}): landed {lines} lines "
        f"({counts['duplicates']} duplicates, {counts['unknown_type']} of an unknown type) in "
        f"sealed segments under {args.landing}"
    )
    if args.truth:
        write_truth(truth, args.truth)
        print(f"ground truth: {args.truth}")
    return 0


def run(args: argparse.Namespace) -> int:
    if not (args.url or args.landing or args.truth):
        print("edume-pipeline simulate: say where to: --url, --landing or --truth", file=sys.stderr)
        return 2
    try:
        noise = Noise(
            args.duplicate_fraction,
            args.disorder_fraction,
            args.bad_signature_count,
            args.unknown_type_count,
        )
        if args.landing:
            return _land(args, noise)
        simulation = build(args.learners, args.seed, _secret(args), noise, args.end)
    except ValueError as exc:
        print(f"edume-pipeline simulate: {exc}", file=sys.stderr)
        return 2
    counts = simulation.truth.deliveries
    print(
        f"simulated {args.learners} learners (seed {args.seed}): {counts['sent']} deliveries, "
        f"{counts['duplicates']} duplicates, {counts['rejected_bad_signature']} forged, "
        f"{counts['unknown_type']} of an unknown type"
    )
    if args.truth:
        write_truth(simulation.truth, args.truth)
        print(f"ground truth: {args.truth}")
    if args.url:
        from pipeline.simulator.post import post_deliveries

        try:
            tokens = load_settings().bearer_tokens
            token = args.bearer_token or (tokens[0] if tokens else None)
            label = None if args.quiet else "posting"
            report = post_deliveries(
                args.url, simulation.deliveries, args.concurrency, label, bearer_token=token
            )
        except ValueError as exc:
            print(f"edume-pipeline simulate: {exc}", file=sys.stderr)
            return 2
        statuses = ", ".join(
            f"{status or 'no answer'}: {count}" for status, count in sorted(report.statuses.items())
        )
        rate = len(simulation.deliveries) / max(report.seconds, 1e-9)
        print(
            f"posted in {report.seconds:.1f}s ({rate:,.0f}/s): {statuses}; {report.retries} retries"
        )
        if report.unexpected:
            print("unexpected answers:\n  " + "\n  ".join(report.unexpected[:20]), file=sys.stderr)
            return 1
    return 0
