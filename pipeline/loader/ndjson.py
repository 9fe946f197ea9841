"""Sealed landing segments -> ``raw.edume_events`` in DuckDB, each segment exactly once.

Contract of :func:`load_landing`:

- Only sealed segments (``SEALED_GLOB`` under the landing dir) are read; open ones never.
- A segment is loaded once. Its rows and its manifest entry (``raw.edume_loaded_segments``: path,
  size, SHA-256, rows loaded and rejected) commit in ONE transaction per batch of segments, so a
  crash at any point leaves either the whole batch or none of it.
- A segment already in the manifest is skipped; one whose size or checksum changed since it was
  loaded is refused: the rest is loaded, then :class:`ChangedSegmentError` names it.
- A line that is not JSON, lacks the landing envelope, or whose ``delivery_id`` is not the
  SHA-256 of its body goes to ``raw.edume_rejected_lines`` with its segment, line number, error
  and text. Its neighbours load. A body without a (known) eduMe ``type`` is NOT rejected: it loads
  with ``event_type`` NULL (or the unknown value) and dbt surfaces it.
- The parsing is DuckDB's: ``read_text`` + its JSON functions, batch by batch, so a backlog of
  millions of lines loads in bounded memory. A segment that is not valid UTF-8 (corruption) falls
  back to splitting its lines in Python so that its good lines still load.

The caller needs no lock: the load runs inside :func:`pipeline.warehouse_lock.warehouse_lock`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipeline.receiver.landing_format import AUTH_MODES, SEALED_GLOB, SIGNATURE_FORMS
from pipeline.warehouse_lock import warehouse_lock

log = logging.getLogger(__name__)

DEFAULT_BATCH_BYTES = 128 * 1024 * 1024
DEFAULT_BATCH_SEGMENTS = 512

DDL = """
create schema if not exists raw;
create table if not exists raw.edume_events (
  delivery_id varchar not null,      -- sha256 hex of the raw body
  received_at timestamp not null,    -- UTC (naive timestamps are UTC everywhere in the warehouse)
  auth_mode varchar not null,        -- hmac | bearer | hmac+bearer
  signature_form varchar,            -- raw | reserialized | null
  secret_index integer,
  token_index integer,
  event_type varchar,                -- body.type, NULL when absent or not a string
  event_timestamp timestamp,         -- body.timestamp parsed as UTC; NULL when unparseable
  body json not null,                -- the raw body text, byte for byte
  segment varchar not null,          -- segment path relative to the landing dir
  line_number bigint not null,       -- 1-based line within the segment
  loaded_at timestamp not null
);
create table if not exists raw.edume_loaded_segments (
  segment varchar primary key,       -- path relative to the landing dir
  size_bytes bigint not null,
  sha256 varchar not null,           -- of the whole segment file
  mtime_ns bigint not null,          -- quick check: size and mtime unchanged => not re-hashed
  rows_loaded bigint not null,
  rows_rejected bigint not null,
  loaded_at timestamp not null
);
create table if not exists raw.edume_rejected_lines (
  segment varchar not null,
  line_number bigint not null,
  error varchar not null,
  line varchar not null,             -- the line as landed (invalid UTF-8 shown as \\x escapes)
  loaded_at timestamp not null
);
"""


class ChangedSegmentError(RuntimeError):
    """Segments changed after they were loaded. Everything else was loaded; ``result`` says what."""

    def __init__(self, changed: tuple[str, ...], result: LoadResult) -> None:
        self.changed = changed
        self.result = result
        super().__init__(
            f"{len(changed)} landing segment(s) changed after they were loaded and were NOT "
            f"loaded again: {', '.join(changed)}. Landed segments are immutable; restore the "
            "original file, or move it aside and delete its row from raw.edume_loaded_segments "
            "(and its rows from raw.edume_events) to load it anew."
        )


@dataclass(frozen=True)
class Segment:
    """A sealed segment on disk: its path relative to the landing dir, size, mtime and checksum."""

    name: str
    path: Path
    size_bytes: int
    mtime_ns: int


@dataclass(frozen=True)
class LoadResult:
    segments_loaded: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    segments_already_loaded: int = 0
    changed_segments: tuple[str, ...] = field(default_factory=tuple)

    def __add__(self, other: LoadResult) -> LoadResult:
        return LoadResult(
            self.segments_loaded + other.segments_loaded,
            self.rows_loaded + other.rows_loaded,
            self.rows_rejected + other.rows_rejected,
            self.segments_already_loaded + other.segments_already_loaded,
            self.changed_segments + other.changed_segments,
        )


def connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for writing with the settings the loader relies on (UTC)."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    con.execute("set TimeZone = 'UTC'")  # after connect: as a connect option ICU is not loaded yet
    return con


def sealed_segments(landing_dir: Path) -> list[Segment]:
    """Every sealed segment under ``landing_dir``, sorted by name (``_rejects`` never matches)."""
    found = []
    for path in sorted(landing_dir.glob(SEALED_GLOB)):
        stat = path.stat()
        name = path.relative_to(landing_dir).as_posix()
        found.append(Segment(name, path, stat.st_size, stat.st_mtime_ns))
    return found


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    is_utf8: bool
    lines: int  # as the loader splits them: on newlines, the final newline ending the last line


def fingerprint(path: Path) -> Fingerprint:
    """Checksum, UTF-8 validity and line count of a segment, from one read of it."""
    data = path.read_bytes()
    checksum = hashlib.sha256(data).hexdigest()
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return Fingerprint(checksum, False, lines)
    return Fingerprint(checksum, True, lines)


def load_landing(
    landing_dir: Path,
    warehouse: Path,
    *,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    batch_segments: int = DEFAULT_BATCH_SEGMENTS,
    verify_checksums: bool = False,
    on_batch: Callable[[LoadResult], None] | None = None,
) -> LoadResult:
    """Load every sealed, not yet loaded segment of ``landing_dir`` into ``warehouse``.

    Segments are grouped into batches of at most ``batch_bytes`` / ``batch_segments``; each batch
    commits in one transaction with its manifest rows. ``verify_checksums`` re-hashes already
    loaded segments even when size and mtime are unchanged. ``on_batch`` is told after each commit.
    Returns what was loaded; raises :class:`ChangedSegmentError` (after loading the rest) when a
    loaded segment changed.
    """
    landing_dir = Path(landing_dir)
    warehouse = Path(warehouse)
    with warehouse_lock(warehouse, on_wait=log.warning), connect(warehouse) as con:
        con.execute(DDL)
        segments = sealed_segments(landing_dir) if landing_dir.is_dir() else []
        new, changed, already = _triage(con, segments, verify_checksums)
        total = LoadResult(segments_already_loaded=already, changed_segments=changed)
        with ThreadPoolExecutor(max_workers=2) as pool:
            for batch in _batches(new, batch_bytes, batch_segments):
                # Hash while DuckDB reads: hashlib releases the GIL on large buffers.
                prints = [pool.submit(fingerprint, s.path) for s in batch]
                loaded = _load_batch(con, landing_dir, batch, prints)
                total = total + loaded
                if on_batch is not None:
                    on_batch(loaded)
    if changed:
        raise ChangedSegmentError(changed, total)
    return total


def _triage(
    con: duckdb.DuckDBPyConnection, segments: list[Segment], verify_checksums: bool
) -> tuple[list[Segment], tuple[str, ...], int]:
    """Split segments into (new, changed since loaded, count already loaded unchanged)."""
    manifest = {
        row[0]: row[1:]
        for row in con.execute(
            "select segment, size_bytes, sha256, mtime_ns from raw.edume_loaded_segments"
        ).fetchall()
    }
    new: list[Segment] = []
    changed: list[str] = []
    already = 0
    for segment in segments:
        recorded = manifest.get(segment.name)
        if recorded is None:
            new.append(segment)
            continue
        size, checksum, mtime_ns = recorded
        quick_same = size == segment.size_bytes and mtime_ns == segment.mtime_ns
        if size != segment.size_bytes or (
            (verify_checksums or not quick_same) and file_sha256(segment.path) != checksum
        ):
            changed.append(segment.name)
        else:
            already += 1
    return new, tuple(changed), already


def _batches(segments: list[Segment], max_bytes: int, max_count: int) -> Iterator[list[Segment]]:
    batch: list[Segment] = []
    size = 0
    for segment in segments:
        if batch and (size + segment.size_bytes > max_bytes or len(batch) >= max_count):
            yield batch
            batch, size = [], 0
        batch.append(segment)
        size += segment.size_bytes
    if batch:
        yield batch


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_sql_str(v) for v in values) + "]"


def _split_lines_in_python(segment: Segment) -> list[tuple[str, int, str, str | None]]:
    """Lines of a segment that is not valid UTF-8: (segment, number, text, decode error or None)."""
    pieces = segment.path.read_bytes().split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    rows = []
    for number, piece in enumerate(pieces, start=1):
        try:
            rows.append((segment.name, number, piece.decode("utf-8"), None))
        except UnicodeDecodeError as exc:
            text = piece.decode("utf-8", errors="backslashreplace")
            rows.append((segment.name, number, text, f"line is not valid UTF-8: {exc.reason}"))
    return rows


def _lines_sql(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, batch: list[Segment], corrupt: set[str]
) -> str:
    """A relation ``(segment, line_number, line, pre_error)`` over every line of ``batch``.

    UTF-8 segments are read and split by DuckDB; the ``corrupt`` ones (not UTF-8) are split in
    Python into a temp table first, so that their good lines still load.
    """
    parts = []
    readable = [s for s in batch if s.name not in corrupt]
    if readable:
        prefix_len = len(str(landing_dir.resolve())) + 2  # 1-based, and skip the separator
        files = _sql_list(str(s.path.resolve()) for s in readable)
        parts.append(
            f"""
            select segment, line_number, line, null::varchar as pre_error
            from (
                select segment, unnest(lines) as line,
                       generate_subscripts(lines, 1) as line_number, len(lines) as n
                from (
                    select substr(filename, {prefix_len}) as segment,
                           string_split(content, chr(10)) as lines
                    from read_text({files})
                )
            )
            where not (line_number = n and line = '')  -- the newline that ends the last line
            """
        )
    if corrupt:
        con.execute(
            "create or replace temp table _corrupt_lines "
            "(segment varchar, line_number bigint, line varchar, pre_error varchar)"
        )
        for segment in batch:
            if segment.name in corrupt:
                log.warning(
                    "segment %s is not valid UTF-8: splitting it line by line", segment.name
                )
                con.executemany(
                    "insert into _corrupt_lines values (?, ?, ?, ?)",
                    _split_lines_in_python(segment),
                )
        parts.append("select * from _corrupt_lines")
    return " union all ".join(parts)


# One pass over the lines: one JSON parse of the envelope, one of the body (type and timestamp,
# and its validity). The error column holds the first failed check; good rows carry no line text.
_PARSE_SQL = """
with lines as ({lines}),
fields as (
    select *,
        case when pre_error is null then try(json_extract(line, [
            '$.received_at', '$.delivery_id', '$.auth_mode', '$.signature_form',
            '$.secret_index', '$.token_index', '$.body'])) end as f
    from lines
),
typed as (
    select segment, line_number, line, pre_error, f,
        try_strptime(f[1] ->> '$', '%Y-%m-%dT%H:%M:%S.%fZ') as received_at,
        f[2] ->> '$' as delivery_id,
        f[3] ->> '$' as auth_mode,
        f[4] ->> '$' as signature_form,
        try_cast(f[5] ->> '$' as integer) as secret_index,
        try_cast(f[6] ->> '$' as integer) as token_index,
        case when left(f[7], 1) = '"' then f[7] ->> '$' end as body
    from fields
),
with_body as (
    select *, try(json_extract(body, ['$.type', '$.timestamp'])) as b from typed
),
checked as (
    select *,
        case
            when pre_error is not null then pre_error
            when line = '' then 'empty line'
            when f is null then 'line is not valid JSON'
            when left(ltrim(line), 1) <> '{{'
                then 'line is a JSON ' || lower(json_type(line)) || ', not an object'
            when received_at is null
                then 'received_at is missing or not a timestamp like 2026-01-31T12:00:00.000000Z'
            when delivery_id is null or not regexp_full_match(delivery_id, '[0-9a-f]{{64}}')
                then 'delivery_id is missing or not 64 lower-case hex digits'
            when auth_mode is null or auth_mode not in {auth_modes}
                then 'auth_mode is missing or not one of {auth_modes_text}'
            when f[4] is null or (f[4] <> 'null' and signature_form not in {forms})
                then 'signature_form is missing or not one of {forms_text}, null'
            when f[5] is null or (f[5] <> 'null' and (secret_index is null or left(f[5], 1) = '"'))
                then 'secret_index is missing or not an integer or null'
            when f[6] is null or (f[6] <> 'null' and (token_index is null or left(f[6], 1) = '"'))
                then 'token_index is missing or not an integer or null'
            when body is null then 'body is missing or not a JSON string'
            when b is null then 'body is not valid JSON'
            when sha256(body) <> delivery_id
                then 'delivery_id does not match the SHA-256 of the body'
        end as error
    from with_body
)
select segment, line_number, received_at, delivery_id, auth_mode,
    case when f[4] <> 'null' then signature_form end as signature_form,
    secret_index, token_index,
    case when left(b[1], 1) = '"' then b[1] ->> '$' end as event_type,
    case when left(b[2], 1) = '"'
        then try_cast(b[2] ->> '$' as timestamptz)::timestamp end as event_timestamp,
    body, error,
    case when error is not null then line end as line
from checked
"""

_INSERT_EVENTS_SQL = """
insert into raw.edume_events
select delivery_id, received_at, auth_mode, signature_form, secret_index, token_index,
    event_type, event_timestamp, body, segment, line_number, $loaded_at
from ({parsed}) where error is null
"""

_INSERT_REJECTS_SQL = """
insert into raw.edume_rejected_lines
select segment, line_number, error, line, $loaded_at from ({parsed}) where error is not null
"""

_INSERT_MANIFEST_SQL = "insert into raw.edume_loaded_segments values (?, ?, ?, ?, ?, ?, ?)"


def _parse_sql(lines_sql: str) -> str:
    return _PARSE_SQL.format(
        lines=lines_sql,
        auth_modes=repr(tuple(AUTH_MODES)),
        auth_modes_text=", ".join(AUTH_MODES),
        forms=repr(tuple(SIGNATURE_FORMS)),
        forms_text=", ".join(SIGNATURE_FORMS),
    )


def _counts(
    con: duckdb.DuckDBPyConnection, table: str, loaded_at: object, names: list[str]
) -> dict[str, int]:
    """Rows per segment that this batch (``loaded_at``, segments ``names``) put in ``table``."""
    return dict(
        con.execute(
            f"select segment, count(*) from {table} "
            "where loaded_at = $loaded_at and segment in (select unnest($names)) group by segment",
            {"loaded_at": loaded_at, "names": names},
        ).fetchall()
    )


def _load_batch(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    batch: list[Segment],
    prints: list[Future[Fingerprint]],
) -> LoadResult:
    """Load one batch of new segments and their manifest rows in one transaction.

    One pass inserts the good lines. Only segments whose loaded rows fall short of their line
    count (counted while hashing) are parsed again for their rejects. ``prints`` are computed
    meanwhile; DuckDB assumes UTF-8 and, when a segment is not, the batch restarts with those
    segments split in Python.
    """
    corrupt: set[str] = set()
    while True:
        con.execute("begin transaction")
        try:
            loaded_at = con.execute("select now()::timestamp").fetchone()[0]
            lines_sql = _lines_sql(con, landing_dir, batch, corrupt)
            con.execute(
                _INSERT_EVENTS_SQL.format(parsed=_parse_sql(lines_sql)), {"loaded_at": loaded_at}
            )
            break
        except duckdb.InvalidInputException as exc:
            con.execute("rollback")
            if "UTF-8" not in str(exc) or corrupt:
                raise
            corrupt = {s.name for s, p in zip(batch, prints, strict=True) if not p.result().is_utf8}
            if not corrupt:
                raise
        except BaseException:
            con.execute("rollback")
            raise
    try:
        names = [s.name for s in batch]
        good = _counts(con, "raw.edume_events", loaded_at, names)
        short = [
            s for s, p in zip(batch, prints, strict=True) if good.get(s.name, 0) < p.result().lines
        ]
        bad: dict[str, int] = {}
        if short:
            rejects_sql = _parse_sql(_lines_sql(con, landing_dir, short, corrupt))
            con.execute(_INSERT_REJECTS_SQL.format(parsed=rejects_sql), {"loaded_at": loaded_at})
            bad = _counts(con, "raw.edume_rejected_lines", loaded_at, [s.name for s in short])
        manifest_rows = [
            (
                s.name,
                s.size_bytes,
                p.result().sha256,
                s.mtime_ns,
                good.get(s.name, 0),
                bad.get(s.name, 0),
                loaded_at,
            )
            for s, p in zip(batch, prints, strict=True)
        ]
        con.executemany(_INSERT_MANIFEST_SQL, manifest_rows)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    rows_loaded = sum(good.values())
    rows_rejected = sum(bad.values())
    if rows_rejected:
        log.warning("%d line(s) rejected into raw.edume_rejected_lines", rows_rejected)
    return LoadResult(
        segments_loaded=len(batch), rows_loaded=rows_loaded, rows_rejected=rows_rejected
    )


def main() -> None:
    """``python -m pipeline.loader.ndjson``: load EDUME_LANDING_DIR into EDUME_WAREHOUSE."""
    from pipeline.settings import load_settings

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = load_settings()
    print(load_landing(settings.landing_dir, settings.warehouse), flush=True)


if __name__ == "__main__":
    main()
