"""A large mart exported as monthly partitions, versioned, and swapped in by one rename.

Layout, for a mart ``<name>`` partitioned by the month of ``month_column`` (UTC)::

    <export_dir>/<name>                       -> .<name>.versions/v00000042   (a symbolic link)
    <export_dir>/.<name>.versions/v00000042/
        _edume_export.json                    # this version's state: watermark, columns, months
        month=2024-01/v00000042_0.parquet
        month=2024-02/v00000042_0.parquet

Contract of :func:`export_monthly`:

- **Only touched months are rewritten.** The months touched since the previous export are the
  months of ``raw_month_column`` of the raw rows loaded after the watermark kept in the current
  version's state (the newest ``loaded_at`` exported, and the raw row count up to it). A new
  version holds those months written afresh and every other month hard-linked from the previous
  version (no copy). Everything is rewritten when there is no previous version, when the raw
  table no longer matches the watermark (rebuilt, rows deleted), when the mart's columns changed,
  or when the months' row counts no longer add up to the mart's (a safety net for a mart changed
  without a load, e.g. a full refresh with new logic).
- **A reader sees one batch's version, never a mix.** A version directory is complete before it
  becomes visible, never changes afterwards, and is published by replacing the link with one
  ``rename(2)``; the watermark lives inside the version, so it is committed by the same rename,
  and an export killed before it redoes its work. Every file name carries its version (hard links
  included), so a reader that listed one version and opens files after the swap gets "file not
  found" (and retries) instead of silently reading a mix. A reader that wants to pin a snapshot
  resolves the link once (``os.path.realpath``): a superseded version stays at least
  ``KEEP_SUPERSEDED_S`` seconds.
- Files a killed export left (``.v<n>.<pid>.tmp`` directories) are removed by the next export
  once their process is gone (:func:`remove_stale_versions`).

The caller holds the warehouse lock and passes a connection that reads ``marts.<name>`` and the
raw table in one transaction (one snapshot for months, files and watermark).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import duckdb

STATE_FILE = "_edume_export.json"
PARTITION_PREFIX = "month="
# Hive's name for a NULL partition value: pyarrow and Spark read it back as NULL.
NULL_MONTH = "__HIVE_DEFAULT_PARTITION__"
# A reader that resolved the link keeps its version at least this long after it is superseded.
KEEP_SUPERSEDED_S = 300.0
_VERSION = re.compile(r"v(?P<number>[0-9]{8})")
_ASIDE_VERSION = re.compile(r"\.v[0-9]{8}\.(?P<pid>[0-9]+)\.tmp")
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")


@dataclass(frozen=True)
class MonthlyMart:
    """A mart exported by month: ``month_column`` names the partition; it is derived from the raw
    table's ``raw_month_column``, which finds the months a load touched without scanning the
    mart."""

    name: str
    month_column: str
    raw_month_column: str


@dataclass(frozen=True)
class MonthlyExport:
    """What one export of a monthly mart did."""

    link: Path
    version_dir: Path
    rows: int
    files_written: tuple[Path, ...]
    bytes_written: int
    months_written: tuple[str, ...]
    full: bool


@dataclass(frozen=True)
class _State:
    version: int
    loaded_at: datetime | None
    raw_rows: int
    columns: list[list[str]]
    months: dict[str, int]


def versions_dir(export_dir: Path, name: str) -> Path:
    return export_dir / f".{name}.versions"


def parquet_glob(link: Path) -> str:
    """The glob a reader uses for every file of the current version (through the link)."""
    return str(link / f"{PARTITION_PREFIX}*" / "*.parquet")


def export_monthly(
    con: duckdb.DuckDBPyConnection,
    spec: MonthlyMart,
    export_dir: Path,
    select_sql: str,
    raw_relation: str | None,
) -> MonthlyExport:
    """Export ``select_sql`` (the mart's rows, BI-typed) as a new version of ``spec.name`` under
    ``export_dir``, rewriting only the months touched since the previous export (all of them
    when ``raw_relation`` is None: no watermark without a raw table). Returns what it wrote; when
    nothing was touched, no version is made and nothing is written."""
    link = export_dir / spec.name
    versions = versions_dir(export_dir, spec.name)
    versions.mkdir(exist_ok=True)
    previous = _read_state(link)
    columns = [[row[0], row[1]] for row in con.execute(f"describe {select_sql}").fetchall()]
    mart_rows = con.execute(f"select count(*) from ({select_sql})").fetchone()[0]
    loaded_at, raw_rows = (
        con.execute(f"select max(loaded_at), count(*) from {raw_relation}").fetchone()
        if raw_relation
        else (None, 0)
    )
    full = (
        previous is None
        or raw_relation is None
        or previous.columns != columns
        or not _watermark_matches(con, raw_relation, previous)
    )
    touched = None if full else _touched_months(con, spec, raw_relation, previous)
    if touched == set() and sum(previous.months.values()) == mart_rows:
        return MonthlyExport(link, link.resolve(), mart_rows, (), 0, (), False)

    number = 1 if previous is None else previous.version + 1
    name = f"v{number:08d}"
    aside = versions / f".{name}.{os.getpid()}.tmp"
    final = versions / name
    try:
        written, months = _build_version(con, spec, select_sql, aside, name, touched, previous)
        if touched is not None and sum(months.values()) != mart_rows:
            # The mart changed beyond the months the load touched (a full refresh with new
            # logic, a build that failed before the previous export): rewrite every month.
            shutil.rmtree(aside)
            touched = None
            written, months = _build_version(con, spec, select_sql, aside, name, None, None)
        state = _State(number, loaded_at, int(raw_rows), columns, months)
        (aside / STATE_FILE).write_text(json.dumps(_state_json(state)))
        os.replace(aside, final)
    finally:
        if aside.exists():  # only when the export failed before the rename
            shutil.rmtree(aside)
    _publish(link, final)
    files = tuple(
        path for month, _ in written for path in (final / f"{PARTITION_PREFIX}{month}").iterdir()
    )
    remove_superseded_versions(versions, keep=final.name)
    return MonthlyExport(
        link=link,
        version_dir=final,
        rows=sum(months.values()),
        files_written=files,
        bytes_written=sum(path.stat().st_size for path in files),
        months_written=tuple(sorted(month for month, _ in written)),
        full=touched is None,
    )


def _touched_months(
    con: duckdb.DuckDBPyConnection, spec: MonthlyMart, raw_relation: str, previous: _State
) -> set[str]:
    where = "" if previous.loaded_at is None else "where loaded_at > $loaded_at"
    parameters = {} if previous.loaded_at is None else {"loaded_at": previous.loaded_at}
    rows = con.execute(
        f"select distinct strftime({spec.raw_month_column}, '%Y-%m') from {raw_relation} {where}",
        parameters,
    ).fetchall()
    return {row[0] or NULL_MONTH for row in rows}


def _build_version(
    con: duckdb.DuckDBPyConnection,
    spec: MonthlyMart,
    select_sql: str,
    destination: Path,
    name: str,
    touched: set[str] | None,
    previous: _State | None,
) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """A new version's months under ``destination``: the ``touched`` ones (all when None)
    written, the others hard-linked from ``previous``. Returns the months written with their
    row counts, and every month's row count."""
    written = _write_months(con, spec, select_sql, destination, name, touched)
    months = dict(written)
    if previous is not None and touched is not None:
        current = destination.parent.parent / spec.name
        for month, rows in previous.months.items():
            if month not in touched:
                _link_month(current / f"{PARTITION_PREFIX}{month}", destination, name)
                months[month] = rows
    return written, months


def _write_months(
    con: duckdb.DuckDBPyConnection,
    spec: MonthlyMart,
    select_sql: str,
    destination: Path,
    name: str,
    touched: set[str] | None,
) -> list[tuple[str, int]]:
    """Write the ``touched`` months (every month when None) of the mart under ``destination``,
    one directory per month; return each written month and its row count."""
    month = f"coalesce(strftime(\"{spec.month_column}\", '%Y-%m'), '{NULL_MONTH}')"
    where = ""
    if touched is not None:
        # Months come from strftime above or NULL_MONTH, so the literals cannot carry SQL.
        assert all(_MONTH.fullmatch(m) or m == NULL_MONTH for m in touched)
        where = "where partition_month in (" + ", ".join(f"'{m}'" for m in sorted(touched)) + ")"
    destination.mkdir()
    location = str(destination).replace("'", "''")
    query = f"select * from (select *, {month} as partition_month from ({select_sql})) {where}"
    con.execute(
        f"copy ({query}) to '{location}' (format parquet, compression zstd, "
        f"partition_by (partition_month), filename_pattern '{name}_{{i}}')"
    )
    # DuckDB names each directory after the partition column: rename to month=YYYY-MM.
    counts = []
    for folder in sorted(destination.glob("partition_month=*")):
        value = folder.name.removeprefix("partition_month=")
        folder.rename(destination / f"{PARTITION_PREFIX}{value}")
        files = str(destination / f"{PARTITION_PREFIX}{value}" / "*.parquet").replace("'", "''")
        (rows,) = con.execute(
            f"select count(*) from read_parquet('{files}', hive_partitioning = false)"
        ).fetchone()
        counts.append((value, int(rows)))
    return counts


def _link_month(previous: Path, destination: Path, name: str) -> None:
    """Hard-link a month's files from the previous version, renamed to this version (``name``)."""
    target = destination / previous.name
    target.mkdir()
    for index, path in enumerate(sorted(previous.glob("*.parquet"))):
        os.link(path, target / f"{name}_{index}.parquet")


def _publish(link: Path, version_dir: Path) -> None:
    """Point ``link`` at ``version_dir`` with one rename (a relative link: the export directory
    can be moved or mounted elsewhere)."""
    if link.exists() and not link.is_symlink():
        raise FileExistsError(
            f"{link} is not a link the export made; move it away and export again"
        )
    aside = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    aside.unlink(missing_ok=True)
    os.symlink(os.path.relpath(version_dir, link.parent), aside)
    os.replace(aside, link)


def remove_superseded_versions(
    versions: Path, keep: str, now: Callable[[], float] = time.time
) -> None:
    """Delete the versions superseded more than ``KEEP_SUPERSEDED_S`` ago (a version is
    superseded when the next one is made), never ``keep`` (the current one)."""
    names = sorted(p.name for p in versions.iterdir() if _VERSION.fullmatch(p.name))
    for old, successor in pairwise(names):
        if old == keep:
            continue
        superseded_at = (versions / successor).stat().st_mtime
        if now() - superseded_at > KEEP_SUPERSEDED_S:
            shutil.rmtree(versions / old, ignore_errors=True)


def remove_stale_versions(versions: Path, process_is_gone: Callable[[int], bool]) -> list[Path]:
    """Delete the version directories exports that died left aside; return them."""
    if not versions.is_dir():
        return []
    stale = [
        path
        for path in versions.iterdir()
        if (match := _ASIDE_VERSION.fullmatch(path.name)) and process_is_gone(int(match["pid"]))
    ]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def _watermark_matches(con: duckdb.DuckDBPyConnection, raw_relation: str, state: _State) -> bool:
    """True when exactly the raw rows the previous export saw are still there."""
    if state.loaded_at is None:
        return state.raw_rows == 0
    (count,) = con.execute(
        f"select count(*) from {raw_relation} where loaded_at <= $loaded_at",
        {"loaded_at": state.loaded_at},
    ).fetchone()
    return int(count) == state.raw_rows


def _state_json(state: _State) -> dict[str, object]:
    return {
        "version": state.version,
        "loaded_at": None if state.loaded_at is None else state.loaded_at.isoformat(),
        "raw_rows": state.raw_rows,
        "columns": state.columns,
        "months": state.months,
    }


def _read_state(link: Path) -> _State | None:
    """The current version's state, or None (no version yet, or unreadable: export in full)."""
    try:
        data = json.loads((link / STATE_FILE).read_text())
        loaded_at = data["loaded_at"]
        return _State(
            version=int(data["version"]),
            loaded_at=None if loaded_at is None else datetime.fromisoformat(loaded_at),
            raw_rows=int(data["raw_rows"]),
            columns=[list(column) for column in data["columns"]],
            months={str(k): int(v) for k, v in data["months"].items()},
        )
    except (OSError, KeyError, ValueError, TypeError, AttributeError):
        return None
