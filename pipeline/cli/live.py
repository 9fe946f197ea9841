"""``edume-pipeline live``: the warm worker that keeps the marts and exports fresh in seconds.

Watches the landing dir every ``EDUME_LIVE_POLL_S`` (default 0.1 s) and runs one in-process Dagster
micro-batch (load -> dbt build -> export) per newly sealed landing, at most one pending at a time;
measures the time-dependent columns (``as_of``) at its latest as_of refresh, and moves that to now
every ``EDUME_LIVE_REFRESH_S`` (default 3600 s), with the next batch or, when idle, by rebuilding
the ``as_of`` models; prunes
its old runs (``EDUME_RUN_RETENTION_DAYS``, default 7) and loaded segments
(``EDUME_SEGMENT_RETENTION_DAYS``, default 30). Uses ``DAGSTER_HOME``'s instance when set (runs
show in the UI). SIGTERM/Ctrl-C: finish the current batch, then exit 0; a second one abandons it
(exit 130; safe to re-run). Exit 4 when another live worker already serves this warehouse.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli.materialize import add_dbt_project_options

EXIT_ALREADY_RUNNING = 4


def configure(parser: argparse.ArgumentParser) -> None:
    add_dbt_project_options(parser)
    parser.add_argument(
        "--stats-file",
        type=Path,
        default=None,
        help="append one JSON line per run (timings, segments, rows) to this file",
    )


def run(args: argparse.Namespace) -> int:
    from pipeline.defs.resources import edume_dbt_project
    from pipeline.live.presence import LiveWorkerAlreadyRunning
    from pipeline.live.worker import LiveOptions, serve
    from pipeline.settings import load_settings

    settings = load_settings()
    options = LiveOptions.from_settings(settings, args.stats_file)
    project = edume_dbt_project(args.dbt_project_dir, args.dbt_target_path)
    try:
        return serve(settings, options, project, log=lambda line: print(line, flush=True))
    except LiveWorkerAlreadyRunning as exc:
        print(f"edume-pipeline live: {exc}", file=sys.stderr, flush=True)
        return EXIT_ALREADY_RUNNING
