"""Real parts for the warehouse tests: land deliveries as sealed segments, load them with the
project's loader, run the real dbt CLI on the DuckDB file, read marts back.

Every dbt run uses an absolute ``EDUME_WAREHOUSE`` and its own target and log dirs, so parallel
runs never collide and nothing is written into the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from pipeline.export import DESIGNED_MARTS as MARTS
from pipeline.loader.ndjson import load_landing
from pipeline.receiver.landing_format import Authentication, format_line, partition_name
from pipeline.settings import DBT_PROJECT_DIR

DBT = Path(sys.executable).with_name("dbt")
AUTH = Authentication(mode="hmac", signature_form="raw", secret_index=0)


@dataclass(frozen=True)
class Delivery:
    """One landed line: the raw body and when the receiver got it."""

    body: bytes
    received_at: datetime


def land(
    landing_dir: Path,
    deliveries: Sequence[Delivery],
    *,
    per_segment: int = 7,
    first_segment: int = 0,
) -> int:
    """Write ``deliveries`` in the given order as sealed segments of ``per_segment`` lines.

    Segment names sort in writing order, after any segment numbered below ``first_segment``.
    Returns the next free segment number.
    """
    number = first_segment
    for start in range(0, len(deliveries), per_segment):
        chunk = deliveries[start : start + per_segment]
        folder = landing_dir / partition_name(chunk[0].received_at)
        folder.mkdir(parents=True, exist_ok=True)
        lines = b"".join(format_line(d.body, AUTH, d.received_at) for d in chunk)
        (folder / f"{number:08d}.ndjson").write_bytes(lines)
        number += 1
    return number


def land_and_load(
    landing_dir: Path,
    warehouse: Path,
    deliveries: Sequence[Delivery],
    *,
    first_segment: int = 0,
    per_segment: int = 7,
) -> int:
    """:func:`land` then the project's loader; returns the next free segment number."""
    next_segment = land(
        landing_dir, deliveries, first_segment=first_segment, per_segment=per_segment
    )
    result = load_landing(landing_dir, warehouse)
    assert result.rows_rejected == 0, result
    return next_segment


@dataclass(frozen=True)
class DbtRunner:
    """The dbt CLI against one warehouse file, with a private target and log dir."""

    warehouse: Path
    work_dir: Path
    vars_yaml: str
    project_dir: Path = DBT_PROJECT_DIR

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``dbt <args>``; raise AssertionError with dbt's output when it fails."""
        done = self.run(*args)
        if done.returncode != 0:
            raise AssertionError(
                f"dbt {' '.join(args)} failed:\n{done.stdout[-6000:]}{done.stderr[-2000:]}"
            )
        return done

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``dbt <args>`` and return the finished process, whatever its exit code."""
        env = {
            **os.environ,
            "EDUME_WAREHOUSE": str(self.warehouse.resolve()),
            "EDUME_ENGINE": "duckdb",
            "DO_NOT_TRACK": "1",
        }
        command = [
            str(DBT),
            *args,
            "--project-dir",
            str(self.project_dir),
            "--profiles-dir",
            str(self.project_dir),
            "--target-path",
            str(self.work_dir / "target"),
            "--log-path",
            str(self.work_dir / "logs"),
            "--vars",
            self.vars_yaml,
        ]
        # A generous deadline, only so that a hung build fails instead of hanging: a build of
        # the test data takes well under a minute on a quiet 2-core machine, many times more
        # when the machine is shared with other builds.
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=1800, check=False
        )


def mart_rows(
    warehouse: Path, marts: Iterable[str] = MARTS, *, without: Sequence[str] = ()
) -> dict[str, list[tuple]]:
    """Every row of every mart in a canonical order, leaving out the columns named in
    ``without`` (e.g. ``received_at`` when arrival times legitimately differ)."""
    rows = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for mart in marts:
            columns = [
                name
                for (name,) in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'marts' and table_name = ? order by ordinal_position",
                    [mart],
                ).fetchall()
                if name not in without
            ]
            rows[mart] = con.execute(
                f"select {', '.join(columns)} from marts.{mart} order by all"
            ).fetchall()
    return rows


def query(warehouse: Path, sql: str, parameters: Sequence[object] = ()) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, list(parameters)).fetchall()


def later(moment: datetime, seconds: float) -> datetime:
    return moment + timedelta(seconds=seconds)
