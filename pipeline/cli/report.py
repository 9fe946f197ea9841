"""``edume-pipeline report``: one self-contained HTML file from the exports, read-only.

Reads ``<exports>/query.duckdb`` (which a run never holds: no waiting on the warehouse's lock)
and renders what dbt computed in ``models/reporting`` and ``models/quality``: the funnel per
course and drop-off by activity, stalled learners, overdue mandatory training, compliance by
team, completions per week, assessment score distributions, the course catalogue with seamless
base links, and data quality (rejected deliveries by reason from the receiver's metrics,
duplicates, unreadable lines, unknown event types, contract deviations). The pieces:
``pipeline/reporting/`` (facts: the reads; svg: the charts; page: the HTML; metrics: /metrics).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.reporting.write import write_report
from pipeline.settings import load_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--exports",
        type=Path,
        default=None,
        metavar="DIR",
        help="the export directory holding query.duckdb (default: EDUME_EXPORT_DIR)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the HTML (default: report.html in the export directory)",
    )
    parser.add_argument(
        "--metrics",
        default=None,
        metavar="FILE_OR_URL",
        help="the receiver's /metrics: a saved file or a live URL, for the "
        "rejected deliveries by reason",
    )


def run(args: argparse.Namespace) -> int:
    export_dir = args.exports or load_settings().export_dir
    out = args.out or export_dir / "report.html"
    try:
        write_report(export_dir, out, args.metrics)
    except OSError as exc:
        print(f"edume-pipeline report: {exc}", file=sys.stderr)
        return 1
    print(f"report: {out.resolve()}")
    return 0
