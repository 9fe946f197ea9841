"""``edume-pipeline``: one console script, one thin module per sub-command in this package.

Each command module exposes ``configure(parser)`` (its arguments) and ``run(args) -> int`` (the exit
code). Only the chosen command's module is imported, so ``serve`` never pays for Dagster or dbt.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys

from pipeline.settings import SettingsError

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("pipeline.cli.serve", "run the webhook receiver"),
    "materialize": ("pipeline.cli.materialize", "load the landing, build the marts, export them"),
    "simulate": ("pipeline.cli.simulate", "send or land synthetic, signed eduMe traffic"),
    "demo": ("pipeline.cli.demo", "try it: synthetic traffic through the whole pipeline"),
    "report": ("pipeline.cli.report", "write the HTML report from the exports"),
    "contract-report": (
        "pipeline.cli.contract_report",
        "where landed payloads differ from the per-event-type contracts",
    ),
    "live": ("pipeline.cli.live", "keep the marts fresh: a warm worker, one batch per landing"),
    "up": ("pipeline.cli.up", "receiver, Dagster UI and daemon, and the live worker together"),
}

# The top-level help, for users: plain text (it is printed as is), the commands one line each.
ABOUT = """\
eduMe webhooks in, learning analytics out. The receiver (serve) lands every signed eduMe
delivery durably on disk; materialize (or live, continuously) loads the landing into DuckDB,
builds the dbt marts and exports them as parquet, with exports/query.duckdb for analysts;
report writes one HTML page from the exports.

New here? Run "make demo": the whole pipeline on synthetic traffic, in a few minutes.
"""

# Every variable the commands (and dbt's profiles.yml) read; tests/test_cli.py keeps it complete.
ENVIRONMENT: dict[str, str] = {
    "EDUME_SIGNATURE_SECRETS": "eduMe signing secrets, comma-separated; serve needs one or a token",
    "EDUME_BEARER_TOKENS": "accepted Authorization: Bearer tokens, comma-separated",
    "EDUME_LANDING_DIR": "where deliveries land as NDJSON segments (default landing)",
    "EDUME_WAREHOUSE": "the DuckDB warehouse (default warehouse/edume.duckdb)",
    "EDUME_EXPORT_DIR": "parquet exports, query.duckdb and report.html (default exports)",
    "EDUME_MAX_BODY_BYTES": "largest accepted webhook body (default 1048576)",
    "EDUME_SEGMENT_IDLE_SEAL_S": "seal an open segment idle this long, in seconds (default 1)",
    "EDUME_ENGINE": "duckdb (default) or spark: the engine dbt builds the marts on",
    "EDUME_SPARK_DIR": "Spark's metastore and tables (default spark/ beside the warehouse)",
    "EDUME_SPARK_MASTER": "the Spark master (default local[*])",
    "EDUME_LIVE_POLL_S": "live: how often to look for new landed segments (default 0.1)",
    "EDUME_SENSOR_INTERVAL_S": "Dagster's landing sensor tick (default 5; up sets 60)",
    "EDUME_LIVE_REFRESH_S": "live: rebuild the date-dependent columns when idle this long (3600)",
    "EDUME_RUN_RETENTION_DAYS": "live: days of Dagster run history kept (default 7; 0 keeps all)",
    "EDUME_SEGMENT_RETENTION_DAYS": "live: days loaded segments are kept (default 30; 0 keeps all)",
    "EDUME_HOST": "up: the receiver's interface (default 127.0.0.1)",
    "EDUME_PORT": "up: the receiver's port (default 8000)",
    "EDUME_UI_HOST": "up: the Dagster UI's interface (default 127.0.0.1)",
    "EDUME_UI_PORT": "up: the Dagster UI's port (default 3000)",
    "DAGSTER_HOME": "the Dagster instance: when set, runs show in the Dagster UI",
}


def _version() -> str:
    try:
        return importlib.metadata.version("edume-pipeline")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed: run make demo)"


def _listing(title: str, entries: dict[str, str]) -> str:
    """One line per entry, names aligned (argparse would wrap a long command name)."""
    width = max(map(len, entries))
    return f"{title}:\n" + "".join(f"  {name:<{width}}  {text}\n" for name, text in entries.items())


def _epilog() -> str:
    commands = {name: help_text for name, (_, help_text) in COMMANDS.items()}
    return (
        _listing("commands", commands)
        + "\n"
        + _listing("environment", ENVIRONMENT)
        + "\nRun edume-pipeline COMMAND --help for a command's options."
    )


def _parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edume-pipeline",
        usage="%(prog)s [-h] [--version] COMMAND ...",
        description=ABOUT,
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edume-pipeline {_version()}")
    # The epilog lists the commands, one line each.
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS
    )
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module_name).configure(command_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    args = _parser(chosen if chosen in COMMANDS else None).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except SettingsError as exc:
        print(f"edume-pipeline {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
