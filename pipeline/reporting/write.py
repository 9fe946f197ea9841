"""Write the report: collect the facts, render the page, replace the file atomically."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from pipeline.reporting import metrics
from pipeline.reporting.facts import collect
from pipeline.reporting.page import render


def write_report(export_dir: Path, out: Path, metrics_location: str | None = None) -> Path:
    """Render the report from ``<export_dir>/query.duckdb`` into ``out`` (atomically); return
    ``out``.

    Raises ``FileNotFoundError`` without exports and ``OSError`` when the metrics cannot be read
    or the file cannot be written.
    """
    receiver = metrics.load(metrics_location) if metrics_location else None
    page = render(collect(export_dir, receiver), datetime.now(UTC))
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, out)
    return out
