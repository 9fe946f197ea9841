"""``edume-pipeline contract-report``: where landed payloads differ from the contracts.

Reads the warehouse (or, while a run holds it or before it exists, the last run's exports) and
prints each deviation per event type and dotted path (``missing`` / ``unexpected`` / ``type``)
with the staging columns and marts it feeds, and the HTTP envelope eduMe's client sends. Exit
0; with ``--strict`` 1 when there is any deviation; 2 when there is nothing to read.
``--propose DIR`` writes every contract as the observed payloads suggest, for review.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.contracts.report import (
    NothingToReadError,
    as_json,
    as_text,
    changed_types,
    propose_contracts,
    read_report,
    write_proposals,
)
from pipeline.contracts.schema import load_contracts
from pipeline.settings import DBT_PROJECT_DIR, load_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--strict", action="store_true", help="exit 1 when there is any deviation")
    parser.add_argument(
        "--propose",
        type=Path,
        default=None,
        metavar="DIR",
        help="write <DIR>/<type>.json for every event type: the contracts amended as the "
        "observed payloads suggest (new fields optional, observed types); diff them against "
        "pipeline/contracts/edume/ and review",
    )
    parser.add_argument(
        "--warehouse", type=Path, default=None, help="the DuckDB warehouse (EDUME_WAREHOUSE)"
    )
    parser.add_argument(
        "--exports", type=Path, default=None, metavar="DIR", help="exports (EDUME_EXPORT_DIR)"
    )
    parser.add_argument(
        "--dbt-target-path",
        type=Path,
        default=None,
        help="where dbt wrote manifest.json, for the marts each path feeds "
        "(default: dbt_project/target)",
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    manifest = (args.dbt_target_path or DBT_PROJECT_DIR / "target") / "manifest.json"
    try:
        report = read_report(
            args.warehouse or settings.warehouse, args.exports or settings.export_dir, manifest
        )
    except NothingToReadError as exc:
        print(f"edume-pipeline contract-report: {exc}", file=sys.stderr)
        return 2
    print(as_json(report) if args.format == "json" else as_text(report))
    if args.propose is not None:
        current = load_contracts()
        proposed = propose_contracts(report.deviations, current)
        write_proposals(proposed, args.propose)
        changed = changed_types(proposed, current)
        print(
            f"proposed contracts in {args.propose}: "
            + (", ".join(changed) + " changed" if changed else "no change")
            + "; review with: diff -ru pipeline/contracts/edume "
            + str(args.propose),
            file=sys.stderr,
        )
    return 1 if args.strict and report.deviations else 0
