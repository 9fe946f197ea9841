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
- The parsing is DuckDB's, batch by batch, so a backlog of millions of lines loads in bounded
  memory. Fast path: DuckDB's own NDJSON reader (``read_json`` with the envelope's columns given,
  nothing sampled), ``WITH ORDINALITY`` for the line numbers, one scan per DuckDB thread over
  its share of the batch's segments, the scans in one ``UNION ALL`` so that they run in parallel.
  A segment for which that path cannot vouch (the reader raised, or its good rows are not
  numbered exactly 1..its line count) is loaded line by line instead: ``read_text`` + DuckDB's
  JSON functions, which name the error of every bad line. A segment that is not valid UTF-8
  (corruption) is split in Python so that its good lines still load. Both paths accept and
  refuse exactly the same lines with the same values; an absent ``signature_form``,
  ``secret_index``, ``token_index``, ``content_type``, ``content_encoding``, ``user_agent`` or
  ``body_shape`` reads as null in both.
- Every landing format version in ``FORMAT_VERSIONS`` loads (a version 1 line, without the
  request headers, loads with them null; a version 1 or 2 line, without ``body_shape``, with it
  null); a line of any other ``format_version`` is rejected.
- An existing warehouse is upgraded in place: the DDL adds the columns a newer format brought
  (``alter table ... add column if not exists``), so they sit after ``loaded_at``; every insert
  names its columns.

The caller needs no lock: the load runs inside :func:`pipeline.warehouse_lock.warehouse_lock`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipeline.receiver.landing_format import (
    AUTH_MODES,
    FORMAT_VERSIONS,
    SEALED_GLOB,
    SIGNATURE_FORMS,
)
from pipeline.warehouse_lock import warehouse_lock

log = logging.getLogger(__name__)

DEFAULT_BATCH_BYTES = 256 * 1024 * 1024  # ~460k typical lines: whole row groups per stream
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
-- Landing format 2: the request's headers, as sent (null when absent, and for format 1 lines).
alter table raw.edume_events add column if not exists content_type varchar;
alter table raw.edume_events add column if not exists content_encoding varchar;
alter table raw.edume_events add column if not exists user_agent varchar;
-- Landing format 3: the receiver's name for the body's shape (null for older lines).
alter table raw.edume_events add column if not exists body_shape varchar;
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
    segments_line_by_line: int = 0  # loaded by the slower path that names each bad line's error

    def __add__(self, other: LoadResult) -> LoadResult:
        return LoadResult(
            self.segments_loaded + other.segments_loaded,
            self.rows_loaded + other.rows_loaded,
            self.rows_rejected + other.rows_rejected,
            self.segments_already_loaded + other.segments_already_loaded,
            self.changed_segments + other.changed_segments,
            self.segments_line_by_line + other.segments_line_by_line,
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
    lines: int  # as the loader splits them: on newlines, the final newline ending the last line


def fingerprint(path: Path) -> Fingerprint:
    """Checksum and line count of a segment, from one read of it."""
    data = path.read_bytes()
    checksum = hashlib.sha256(data).hexdigest()
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    return Fingerprint(checksum, lines)


def is_utf8(path: Path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


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
        # Rows carry their segment and line number, so the table's physical order means nothing;
        # an order-preserving insert would funnel every parallel scan through one thread.
        con.execute("set preserve_insertion_order = false")
        segments = sealed_segments(landing_dir) if landing_dir.is_dir() else []
        new, changed, already = _triage(con, segments, verify_checksums)
        total = LoadResult(segments_already_loaded=already, changed_segments=changed)
        batches = list(_batches(new, batch_bytes, batch_segments))
        with ThreadPoolExecutor(max_workers=2) as pool:
            # Fingerprint one batch ahead, while DuckDB loads the one before (hashlib releases
            # the GIL on large buffers): the load needs the line counts before it starts.
            ahead = [pool.submit(fingerprint, s.path) for s in batches[0]] if batches else []
            for index, batch in enumerate(batches):
                prints = ahead
                if index + 1 < len(batches):
                    ahead = [pool.submit(fingerprint, s.path) for s in batches[index + 1]]
                loaded = _load_batch(con, batch, prints)
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


RECEIVED_AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# The envelope as DuckDB's NDJSON reader reads it: these columns, nothing sampled or inferred.
# The nullable fields and the body stay JSON so that their JSON types are checked exactly as the
# line-by-line path checks them (the body must be a JSON string, an index an integer).
_ENVELOPE_COLUMNS = (
    "{'received_at': 'VARCHAR', 'delivery_id': 'VARCHAR', 'auth_mode': 'VARCHAR', "
    "'signature_form': 'JSON', 'secret_index': 'JSON', 'token_index': 'JSON', "
    "'content_type': 'JSON', 'content_encoding': 'JSON', 'user_agent': 'JSON', "
    "'format_version': 'JSON', 'body_shape': 'JSON', 'body': 'JSON'}"
)

# Both paths insert these columns, in this order (the table's order depends on its history).
_EVENT_COLUMNS = (
    "delivery_id, received_at, auth_mode, signature_form, secret_index, token_index, "
    "event_type, event_timestamp, body, segment, line_number, loaded_at, "
    "content_type, content_encoding, user_agent, body_shape"
)

# A JSON string or null, as text (``j`` a JSON value, SQL NULL when the key is absent).
_HEADER_SQL = "case when left({j}, 1) = '\"' then {j} ->> '$' end"

# Shared by both paths: ``b`` is ``json_extract(body, ['$.type', '$.timestamp'])``.
_EVENT_TYPE_SQL = "case when left(b[1], 1) = '\"' then b[1] ->> '$' end"
_EVENT_TIMESTAMP_SQL = (
    "case when left(b[2], 1) = '\"' then try_cast(b[2] ->> '$' as timestamptz)::timestamp end"
)


def _scan_sql(segments: list[Segment], lines: list[int]) -> str:
    """``segments``, in order, through DuckDB's NDJSON reader, each row with its line number.

    ``WITH ORDINALITY`` is a streaming ``row_number()``: DuckDB runs its pipeline on one thread in
    file order (a FIXED_ORDER operator), so it counts the rows of the files one after the other.
    Subtracting the lines of the files before (``lines``, counted in Python) gives the line number
    as long as the reader yields one row per line. It skips blank lines (and raises on anything
    else that is not one object), which shifts the numbers; the caller therefore keeps a segment
    only when its rows are numbered exactly 1..its line count.
    """
    starts = [0]
    for count in lines[:-1]:
        starts.append(starts[-1] + count)
    names = "[" + ", ".join(_sql_str(s.name) for s in segments) + "]"
    paths = "[" + ", ".join(_sql_str(str(s.path)) for s in segments) + "]"
    return (
        f"select {names}[file_index::bigint + 1] as segment, "
        f"ordinality - {starts}[file_index::bigint + 1] as line_number, * exclude (ordinality) "
        f"from read_json({paths}, format = 'newline_delimited', records = true, "
        f"columns = {_ENVELOPE_COLUMNS}, hive_partitioning = false) with ordinality"
    )


def _scans_sql(segments: list[Segment], lines: list[int], streams: int) -> str:
    """``segments`` split into ``streams`` scans of similar size, in a UNION ALL.

    Each scan runs on one thread (see :func:`_scan_sql`); the UNION ALL lets ``streams`` of them
    run at once. Few streams of many rows each, rather than one per segment, because every
    stream's insert builds its own row groups and small ones are costly to merge.
    """
    groups: list[list[int]] = [[] for _ in range(max(1, min(streams, len(segments))))]
    sizes = [0] * len(groups)
    for index in sorted(range(len(segments)), key=lambda i: -segments[i].size_bytes):
        smallest = sizes.index(min(sizes))
        groups[smallest].append(index)
        sizes[smallest] += segments[index].size_bytes
    return " union all ".join(
        _scan_sql([segments[i] for i in sorted(g)], [lines[i] for i in sorted(g)])
        for g in groups
        if g
    )


# The fast path: only lines that the line-by-line path would load, with the same values. A line
# failing any check is simply not inserted; its segment then falls short and goes line by line.
_FAST_INSERT_SQL = """
insert into raw.edume_events ({columns})
with scanned as ({scans}),
typed as (
    select segment, line_number,
        try_strptime(received_at, '{received_at_format}') as received_at,
        delivery_id, auth_mode, signature_form as sf, secret_index as si, token_index as ti,
        content_type as ct, content_encoding as ce, user_agent as ua, format_version as fv,
        body_shape as bs,
        case when left(body, 1) = '"' then body ->> '$' end as body
    from scanned
),
checked as (
    select *,
        try(json_extract(body, ['$.type', '$.timestamp'])) as b,
        sf ->> '$' as signature_form,
        try_cast(si ->> '$' as integer) as secret_index,
        try_cast(ti ->> '$' as integer) as token_index
    from typed
)
select delivery_id, received_at, auth_mode, signature_form, secret_index, token_index,
    {event_type} as event_type, {event_timestamp} as event_timestamp,
    body, segment, line_number, $loaded_at,
    {content_type_fast}, {content_encoding_fast}, {user_agent_fast}, {body_shape_fast}
from checked
where received_at is not null
    and auth_mode in {auth_modes}
    and (sf is null or signature_form in {forms})
    and (si is null or (secret_index is not null and left(si, 1) <> '"'))
    and (ti is null or (token_index is not null and left(ti, 1) <> '"'))
    and (ct is null or left(ct, 1) = '"')
    and (ce is null or left(ce, 1) = '"')
    and (ua is null or left(ua, 1) = '"')
    and (bs is null or left(bs, 1) = '"')
    and (fv is null or fv::varchar in {versions})
    and b is not null
    and sha256(body) = delivery_id  -- which also makes delivery_id 64 lower-case hex digits
"""


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


def _text_lines_sql(segment: Segment) -> str:
    """``(segment, line_number, line, pre_error)`` for a UTF-8 segment, split by DuckDB."""
    return f"""
        select {_sql_str(segment.name)} as segment, line_number, line, null::varchar as pre_error
        from (
            select unnest(lines) as line, generate_subscripts(lines, 1) as line_number,
                   len(lines) as n
            from (select string_split(content, chr(10)) as lines
                  from read_text({_sql_str(str(segment.path))}))
        )
        where not (line_number = n and line = '')  -- the newline that ends the last line
        """


def _lines_sql(con: duckdb.DuckDBPyConnection, segments: list[Segment]) -> str:
    """A relation ``(segment, line_number, line, pre_error)`` over every line of ``segments``.

    UTF-8 segments are read and split by DuckDB, one ``read_text`` per segment in a UNION ALL (a
    single ``read_text`` scan runs on one thread); the others are split in Python into a temp
    table first, so that their good lines still load.
    """
    parts = []
    corrupt = []
    for segment in segments:
        if is_utf8(segment.path):
            parts.append(_text_lines_sql(segment))
        else:
            corrupt.append(segment)
    if corrupt:
        con.execute(
            "create or replace temp table _corrupt_lines "
            "(segment varchar, line_number bigint, line varchar, pre_error varchar)"
        )
        for segment in corrupt:
            log.warning("segment %s is not valid UTF-8: splitting it line by line", segment.name)
            con.executemany(
                "insert into _corrupt_lines values (?, ?, ?, ?)", _split_lines_in_python(segment)
            )
        parts.append("select * from _corrupt_lines")
    return " union all ".join(parts)


# The line-by-line path. One JSON parse of the envelope, one of the body (type and timestamp, and
# its validity). The error column holds the first failed check; good rows carry no line text.
_PARSE_SQL = """
with lines as ({lines}),
fields as (
    select *,
        case when pre_error is null then try(json_extract(line, [
            '$.received_at', '$.delivery_id', '$.auth_mode', '$.signature_form',
            '$.secret_index', '$.token_index', '$.body', '$.content_type',
            '$.content_encoding', '$.user_agent', '$.format_version', '$.body_shape']))
            end as f
    from lines
),
typed as (
    select segment, line_number, line, pre_error, f,
        try_strptime(f[1] ->> '$', '{received_at_format}') as received_at,
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
            when f[4] <> 'null' and signature_form not in {forms}
                then 'signature_form is not one of {forms_text}, null'
            when f[5] <> 'null' and (secret_index is null or left(f[5], 1) = '"')
                then 'secret_index is not an integer or null'
            when f[6] <> 'null' and (token_index is null or left(f[6], 1) = '"')
                then 'token_index is not an integer or null'
            when f[8] <> 'null' and left(f[8], 1) <> '"'
                then 'content_type is not a string or null'
            when f[9] <> 'null' and left(f[9], 1) <> '"'
                then 'content_encoding is not a string or null'
            when f[10] <> 'null' and left(f[10], 1) <> '"'
                then 'user_agent is not a string or null'
            when f[11] <> 'null' and f[11]::varchar not in {versions}
                then 'format_version is not one of {versions_text} (this loader reads those)'
            when f[12] <> 'null' and left(f[12], 1) <> '"'
                then 'body_shape is not a string or null'
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
    {event_type} as event_type, {event_timestamp} as event_timestamp,
    body, error,
    case when error is not null then line end as line,
    {content_type_slow} as content_type, {content_encoding_slow} as content_encoding,
    {user_agent_slow} as user_agent, {body_shape_slow} as body_shape
from checked
"""

_INSERT_EVENTS_SQL = """
insert into raw.edume_events ({columns})
select delivery_id, received_at, auth_mode, signature_form, secret_index, token_index,
    event_type, event_timestamp, body, segment, line_number, $loaded_at,
    content_type, content_encoding, user_agent, body_shape
from _parsed where error is null
"""

_INSERT_REJECTS_SQL = """
insert into raw.edume_rejected_lines
select segment, line_number, error, line, $loaded_at from _parsed where error is not null
"""

_INSERT_MANIFEST_SQL = "insert into raw.edume_loaded_segments values (?, ?, ?, ?, ?, ?, ?)"


def _sql_params() -> dict[str, str]:
    return {
        "received_at_format": RECEIVED_AT_FORMAT,
        "event_type": _EVENT_TYPE_SQL,
        "event_timestamp": _EVENT_TIMESTAMP_SQL,
        "auth_modes": repr(tuple(AUTH_MODES)),
        "auth_modes_text": ", ".join(AUTH_MODES),
        "forms": repr(tuple(SIGNATURE_FORMS)),
        "forms_text": ", ".join(SIGNATURE_FORMS),
        "versions": repr(tuple(str(v) for v in FORMAT_VERSIONS)),
        "versions_text": ", ".join(map(str, FORMAT_VERSIONS)),
        "columns": _EVENT_COLUMNS,
        **{
            f"{name}_fast": _HEADER_SQL.format(j=short)
            for name, short in (
                ("content_type", "ct"),
                ("content_encoding", "ce"),
                ("user_agent", "ua"),
                ("body_shape", "bs"),
            )
        },
        **{
            f"{name}_slow": _HEADER_SQL.format(j=f"f[{i}]")
            for i, name in [
                *enumerate(("content_type", "content_encoding", "user_agent"), start=8),
                (12, "body_shape"),
            ]
        },
    }


def _counts(
    con: duckdb.DuckDBPyConnection, table: str, loaded_at: object, names: list[str]
) -> dict[str, tuple[int, int]]:
    """(rows, highest line number) per segment that this batch put in ``table``."""
    return {
        segment: (rows, highest)
        for segment, rows, highest in con.execute(
            f"select segment, count(*), max(line_number) from {table} "
            "where loaded_at = $loaded_at and segment in (select unnest($names)) group by segment",
            {"loaded_at": loaded_at, "names": names},
        ).fetchall()
    }


def _load_fast(
    con: duckdb.DuckDBPyConnection,
    batch: list[Segment],
    prints: list[Future[Fingerprint]],
    loaded_at: object,
) -> list[Segment]:
    """Insert ``batch`` through DuckDB's NDJSON reader; return the segments it could not vouch for.

    A segment is vouched for when its rows are numbered exactly 1..lines (every line loaded, one
    row per line); the rows of any other segment are deleted again, inside the transaction, for
    the caller to load line by line. When the reader raises (a line that is not one JSON object,
    invalid UTF-8, a line beyond its size limit), the transaction is rolled back and begun anew and
    the whole batch is returned.
    """
    lines = [p.result().lines for p in prints]
    streams = con.execute("select current_setting('threads')").fetchone()[0]
    sql = _FAST_INSERT_SQL.format(scans=_scans_sql(batch, lines, streams), **_sql_params())
    try:
        con.execute(sql, {"loaded_at": loaded_at})
    except duckdb.InvalidInputException as exc:
        log.info("a batch goes line by line: %s", str(exc).splitlines()[0])
        con.execute("rollback")
        con.execute("begin transaction")
        return batch
    loaded = _counts(con, "raw.edume_events", loaded_at, [s.name for s in batch])
    short = []
    for segment, count in zip(batch, lines, strict=True):
        if loaded.get(segment.name, (0, 0)) != ((count, count) if count else (0, 0)):
            short.append(segment)
    if short:
        con.execute(
            "delete from raw.edume_events "
            "where loaded_at = $loaded_at and segment in (select unnest($names))",
            {"loaded_at": loaded_at, "names": [s.name for s in short]},
        )
    return short


def _load_line_by_line(
    con: duckdb.DuckDBPyConnection, segments: list[Segment], loaded_at: object
) -> None:
    """Insert every good line of ``segments`` and every bad one, with its error, as a reject."""
    parsed = _PARSE_SQL.format(lines=_lines_sql(con, segments), **_sql_params())
    con.execute(f"create or replace temp table _parsed as {parsed}")
    con.execute(_INSERT_EVENTS_SQL.format(columns=_EVENT_COLUMNS), {"loaded_at": loaded_at})
    con.execute(_INSERT_REJECTS_SQL, {"loaded_at": loaded_at})
    con.execute("drop table _parsed")


def _load_batch(
    con: duckdb.DuckDBPyConnection,
    batch: list[Segment],
    prints: list[Future[Fingerprint]],
) -> LoadResult:
    """Load one batch of new segments and their manifest rows in one transaction.

    The fast path loads the segments it can vouch for; the rest go line by line, which also
    quarantines their bad lines. ``prints`` (checksum, line count) are computed meanwhile.
    """
    con.execute("begin transaction")
    try:
        loaded_at = con.execute("select now()::timestamp").fetchone()[0]
        slow = _load_fast(con, batch, prints, loaded_at)
        if slow:
            _load_line_by_line(con, slow, loaded_at)
        names = [s.name for s in batch]
        good = _counts(con, "raw.edume_events", loaded_at, names)
        bad = _counts(con, "raw.edume_rejected_lines", loaded_at, names) if slow else {}
        manifest_rows = [
            (
                s.name,
                s.size_bytes,
                p.result().sha256,
                s.mtime_ns,
                good.get(s.name, (0, 0))[0],
                bad.get(s.name, (0, 0))[0],
                loaded_at,
            )
            for s, p in zip(batch, prints, strict=True)
        ]
        con.executemany(_INSERT_MANIFEST_SQL, manifest_rows)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    rows_loaded = sum(rows for rows, _ in good.values())
    rows_rejected = sum(rows for rows, _ in bad.values())
    if rows_rejected:
        log.warning("%d line(s) rejected into raw.edume_rejected_lines", rows_rejected)
    return LoadResult(
        segments_loaded=len(batch),
        rows_loaded=rows_loaded,
        rows_rejected=rows_rejected,
        segments_line_by_line=len(slow),
    )


def main() -> None:
    """``python -m pipeline.loader.ndjson``: load EDUME_LANDING_DIR into EDUME_WAREHOUSE."""
    from pipeline.settings import load_settings

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = load_settings()
    print(load_landing(settings.landing_dir, settings.warehouse), flush=True)


if __name__ == "__main__":
    main()
