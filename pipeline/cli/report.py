"""``edume-pipeline report``: one self-contained HTML file from the warehouse, read-only.

Funnel per course and drop-off by activity as inline SVG charts, stalled learners, overdue
mandatory training, the course catalogue with seamless base links, and data quality (rejected
deliveries by reason from the receiver's metrics, duplicates, unknown event types). The pieces:
``pipeline/reporting/`` (facts: the queries; svg: the charts; page: the HTML; metrics: /metrics).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.reporting.write import write_report
from pipeline.settings import load_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warehouse", type=Path, default=None, help="the DuckDB file (default: EDUME_WAREHOUSE)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the HTML (default: EDUME_EXPORT_DIR/report.html)",
    )
    parser.add_argument(
        "--metrics",
        default=None,
        metavar="FILE_OR_URL",
        help="the receiver's /metrics: a saved file or a live URL, for the "
        "rejected deliveries by reason",
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    warehouse = args.warehouse or settings.warehouse
    out = args.out or settings.export_dir / "report.html"
    try:
        write_report(warehouse, out, args.metrics)
    except OSError as exc:
        print(f"edume-pipeline report: {exc}", file=sys.stderr)
        return 1
    print(f"report: {out.resolve()}")
    return 0
