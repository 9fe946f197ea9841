"""A relation exported as hash buckets of one column, versioned, and swapped in by one rename.

For the relations of one row per learner and course (``fct_learner_course_progress``,
``reporting.stalled_learners``): rewriting them whole after every micro-batch made the export's
cost grow with the warehouse. Layout, for relation ``<name>`` exported into ``<folder>`` (the
export directory, or its ``reporting`` subfolder)::

    <folder>/<name>                       -> .<name>.versions/v00000042   (a symbolic link)
    <folder>/.<name>.versions/v00000042/
        _edume_export.json                # this version's state: buckets, watermarks, rows
        bucket=0/v00000042_0.parquet      # the rows whose hash(bucket column) % buckets is 0
        bucket=1/v00000042_0.parquet
        ...

Versions, links, the reader's guarantees (one batch's version, never a mix) and the clean-up of
what a killed export left are :mod:`pipeline.export_partitioned`'s.

Contract of :func:`export_bucketed`:

- **Only the buckets whose rows may have changed are rewritten.** A relation names its
  ``changed_by`` tables: incremental models that stamp every row they write with ``built_at``
  and carry the bucket column. Their rows written since the previous export (its watermark:
  each table's newest ``built_at``) name the values of the bucket column whose rows may have
  changed. Each of their buckets is rewritten as one file: the previous version's rows less
  those values', plus the relation's current rows for those values (looked up by value). The
  other buckets are hard links to the previous version's files.
- **Everything is rewritten** when there is no previous version; when the columns changed; when
  the fingerprint of what else the rows depend on changed: the definition of every view of the
  warehouse (it holds the ``as_of`` literal of the time-dependent marts, so a new ``as_of``
  rewrites them) and the relation's ``whole_inputs`` (for example course titles); when more than
  ``MAX_CHANGED_VALUES`` values changed (a large catch-up, or a full refresh: it restamps every
  row); when the bucket count no longer suits the row count (``ROWS_PER_BUCKET``); when DuckDB's
  version changed (the bucket hash is DuckDB's); when a ``changed_by`` table cannot be read (on
  Spark the intermediate tables are not exported, so every export is whole); and, as a safety
  net, when the buckets' row counts do not add up to the relation's.
- When nothing changed, no version is made and nothing is written.

The caller holds the warehouse lock and passes a connection that reads the relation and its
``changed_by`` tables in one transaction (one snapshot for buckets, files and watermarks).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from pipeline.export_partitioned import (
    PARTITION_COLUMN,
    STATE_FILE,
    PartitionedExport,
    ident,
    link_partition,
    literal,
    make_version,
    versions_dir,
    write_empty_partition,
    write_partitions,
)

BUCKET_PREFIX = "bucket="
# A bucket holds about this many rows (the count is a power of two chosen when a relation is
# written whole): a micro-batch that touches k values rewrites about k buckets of this size.
ROWS_PER_BUCKET = 4_096
MAX_BUCKETS = 4_096
# More changed values than this (a large catch-up, a full refresh): rewrite everything instead.
MAX_CHANGED_VALUES = 2_000


@dataclass(frozen=True)
class BucketedRelation:
    """``schema.name`` exported as buckets of ``bucket_column``.

    ``changed_by``: tables with columns ``bucket_column`` and ``built_at`` whose rows written
    since the previous export name every value of ``bucket_column`` whose rows in the relation
    may have changed, except through what ``whole_inputs`` (queries) and the warehouse's view
    definitions cover."""

    schema: str
    name: str
    bucket_column: str
    changed_by: tuple[str, ...]
    whole_inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class _State:
    version: int
    columns: list[list[str]]
    buckets: int
    partitions: dict[str, int]  # bucket number (as text) -> rows
    watermarks: dict[str, str | None]  # changed_by table -> its newest built_at (ISO)
    inputs: str
    duckdb_version: str

    def json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "columns": self.columns,
            "buckets": self.buckets,
            "partitions": self.partitions,
            "watermarks": self.watermarks,
            "inputs": self.inputs,
            "duckdb_version": self.duckdb_version,
        }


def bucket_count(rows: int) -> int:
    """The power of two nearest ``rows / ROWS_PER_BUCKET`` (1 to ``MAX_BUCKETS``)."""
    if rows <= ROWS_PER_BUCKET:
        return 1
    return min(MAX_BUCKETS, 2 ** round(math.log2(rows / ROWS_PER_BUCKET)))


def export_bucketed(
    con: duckdb.DuckDBPyConnection, spec: BucketedRelation, folder: Path, select_sql: str
) -> PartitionedExport:
    """Export ``select_sql`` (the relation's rows, BI-typed) as a new version of ``spec.name``
    under ``folder``, rewriting only the buckets that may have changed since the previous export
    (see the module docstring). Returns what it wrote."""
    link = folder / spec.name
    versions = versions_dir(folder, spec.name)
    versions.mkdir(exist_ok=True)
    previous = _read_state(link)
    columns = [[row[0], row[1]] for row in con.execute(f"describe {select_sql}").fetchall()]
    (rows,) = con.execute(f"select count(*) from ({select_sql})").fetchone()
    watermarks = _watermarks(con, spec)
    inputs = _fingerprint(con, spec)
    changed = _changed_values(con, spec, previous, columns, int(rows), watermarks, inputs)
    if previous is not None and changed == []:
        return PartitionedExport.unchanged(link, rows)
    full = previous is None or changed is None
    number = 1 if previous is None else previous.version + 1

    def build(aside: Path, name: str) -> tuple[list[Path], dict[str, object]]:
        nonlocal full
        aside.mkdir()
        if not full:
            assert previous is not None and changed
            buckets = previous.buckets
            column_type = dict(columns)[spec.bucket_column]
            partitions, written = _rewrite(
                con, spec, select_sql, aside, name, link, previous, changed, column_type
            )
            if sum(partitions.values()) != rows:  # the safety net: rewrite every bucket
                shutil.rmtree(aside)
                aside.mkdir()
                full = True
        if full:
            buckets = bucket_count(int(rows))
            partitions, written = _write_all(con, spec, select_sql, aside, name, buckets)
        state = _State(
            number, columns, buckets, partitions, watermarks or {}, inputs, duckdb.__version__
        )
        return written, state.json()

    final, files = make_version(link, versions, number, build)
    return PartitionedExport.made(link, final, files, rows, full)


def _watermarks(
    con: duckdb.DuckDBPyConnection, spec: BucketedRelation
) -> dict[str, str | None] | None:
    """Each ``changed_by`` table's newest ``built_at`` (ISO); None if one is missing or lacks
    ``built_at`` or the bucket column (looked up first: a failed query would abort the caller's
    transaction)."""
    stamped = {
        name
        for (name,) in con.execute(
            "select schema_name || '.' || table_name from duckdb_columns() "
            "where database_name = current_database() and column_name in ($stamp, $bucket) "
            "group by all having count(*) = 2",
            {"stamp": "built_at", "bucket": spec.bucket_column},
        ).fetchall()
    }
    if not set(spec.changed_by) <= stamped:
        return None
    marks = {}
    for table in spec.changed_by:
        (newest,) = con.execute(f"select max(built_at) from {table}").fetchone()
        marks[table] = None if newest is None else newest.isoformat()
    return marks


def _fingerprint(con: duckdb.DuckDBPyConnection, spec: BucketedRelation) -> str:
    """A digest of the warehouse's view definitions and of the rows of ``spec.whole_inputs``."""
    digest = hashlib.blake2b(digest_size=16)
    views = con.execute(
        "select schema_name, view_name, sql from duckdb_views() where not internal "
        "and database_name = current_database() order by all"
    ).fetchall()
    digest.update(json.dumps(views).encode())
    for query in spec.whole_inputs:
        (count, total) = con.execute(
            f"select count(*), sum(hash(t)) from ({query}) as t"
        ).fetchone()
        digest.update(f"{count}:{total}".encode())
    return digest.hexdigest()


def _changed_values(
    con: duckdb.DuckDBPyConnection,
    spec: BucketedRelation,
    previous: _State | None,
    columns: list[list[str]],
    rows: int,
    watermarks: dict[str, str | None] | None,
    inputs: str,
) -> list | None:
    """The bucket column's values whose rows may have changed since ``previous``, or None when
    everything must be rewritten (see the module docstring)."""
    if (
        previous is None
        or watermarks is None
        or previous.columns != columns
        or previous.inputs != inputs
        or previous.duckdb_version != duckdb.__version__
        or set(previous.watermarks) != set(watermarks)
        or bucket_count(rows) not in range(previous.buckets // 4 + 1, previous.buckets * 4)
    ):
        return None
    values: set = set()
    column = ident(spec.bucket_column)
    for table, newest in previous.watermarks.items():
        # Rows without a stamp were written before the table had the column: never "changed".
        since, parameters = "built_at is not null", {}
        if newest is not None:
            since, parameters = "built_at > $newest", {"newest": datetime.fromisoformat(newest)}
        found = con.execute(
            f"select distinct {column} from {table} where {since}", parameters
        ).fetchall()
        values.update(value for (value,) in found)
        if None in values or len(values) > MAX_CHANGED_VALUES:
            return None
    if not values and sum(previous.partitions.values()) != rows:
        return None  # the relation changed without a stamped row (the safety net)
    return sorted(values)


def _bucket_sql(spec: BucketedRelation, buckets: int) -> str:
    return f"hash({ident(spec.bucket_column)}) % {buckets}"


def _value_list(values: list, column_type: str) -> str:
    return ", ".join(f"cast({literal(str(value))} as {column_type})" for value in values)


def _write_all(
    con: duckdb.DuckDBPyConnection,
    spec: BucketedRelation,
    select_sql: str,
    destination: Path,
    name: str,
    buckets: int,
) -> tuple[dict[str, int], list[Path]]:
    """Every bucket of the relation, from the relation; an empty relation gets one empty file
    (``bucket=0``), so that readers still find its columns. Returns every bucket's row count,
    and the files written."""
    query = (
        f"select *, {_bucket_sql(spec, buckets)} as {PARTITION_COLUMN} from ({select_sql}) "
        f"order by {ident(spec.bucket_column)}"
    )
    partitions = dict(write_partitions(con, query, destination, name, BUCKET_PREFIX))
    if not partitions:
        write_empty_partition(con, select_sql, destination, name, f"{BUCKET_PREFIX}0")
        partitions = {"0": 0}
    return partitions, sorted(destination.glob(f"{BUCKET_PREFIX}*/*.parquet"))


def _rewrite(
    con: duckdb.DuckDBPyConnection,
    spec: BucketedRelation,
    select_sql: str,
    destination: Path,
    name: str,
    link: Path,
    previous: _State,
    values: list,
    column_type: str,
) -> tuple[dict[str, int], list[Path]]:
    """The buckets of ``values`` rewritten (the previous version's rows less those values', plus
    the relation's rows for them), every other bucket linked from the previous version
    (``link``). Returns every bucket's row count, and the files written (not linked)."""
    column = ident(spec.bucket_column)
    listed = _value_list(values, column_type)
    bucket_of = _bucket_sql(spec, previous.buckets)
    touched = {
        str(bucket)
        for (bucket,) in con.execute(
            f"select distinct {bucket_of} from (select unnest([{listed}]) as {column})"
        ).fetchall()
    }
    files = [
        literal(str(path))
        for bucket in sorted(touched & previous.partitions.keys())
        for path in sorted((link / f"{BUCKET_PREFIX}{bucket}").glob("*.parquet"))
    ]
    current = f"select * from ({select_sql}) where {column} in ({listed})"
    kept = (
        f"select * from read_parquet([{', '.join(files)}], hive_partitioning = false) "
        f"where not coalesce({column} in ({listed}), false) union all "
        if files
        else ""
    )
    query = f"select *, {bucket_of} as {PARTITION_COLUMN} from ({kept}{current}) order by {column}"
    partitions = dict(write_partitions(con, query, destination, name, BUCKET_PREFIX))
    written = sorted(destination.glob(f"{BUCKET_PREFIX}*/*.parquet"))
    for bucket, count in previous.partitions.items():
        if bucket not in touched:
            link_partition(link / f"{BUCKET_PREFIX}{bucket}", destination, name)
            partitions[bucket] = count
    return partitions, written


def _read_state(link: Path) -> _State | None:
    """The current version's state, or None (no version yet, or unreadable: export in full)."""
    try:
        data = json.loads((link / STATE_FILE).read_text())
        return _State(
            version=int(data["version"]),
            columns=[list(column) for column in data["columns"]],
            buckets=int(data["buckets"]),
            partitions={str(k): int(v) for k, v in data["partitions"].items()},
            watermarks={str(k): v and str(v) for k, v in data["watermarks"].items()},
            inputs=str(data["inputs"]),
            duckdb_version=str(data["duckdb_version"]),
        )
    except (OSError, KeyError, ValueError, TypeError, AttributeError):
        return None
