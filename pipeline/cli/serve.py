"""``edume-pipeline serve``: run the webhook receiver under uvicorn (httptools, uvloop).

Refuses to start, with exit code 2, when neither ``EDUME_SIGNATURE_SECRETS`` nor
``EDUME_BEARER_TOKENS`` is set. On SIGTERM or SIGINT uvicorn stops accepting connections, lets
in-flight deliveries finish (each waits for its fsync), then the app's lifespan shutdown flushes
and seals every open segment; the exit code is 0. A start that fails (port taken, landing dir
unusable) exits 3.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from pipeline.receiver.landing import DEFAULT_IDLE_SEAL_S
from pipeline.receiver.server import build_server, raise_open_files_limit
from pipeline.settings import load_settings

_STARTUP_FAILURE = 3
IDLE_SEAL_ENV = "EDUME_SEGMENT_IDLE_SEAL_S"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "A secret or a token is required: set EDUME_SIGNATURE_SECRETS (eduMe's signing secrets) "
        "and/or EDUME_BEARER_TOKENS, comma-separated; without either, serve refuses to start."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    tuning = parser.add_argument_group("tuning")
    tuning.add_argument(
        "--segment-max-bytes",
        type=int,
        default=64 * 1024 * 1024,
        help="seal a segment once it holds this many bytes (default 64 MiB)",
    )
    tuning.add_argument(
        "--segment-max-age",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="seal a segment this long after it opened (default 60)",
    )
    tuning.add_argument(
        "--segment-idle-seal",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"seal a segment that got no line for this long, so the loader sees a trickle "
        f"within seconds; 0 turns it off (default: ${IDLE_SEAL_ENV}, else {DEFAULT_IDLE_SEAL_S:g})",
    )
    tuning.add_argument(
        "--landing-lanes",
        type=int,
        default=8,
        help="writer threads whose fsyncs overlap (default 8)",
    )
    tuning.add_argument(
        "--body-timeout",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="a request body must arrive within this (default 15); else 408",
    )
    tuning.add_argument(
        "--head-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="request line and headers must arrive within this (default 10)",
    )
    tuning.add_argument(
        "--max-head-bytes",
        type=int,
        default=32 * 1024,
        help="largest request line plus headers (default 32 KiB); else 431",
    )
    tuning.add_argument(
        "--limit-concurrency",
        type=int,
        default=1024,
        help="connections before new requests get 503 (default 1024)",
    )
    tuning.add_argument(
        "--keep-alive-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="close idle keep-alive connections after this (default 30)",
    )
    tuning.add_argument(
        "--retry-after",
        type=int,
        default=30,
        metavar="SECONDS",
        help="Retry-After sent with a 503 when the landing is unwritable",
    )
    tuning.add_argument("--access-log", action="store_true", help="log every request (slower)")


def run(args: argparse.Namespace) -> int:
    from pipeline.receiver.app import ReceiverApp, ReceiverConfig
    from pipeline.receiver.signature import Credentials

    settings = load_settings()
    idle_seal_s = args.segment_idle_seal
    if idle_seal_s is None:
        raw = os.environ.get(IDLE_SEAL_ENV, "").strip()
        try:
            idle_seal_s = float(raw) if raw else DEFAULT_IDLE_SEAL_S
        except ValueError:
            idle_seal_s = -1.0
    if not idle_seal_s >= 0:  # also refuses NaN
        print(
            f"edume-pipeline serve: the idle seal must be 0 (off) or a number of seconds "
            f"(--segment-idle-seal or {IDLE_SEAL_ENV})",
            file=sys.stderr,
        )
        return 2
    if not settings.signature_secrets and not settings.bearer_tokens:
        print(
            "edume-pipeline serve: refusing to start: set EDUME_SIGNATURE_SECRETS (eduMe's "
            "signature secret; comma-separate several to rotate) and/or EDUME_BEARER_TOKENS.",
            file=sys.stderr,
        )
        return 2
    app = ReceiverApp(
        ReceiverConfig(
            credentials=Credentials(settings.signature_secrets, settings.bearer_tokens),
            landing_dir=settings.landing_dir,
            max_body_bytes=settings.max_body_bytes,
            body_timeout_s=args.body_timeout,
            retry_after_s=args.retry_after,
            max_segment_bytes=args.segment_max_bytes,
            max_segment_age_s=args.segment_max_age,
            landing_lanes=args.landing_lanes,
            idle_seal_s=idle_seal_s or None,
        )
    )
    raise_open_files_limit()
    server = build_server(app, args)
    # uvicorn re-raises the stop signal once it has shut down; a graceful stop must exit 0, so the
    # handler it falls back to is a no-op rather than the default "terminate".
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)
    server.run()
    return 0 if server.started else _STARTUP_FAILURE
