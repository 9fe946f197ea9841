"""The receiver's server: uvicorn (httptools, uvloop) with the receiver's connection settings.

Refuses to start, with exit code 2, when neither ``EDUME_SIGNATURE_SECRETS`` nor
``EDUME_BEARER_TOKENS`` is set. On SIGTERM or SIGINT uvicorn stops accepting connections, lets
in-flight deliveries finish (each waits for its fsync), then the app's lifespan shutdown flushes
and seals every open segment; the exit code is 0. A start that fails (port taken, landing dir
unusable) exits 3.
"""

from __future__ import annotations

import argparse
import gc
import resource
from typing import Any

_GC_THRESHOLD = 10_000


def build_server(app: Any, args: argparse.Namespace) -> Any:
    """A ``uvicorn.Server`` for ``app`` with the receiver's connection settings. The benchmark
    serves its bare endpoint through this too, so both sides of its ratio share one config."""
    import uvicorn

    from pipeline.receiver.protocol import guarded_protocol

    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http=guarded_protocol(args.head_timeout, args.max_head_bytes),
        lifespan="on",
        access_log=args.access_log,
        limit_concurrency=args.limit_concurrency,
        timeout_keep_alive=args.keep_alive_timeout,
        timeout_graceful_shutdown=max(30.0, args.body_timeout * 2),
        server_header=False,
        log_level="info",
    )
    # Requests allocate many short-lived containers; at the default threshold (700) the cyclic
    # collector ran every dozen requests and rescanned the younger generations each time.
    # Reference counting frees these objects anyway; the collector only finds cycles.
    gc.set_threshold(_GC_THRESHOLD, *gc.get_threshold()[1:])
    return uvicorn.Server(config)


def raise_open_files_limit() -> None:
    # Each connection is a file descriptor; the default soft limit (often 1024) is the first thing
    # a flood would exhaust. The hard limit is the operator's choice.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
