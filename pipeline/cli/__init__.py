"""``edume-pipeline``: one console script, one thin module per sub-command in this package.

Each command module exposes ``configure(parser)`` (its arguments) and ``run(args) -> int`` (the exit
code). Only the chosen command's module is imported, so ``serve`` never pays for Dagster or dbt.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pipeline.settings import SettingsError

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("pipeline.cli.serve", "run the webhook receiver"),
    "materialize": ("pipeline.cli.materialize", "load, build and export every asset once"),
    "simulate": ("pipeline.cli.simulate", "send or land synthetic, signed eduMe traffic"),
    "demo": ("pipeline.cli.demo", "the whole pipeline end to end on the embedded default"),
    "report": ("pipeline.cli.report", "write the self-contained HTML report"),
}


def _parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edume-pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
