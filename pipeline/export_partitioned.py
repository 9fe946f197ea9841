"""A large mart exported as monthly partitions, versioned, and swapped in by one rename.

Layout, for a mart ``<name>`` partitioned by the month of ``month_column`` (UTC)::

    <export_dir>/<name>                       -> .<name>.versions/v00000042   (a symbolic link)
    <export_dir>/.<name>.versions/v00000042/
        _edume_export.json                    # this version's state: watermark, columns, months
        month=2024-01/v00000042_0.parquet
        month=2024-02/v00000042_0.parquet
    # an empty mart: one file with its columns and no rows, in month=__HIVE_DEFAULT_PARTITION__

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
  and an export killed before it redoes its work. A reader resolves the link once and reads that
  directory (``query.duckdb``'s view names the version directory itself; a BI tool resolves
  ``os.path.realpath``): a superseded version stays at least ``KEEP_SUPERSEDED_S`` seconds, so
  a query that started on it finishes on it. Every file name also carries its version (hard links
  included), so a tool that lists through the link while a batch lands gets "file not found"
  (and retries) rather than the old and new files of one month together.
- Files a killed export left (``.v<n>.<pid>.tmp`` directories) are removed by the next export
  once their process is gone (:func:`remove_stale_versions`).

The caller holds the warehouse lock and passes a connection that reads ``marts.<name>`` and the
raw table in one transaction (one snapshot for months, files and watermark).

The versions themselves (:func:`make_version`: build aside, rename, swap the link, prune), the
partition writer (:func:`write_partitions`), the hard links (:func:`link_partition`) and the
clean-up are shared with the bucketed layout (:mod:`pipeline.export_bucketed`).
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
# Where an empty mart's version keeps its one empty file (write_empty_partition).
EMPTY_MONTH = f"{PARTITION_PREFIX}{NULL_MONTH}"
# A reader that resolved the link keeps its version at least this long after it is superseded.
KEEP_SUPERSEDED_S = 300.0
_VERSION = re.compile(r"v(?P<number>[0-9]{8})")
_ASIDE_VERSION = re.compile(r"\.v[0-9]{8}\.(?P<pid>[0-9]+)\.tmp")
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")
# The column a COPY partitions by (DuckDB names each directory after it; renamed afterwards).
PARTITION_COLUMN = "_edume_partition"
# A month gets one more file per micro-batch that adds rows to it; at this many it is rewritten
# as one file (compaction: its cost is shared by the batches that added the files).
MAX_FILES_PER_MONTH = 32
# Small row groups: looking rows up by timestamp reads only the groups whose range holds it.
ROW_GROUP_ROWS = 16_384
# Every exported file's codec. Snappy, the default of DuckDB, pyarrow and Spark, writes a
# micro-batch's files about a quarter faster than zstd (2.10 -> 1.55 s for one row per learner
# and course at 5M synthetic events), for files about a third larger; every reader reads both.
COMPRESSION = "snappy"
# Temp tables of one export's connection: the mart's rows for the keys loaded since the
# watermark, the current version's rows for those keys, and the rows to append.
_CANDIDATES = "_edume_export_candidates"
_EXPORTED = "_edume_export_exported"
_NEW_ROWS = "_edume_export_new_rows"


@dataclass(frozen=True)
class MonthlyMart:
    """A mart exported by month of ``month_column``, with one row per ``key``, which is the raw
    table's ``raw_key`` (so the rows a load touched are found from the raw rows it loaded)."""

    name: str
    month_column: str
    key: str
    raw_key: str


@dataclass(frozen=True)
class PartitionedExport:
    """What one export of a partitioned relation (by month, or by bucket) did."""

    link: Path
    version_dir: Path
    rows: int
    files_written: tuple[Path, ...]
    bytes_written: int
    partitions_written: tuple[str, ...]  # e.g. ``month=2024-01``, ``bucket=7``
    full: bool

    @classmethod
    def unchanged(cls, link: Path, rows: int) -> PartitionedExport:
        """Nothing changed: no version was made, the current one stays."""
        return cls(link, link.resolve(), int(rows), (), 0, (), False)

    @classmethod
    def made(
        cls, link: Path, version_dir: Path, files: tuple[Path, ...], rows: int, full: bool
    ) -> PartitionedExport:
        """A new version ``version_dir`` (from :func:`make_version`) that wrote ``files``."""
        return cls(
            link=link,
            version_dir=version_dir,
            rows=int(rows),
            files_written=files,
            bytes_written=sum(path.stat().st_size for path in files),
            partitions_written=tuple(sorted({path.parent.name for path in files})),
            full=full,
        )


@dataclass(frozen=True)
class _State:
    version: int
    loaded_at: datetime | None
    raw_rows: int
    columns: list[list[str]]
    months: dict[str, int]


def versions_dir(export_dir: Path, name: str) -> Path:
    return export_dir / f".{name}.versions"


def parquet_glob(version_dir: Path) -> str:
    """The glob of every parquet file of a version (or of the current one, through the link),
    whatever it is partitioned by (``month=...`` or ``bucket=...``)."""
    return str(version_dir / "*=*" / "*.parquet")


def export_monthly(
    con: duckdb.DuckDBPyConnection,
    spec: MonthlyMart,
    export_dir: Path,
    select_sql: str,
    raw_relation: str | None,
) -> PartitionedExport:
    """Export ``select_sql`` (the mart's rows, BI-typed) as a new version of ``spec.name`` under
    ``export_dir``, writing only what changed since the previous export (everything when
    ``raw_relation`` is None: no watermark without a raw table). Returns what it wrote; when
    nothing changed, no version is made and nothing is written."""
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
    plan = None
    if (
        previous is not None
        and raw_relation is not None
        and previous.columns == columns
        and _watermark_matches(con, raw_relation, previous)
    ):
        plan = _plan(con, spec, select_sql, raw_relation, previous, link, dict(columns))
        if not plan.rewrite and not plan.appends and sum(previous.months.values()) == mart_rows:
            return PartitionedExport.unchanged(link, mart_rows)

    number = 1 if previous is None else previous.version + 1

    def build(aside: Path, name: str) -> tuple[list[Path], dict[str, object]]:
        nonlocal plan
        written, months = _build_version(con, spec, select_sql, aside, name, plan, previous, link)
        if plan is not None and sum(months.values()) != mart_rows:
            # The mart changed beyond the rows the load touched (a full refresh with new
            # logic, a build that failed before the previous export): rewrite every month.
            shutil.rmtree(aside)
            plan = None
            written, months = _build_version(con, spec, select_sql, aside, name, None, None, link)
        if not months:  # not in the state: the next version, with rows, does not carry it
            written.append(write_empty_partition(con, select_sql, aside, name, EMPTY_MONTH))
        return written, _state_json(_State(number, loaded_at, int(raw_rows), columns, months))

    final, files = make_version(link, versions, number, build)
    return PartitionedExport.made(link, final, files, mart_rows, full=plan is None)


def make_version(
    link: Path,
    versions: Path,
    number: int,
    build: Callable[[Path, str], tuple[list[Path], dict[str, object]]],
) -> tuple[Path, tuple[Path, ...]]:
    """Make version ``number`` of the relation behind ``link``: ``build(aside, name)`` writes its
    files into the directory ``aside`` (which it creates) and returns them with the version's
    state; the state is written beside them, the directory renamed into ``versions``, the link
    swapped to it, and superseded versions pruned. Returns the version directory and its files
    (at their final paths)."""
    name = f"v{number:08d}"
    aside = versions / f".{name}.{os.getpid()}.tmp"
    final = versions / name
    try:
        written, state = build(aside, name)
        (aside / STATE_FILE).write_text(json.dumps(state))
        os.replace(aside, final)
    finally:
        if aside.exists():  # only when the export failed before the rename
            shutil.rmtree(aside)
    _publish(link, final)
    remove_superseded_versions(versions, keep=final.name)
    return final, tuple(final / path.relative_to(aside) for path in written)


@dataclass(frozen=True)
class _Plan:
    """What a micro-batch changes: months rewritten from the mart (a row changed, or too many
    files), and rows appended as a new file per month (temp table ``_NEW_ROWS``)."""

    rewrite: set[str]
    appends: dict[str, int]


def _month_sql(spec: MonthlyMart) -> str:
    return f"coalesce(strftime({ident(spec.month_column)}, '%Y-%m'), '{NULL_MONTH}')"


def _plan(
    con: duckdb.DuckDBPyConnection,
    spec: MonthlyMart,
    select_sql: str,
    raw_relation: str,
    previous: _State,
    link: Path,
    types: dict[str, str],
) -> _Plan:
    """Compare the mart's rows for the deliveries loaded since the watermark with the current
    version's: new rows are appended, a changed row rewrites its month. Reads the mart for those
    keys only, and the current version's files only where their statistics say the keys' rows
    can be (files are sorted by ``month_column``)."""
    where = "" if previous.loaded_at is None else "where loaded_at > $loaded_at"
    parameters = {} if previous.loaded_at is None else {"loaded_at": previous.loaded_at}
    keys = [
        row[0]
        for row in con.execute(
            f"select distinct {spec.raw_key} from {raw_relation} {where}", parameters
        ).fetchall()
    ]
    if not keys:
        return _Plan(set(), {})
    key, stamp = ident(spec.key), ident(spec.month_column)
    key_list = ", ".join(literal(k) for k in sorted(keys))
    con.execute(
        f"create or replace temp table {_CANDIDATES} as select *, {_month_sql(spec)} as "
        f"partition_month from ({select_sql}) where {key} in ({key_list})"
    )
    months = {
        row[0]
        for row in con.execute(f"select distinct partition_month from {_CANDIDATES}").fetchall()
    }
    files = [
        str(path)
        for month in sorted(months & previous.months.keys())
        for path in sorted((link / f"{PARTITION_PREFIX}{month}").glob("*.parquet"))
    ]
    exported = f"select * exclude (partition_month) from {_CANDIDATES} limit 0"
    if files:
        stamps = ", ".join(
            f"cast({literal(row[0])} as {types[spec.month_column]})"
            for row in con.execute(
                f"select distinct cast({stamp} as varchar) from {_CANDIDATES} "
                f"where {stamp} is not null"
            ).fetchall()
        )
        stamp_filter = (
            f"({stamp} in ({stamps}) or {stamp} is null)" if stamps else f"{stamp} is null"
        )
        exported = (
            f"select * from read_parquet([{', '.join(literal(f) for f in files)}], "
            f"hive_partitioning = false) where {stamp_filter} and {key} in ({key_list})"
        )
    con.execute(f"create or replace temp table {_EXPORTED} as {exported}")
    con.execute(
        f"create or replace temp table {_NEW_ROWS} as select * from {_CANDIDATES} "
        f"where {key} not in (select {key} from {_EXPORTED})"
    )
    changed = f"""
        select {key} from (
            select * exclude (partition_month) from {_CANDIDATES} except all
            select * from {_EXPORTED})
        where {key} in (select {key} from {_EXPORTED})"""
    rewrite = {
        row[0]
        for row in con.execute(
            f"select distinct partition_month from {_CANDIDATES} where {key} in ({changed})"
        ).fetchall()
    }
    appends = {}
    for month, rows in con.execute(
        f"select partition_month, count(*) from {_NEW_ROWS} group by all"
    ).fetchall():
        folder = link / f"{PARTITION_PREFIX}{month}"
        if len(list(folder.glob("*.parquet"))) >= MAX_FILES_PER_MONTH:
            rewrite.add(month)  # compact: one file again
        elif month not in rewrite:
            appends[month] = int(rows)
    return _Plan(rewrite, appends)


def _build_version(
    con: duckdb.DuckDBPyConnection,
    spec: MonthlyMart,
    select_sql: str,
    destination: Path,
    name: str,
    plan: _Plan | None,
    previous: _State | None,
    link: Path,
) -> tuple[list[Path], dict[str, int]]:
    """A new version under ``destination``: every month written from the mart when ``plan`` is
    None; else the plan's months rewritten, the others hard-linked from the current version
    (``link``), and the plan's new rows appended as one more file in their month. Returns the
    files written and every month's row count."""
    rewrite = None if plan is None else plan.rewrite
    months = dict(_write_months(con, spec, select_sql, destination, name, rewrite))
    written = [
        p
        for month in months
        for p in (destination / f"{PARTITION_PREFIX}{month}").glob("*.parquet")
    ]
    if plan is None or previous is None:
        return written, months
    for month, rows in previous.months.items():
        if month not in plan.rewrite:
            link_partition(link / f"{PARTITION_PREFIX}{month}", destination, name)
            months[month] = rows
    for month, rows in sorted(plan.appends.items()):
        folder = destination / f"{PARTITION_PREFIX}{month}"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}_{len(list(folder.glob('*.parquet')))}.parquet"
        con.execute(
            f"copy (select * exclude (partition_month) from {_NEW_ROWS} where partition_month = "
            f"{literal(month)} order by {ident(spec.month_column)}) to {literal(str(path))} "
            f"(format parquet, compression {COMPRESSION})"
        )
        months[month] = months.get(month, 0) + rows
        written.append(path)
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
    destination.mkdir()
    if touched == set():
        return []
    where = ""
    if touched is not None:
        # Months come from strftime above or NULL_MONTH, so the literals cannot carry SQL.
        assert all(_MONTH.fullmatch(m) or m == NULL_MONTH for m in touched)
        months = ", ".join(f"'{m}'" for m in sorted(touched))
        where = f"where {PARTITION_COLUMN} in ({months})"
    query = (
        f"select * from (select *, {_month_sql(spec)} as {PARTITION_COLUMN} from ({select_sql})) "
        f"{where} order by {ident(spec.month_column)}"
    )
    return write_partitions(con, query, destination, name, PARTITION_PREFIX)


def write_partitions(
    con: duckdb.DuckDBPyConnection, query: str, destination: Path, name: str, prefix: str
) -> list[tuple[str, int]]:
    """Write ``query``'s rows under ``destination`` (which must hold no partition yet): one
    directory ``<prefix><value>`` per value of its column ``PARTITION_COLUMN`` (left out of the
    files), files named ``<name>_<i>.parquet``. Returns each directory's value and row count."""
    con.execute(
        f"copy ({query}) to {literal(str(destination))} (format parquet, compression "
        f"{COMPRESSION}, partition_by ({PARTITION_COLUMN}), filename_pattern '{name}_{{i}}', "
        f"row_group_size {ROW_GROUP_ROWS})"
    )
    # Rows per directory, from the files' footers (one query, whatever the number of files).
    counts: dict[str, int] = {}
    if any(destination.glob(f"{PARTITION_COLUMN}=*")):
        pattern = str(destination / f"{PARTITION_COLUMN}=*" / "*.parquet")
        for file_name, rows in con.execute(
            f"select file_name, num_rows from parquet_file_metadata({literal(pattern)})"
        ).fetchall():
            value = Path(file_name).parent.name.removeprefix(f"{PARTITION_COLUMN}=")
            counts[value] = counts.get(value, 0) + int(rows)
    # DuckDB names each directory after the partition column: rename to <prefix><value>.
    for value in counts:
        (destination / f"{PARTITION_COLUMN}={value}").rename(destination / f"{prefix}{value}")
    return sorted(counts.items())


def write_empty_partition(
    con: duckdb.DuckDBPyConnection, select_sql: str, destination: Path, name: str, partition: str
) -> Path:
    """The version of an empty relation: one file with ``select_sql``'s columns and no rows, in
    ``destination/partition``, so that readers (``query.duckdb``'s view, a BI tool's glob) still
    find a file and the relation's columns."""
    folder = destination / partition
    folder.mkdir()
    path = folder / f"{name}_0.parquet"
    con.execute(
        f"copy (select * from ({select_sql}) limit 0) to {literal(str(path))} "
        f"(format parquet, compression {COMPRESSION})"
    )
    return path


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def link_partition(previous: Path, destination: Path, name: str) -> None:
    """Hard-link a partition's files from the previous version, renamed to this version
    (``name``)."""
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
