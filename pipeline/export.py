"""Marts (and the quality and reporting facts) -> parquet under ``<export_dir>``, and
``<export_dir>/query.duckdb``, for BI tools.

Contract of :func:`export_marts`:

- Every table or view in schema ``marts`` of the warehouse becomes ``<export_dir>/<name>.parquet``;
  every one in schema ``quality`` or ``reporting`` (when the schema exists) becomes
  ``<export_dir>/<schema>/<name>.parquet``. Each file is written beside its final name, then
  renamed over it (``os.replace`` is atomic): a reader sees the old file or the new one, never
  half of one. These relations are small (their size follows learners or courses, not events)
  and are rewritten whole.
- A large fact, one row per event (:data:`MONTHLY_MARTS`: ``fct_learner_activity``), is instead a
  directory of monthly partitions, ``<export_dir>/<name>/month=YYYY-MM/*.parquet``, of which a
  micro-batch rewrites only the months its load touched. ``<export_dir>/<name>`` is a link to an
  immutable version directory, swapped by one rename, so a reader sees one batch's version and
  never a mix of two (:mod:`pipeline.export_partitioned`). The first such export of a deployment
  that had ``<export_dir>/<name>.parquet`` removes that file once ``query.duckdb`` reads the new
  layout.
- The relations of one row per learner and course (:data:`BUCKETED_RELATIONS`:
  ``fct_learner_course_progress``, ``reporting.stalled_learners``) are directories of hash
  buckets of ``learner_id``, ``<folder>/<name>/bucket=N/*.parquet``, versioned and linked the same
  way, of which a micro-batch rewrites only the buckets of the learners whose rows it wrote
  (:mod:`pipeline.export_bucketed`); the same upgrade removes their old single files.
- Types are those BI tools read: unsigned and 128-bit integers become BIGINT (an overflow fails the
  export loudly rather than wrapping), timestamps become TIMESTAMPTZ in UTC (the warehouse's
  naive timestamps are UTC by convention), which Parquet stores as ``isAdjustedToUTC``, and JSON
  becomes text.
- ``<export_dir>/query.duckdb`` holds one view per exported relation: the marts under their own
  names (the same view names whatever the layout), the others in schemas ``quality`` and
  ``reporting``, with the warehouse's comments on views and columns (dbt's ``persist_docs``) so
  ``DESCRIBE`` and BI tools show what a column means. Views read the files by absolute path; a
  partitioned mart's view reads its current version directory itself, not the link, so a query
  never lists one version and opens another: a connection sees the version that was current
  when it opened ``query.duckdb`` (reopen it to see a newer batch; a version stays
  ``KEEP_SUPERSEDED_S`` after it is superseded). The file is rebuilt aside and renamed too. It
  never touches the warehouse, so analysts open it (read-only) at any time, even while a run
  holds the warehouse, without a lock error.
- Files a killed export left aside (``.<name>.<pid>.tmp``, DuckDB's ``.wal`` beside one, and
  unfinished version directories) are removed by the next export once their process is gone; a
  running export's are left alone.

On ``EDUME_ENGINE=spark`` the relations are Spark's parquet tables (``pipeline/spark_marts.py``)
and the raw table (for the watermark) is read from the DuckDB warehouse, attached read-only.
Spark's tables carry no comments (dbt-spark persists docs only into a metastore's table
properties, which DuckDB does not read), so ``query.duckdb`` has none on Spark.

The warehouse is read under :func:`pipeline.warehouse_lock.warehouse_lock`, in one transaction.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipeline.export_bucketed import BucketedRelation, export_bucketed
from pipeline.export_partitioned import (
    COMPRESSION,
    MonthlyMart,
    PartitionedExport,
    export_monthly,
    ident,
    literal,
    parquet_glob,
    remove_stale_versions,
    versions_dir,
)
from pipeline.loader.handoff import RAW_TABLE, spark_dir
from pipeline.spark_marts import connect_spark_tables, spark_table_dirs
from pipeline.warehouse_lock import warehouse_lock

log = logging.getLogger(__name__)

QUERY_FILE = "query.duckdb"
MARTS_SCHEMA = "marts"
# Exported beside the marts but apart from them: <export_dir>/<schema>/<name>.parquet.
SIDE_SCHEMAS = ("quality", "reporting")
# The marts design.md promises; every one is exported (with any other table in schema marts).
DESIGNED_MARTS = (
    "dim_courses",
    "dim_course_modules",
    "dim_course_activities",
    "course_team_assignments",
    "course_seamless_links",
    "dim_learners",
    "fct_learner_activity",
    "fct_learner_course_progress",
    "fct_learner_funnel",
    "fct_course_dropoff",
    "fct_training_compliance",
)
# Marts of one row per event: exported by month of occurrence, only touched months rewritten.
# Its learner_event_id is the delivery_id of raw.edume_events.
MONTHLY_MARTS = (
    MonthlyMart(
        "fct_learner_activity", "occurred_at", key="learner_event_id", raw_key="delivery_id"
    ),
)
# Relations of one row per learner and course: exported as buckets of learner_id, of which a
# micro-batch rewrites only those of the learners whose rows it wrote. Their rows depend on the
# progress aggregate (and, for stalled learners, the learner's names and the course titles).
BUCKETED_RELATIONS = (
    BucketedRelation(
        MARTS_SCHEMA,
        "fct_learner_course_progress",
        "learner_id",
        changed_by=("intermediate.int_learner_course_progress_aggregated",),
    ),
    BucketedRelation(
        "reporting",
        "stalled_learners",
        "learner_id",
        changed_by=(
            "intermediate.int_learner_course_progress_aggregated",
            "intermediate.int_learner_profiles_aggregated",
        ),
        whole_inputs=(f"select course_id, course_title from {MARTS_SCHEMA}.dim_courses",),
    ),
)
_SPARK_WAREHOUSE_ALIAS = "edume_warehouse"

# What _write_parquet, write_query_file and a link swap write before the rename (plus DuckDB's
# write-ahead log).
_ASIDE = re.compile(r"\..+\.(?P<pid>[0-9]+)\.tmp(\.wal)?")

# DuckDB types BI tools (and Parquet readers such as Power BI, Tableau, Spark) handle badly.
_BI_CASTS = {
    "UTINYINT": "SMALLINT",
    "USMALLINT": "INTEGER",
    "UINTEGER": "BIGINT",
    "UBIGINT": "BIGINT",
    "HUGEINT": "BIGINT",
    "UHUGEINT": "BIGINT",
    "TIMESTAMP": "TIMESTAMPTZ",
    "TIMESTAMP_S": "TIMESTAMPTZ",
    "TIMESTAMP_MS": "TIMESTAMPTZ",
    "TIMESTAMP_NS": "TIMESTAMPTZ",
    "JSON": "VARCHAR",
}


@dataclass(frozen=True)
class Comments:
    """A relation's comment and its columns' comments (empty when the warehouse has none)."""

    relation: str | None = None
    columns: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportResult:
    """What one export did.

    ``parquet_files``: each exported relation's path (a file, or a partitioned mart's link);
    ``rows``: rows per relation (marts by name, others as ``<schema>.<name>``);
    ``files_written`` / ``bytes_written``: the parquet files this export wrote (months a batch
    did not touch are reused, not written).
    """

    parquet_files: tuple[Path, ...]
    rows: dict[str, int]
    query_file: Path
    files_written: tuple[Path, ...] = ()
    bytes_written: int = 0


def bi_select(columns: list[tuple[str, str]], relation: str) -> str:
    """``select`` over ``relation``, each (name, DuckDB type) column cast to a BI-friendly type."""
    items = []
    for name, column_type in columns:
        target = _BI_CASTS.get(column_type.upper())
        quoted = ident(name)
        items.append(f"cast({quoted} as {target}) as {quoted}" if target else quoted)
    return f"select {', '.join(items) or '*'} from {relation}"


def list_relations(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    """The tables and views of ``schema`` in the connection's database, by name."""
    rows = con.execute(
        "select table_name from information_schema.tables "
        "where table_schema = ? and table_catalog = current_database() order by table_name",
        [schema],
    ).fetchall()
    return [row[0] for row in rows]


def list_marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    return list_relations(con, MARTS_SCHEMA)


def _partitioned_folders(export_dir: Path) -> list[tuple[Path, str]]:
    """(folder, name) of every relation exported as a partitioned directory."""
    return [(export_dir, spec.name) for spec in MONTHLY_MARTS] + [
        (_folder(export_dir, spec.schema), spec.name) for spec in BUCKETED_RELATIONS
    ]


def _folder(export_dir: Path, schema: str) -> Path:
    return export_dir if schema == MARTS_SCHEMA else export_dir / schema


def mart_parquet_glob(export_dir: Path, name: str, schema: str = MARTS_SCHEMA) -> str:
    """What ``read_parquet`` reads for relation ``schema.name`` exported to ``export_dir``: its
    file, or every file of its partitioned folder's current version (read with
    ``hive_partitioning = false`` to get the relation's columns alone)."""
    folder = _folder(Path(export_dir), schema)
    if (folder, name) in _partitioned_folders(Path(export_dir)) and (folder / name).is_dir():
        return parquet_glob(folder / name)
    return str(folder / f"{name}.parquet")


def _comments(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> Comments:
    """The warehouse's persisted comments on ``schema.name`` (dbt's persist_docs)."""
    relation = con.execute(
        "select comment from duckdb_tables() where schema_name = $s and table_name = $n "
        "and database_name = current_database() union all "
        "select comment from duckdb_views() where schema_name = $s and view_name = $n "
        "and database_name = current_database()",
        {"s": schema, "n": name},
    ).fetchone()
    columns = con.execute(
        "select column_name, comment from duckdb_columns() where schema_name = $s "
        "and table_name = $n and database_name = current_database() and comment is not null",
        {"s": schema, "n": name},
    ).fetchall()
    return Comments(relation[0] if relation else None, dict(columns))


@dataclass(frozen=True)
class _Exported:
    """One relation as ``query.duckdb`` sees it: view name, how to read it, comments."""

    schema: str | None
    name: str
    reader: str
    comments: Comments


def _write_parquet(
    con: duckdb.DuckDBPyConnection, select_sql: str, final: Path
) -> tuple[Path, int]:
    aside = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        # COPY answers the rows it wrote: counting the relation again would compute a view
        # (e.g. reporting.stalled_learners) a second time.
        (rows,) = con.execute(
            f"copy ({select_sql}) to {literal(str(aside))} "
            f"(format parquet, compression {COMPRESSION})"
        ).fetchone()
        os.replace(aside, final)
    finally:
        aside.unlink(missing_ok=True)  # only left behind when the copy failed
    return final, rows


def write_query_file(export_dir: Path, relations: list[_Exported]) -> Path:
    """(Re)build ``query.duckdb``: one view per exported relation, with its comments; written
    aside, then renamed."""
    final = export_dir / QUERY_FILE
    aside = export_dir / f".{QUERY_FILE}.{os.getpid()}.tmp"
    aside.unlink(missing_ok=True)
    with duckdb.connect(str(aside)) as con:
        for relation in sorted(relations, key=lambda r: (r.schema or "", r.name)):
            view = ident(relation.name)
            if relation.schema:
                con.execute(f"create schema if not exists {ident(relation.schema)}")
                view = f"{ident(relation.schema)}.{view}"
            con.execute(f"create view {view} as select * from {relation.reader}")
            if relation.comments.relation:
                con.execute(f"comment on view {view} is {literal(relation.comments.relation)}")
            for column, comment in sorted(relation.comments.columns.items()):
                con.execute(f"comment on column {view}.{ident(column)} is {literal(comment)}")
        con.execute("checkpoint")
    os.replace(aside, final)
    return final


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, as another user
    return False


def remove_stale_asides(export_dir: Path) -> list[Path]:
    """Delete the files exports that died (SIGKILL, power loss) left aside; return them."""
    folders = [export_dir, *(export_dir / schema for schema in SIDE_SCHEMAS)]
    stale = [
        path
        for folder in folders
        if folder.is_dir()
        for path in folder.glob(".*.tmp*")
        if (match := _ASIDE.fullmatch(path.name)) and _process_is_gone(int(match["pid"]))
    ]
    for path in stale:
        path.unlink(missing_ok=True)
    for folder, name in _partitioned_folders(export_dir):
        stale += remove_stale_versions(versions_dir(folder, name), _process_is_gone)
    return stale


def _open_source(warehouse: Path, engine: str) -> tuple[duckdb.DuckDBPyConnection, str | None]:
    """Where ``engine``'s dbt target built the relations, and the raw table's name in it (None
    when the warehouse has no raw table: a partitioned mart is then rewritten whole).

    DuckDB: the warehouse file. Spark: Spark's parquet tables (``pipeline/spark_marts.py``) in
    the Spark directory beside it, with the DuckDB warehouse attached for the raw table."""
    if engine == "spark":
        tables = spark_dir(warehouse) / "warehouse"
        databases = [MARTS_SCHEMA]
        for schema in SIDE_SCHEMAS:
            try:
                spark_table_dirs(tables, schema)
                databases.append(schema)
            except FileNotFoundError:
                continue  # that dbt folder is not built on this deployment
        con = connect_spark_tables(tables, databases)
        con.execute(f"attach {literal(str(warehouse))} as {_SPARK_WAREHOUSE_ALIAS} (read_only)")
        raw = f"{_SPARK_WAREHOUSE_ALIAS}.{RAW_TABLE}"
    else:
        con = duckdb.connect(str(warehouse), read_only=True)
        raw = RAW_TABLE
    try:
        con.execute(f"select 1 from {raw} limit 0")
    except duckdb.CatalogException:
        raw = None
    return con, raw


def export_marts(warehouse: Path, export_dir: Path, engine: str = "duckdb") -> ExportResult:
    """Export every mart (and quality and reporting relation) ``engine`` built for
    ``warehouse`` to ``export_dir``; see the module docstring.

    Raises ``duckdb.ConversionException`` when a value does not fit its BI type (the previous
    files stay), and ``FileNotFoundError`` on Spark when Spark built nothing yet.
    """
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    for path in remove_stale_asides(export_dir):
        log.warning("removed %s, left by an export that did not finish", path.name)
    exported: list[_Exported] = []
    paths: list[Path] = []
    rows: dict[str, int] = {}
    files_written: list[Path] = []
    monthly = {(MARTS_SCHEMA, spec.name): spec for spec in MONTHLY_MARTS}
    bucketed = {(spec.schema, spec.name): spec for spec in BUCKETED_RELATIONS}
    with warehouse_lock(warehouse, on_wait=log.warning):
        con, raw = _open_source(warehouse, engine)
        try:
            con.execute("set TimeZone = 'UTC'")  # naive warehouse timestamps are UTC
            con.execute("begin transaction")  # one snapshot of every relation and the watermark
            for schema in (MARTS_SCHEMA, *SIDE_SCHEMAS):
                folder = _folder(export_dir, schema)
                for name in list_relations(con, schema):
                    relation = f"{ident(schema)}.{ident(name)}"
                    columns = [(r[0], r[1]) for r in con.execute(f"describe {relation}").fetchall()]
                    select_sql = bi_select(columns, relation)
                    comments = _comments(con, schema, name) if engine == "duckdb" else Comments()
                    key = name if schema == MARTS_SCHEMA else f"{schema}.{name}"
                    folder.mkdir(exist_ok=True)
                    done: PartitionedExport | None = None
                    if (schema, name) in monthly:
                        done = export_monthly(con, monthly[schema, name], folder, select_sql, raw)
                    elif (schema, name) in bucketed:
                        done = export_bucketed(con, bucketed[schema, name], folder, select_sql)
                    if done is not None:
                        reader = (
                            f"read_parquet({literal(parquet_glob(done.version_dir.absolute()))}, "
                            "hive_partitioning = false)"
                        )
                        paths.append(done.link)
                        rows[key] = done.rows
                        files_written += done.files_written
                        if done.partitions_written:
                            log.info(
                                "%s: rewrote %d partition(s)%s: %s",
                                key,
                                len(done.partitions_written),
                                " (in full)" if done.full else "",
                                ", ".join(done.partitions_written[:12])
                                + (", ..." if len(done.partitions_written) > 12 else ""),
                            )
                    else:
                        path, count = _write_parquet(con, select_sql, folder / f"{name}.parquet")
                        reader = f"read_parquet({literal(str(path.absolute()))})"
                        paths.append(path)
                        rows[key] = count
                        files_written.append(path)
                    view_schema = None if schema == MARTS_SCHEMA else schema
                    exported.append(_Exported(view_schema, name, reader, comments))
            con.execute("commit")
        finally:
            con.close()
    query_file = write_query_file(export_dir, exported)
    _remove_superseded_layouts(export_dir)
    log.info("exported %d relation(s) to %s", len(exported), export_dir)
    return ExportResult(
        parquet_files=tuple(paths),
        rows=rows,
        query_file=query_file,
        files_written=tuple(files_written),
        bytes_written=sum(path.stat().st_size for path in files_written),
    )


def _remove_superseded_layouts(export_dir: Path) -> None:
    """An older deployment exported every relation as ``<name>.parquet``: once ``query.duckdb``
    reads a partitioned relation's directory, its old single file goes (BI tools see one
    layout)."""
    for folder, name in _partitioned_folders(export_dir):
        old = folder / f"{name}.parquet"
        if (folder / name).is_symlink() and old.exists():
            old.unlink()
            log.info("removed %s: %s is now a directory of partitions", old, name)
