"""The loader: sealed segments -> raw.edume_events, exactly once, bad lines quarantined."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pytest

from bench.synthetic import as_format_2, event_body, landed_lines, write_backlog, write_segment
from pipeline.loader import ndjson
from pipeline.loader.ndjson import ChangedSegmentError, load_landing
from pipeline.receiver.landing_format import (
    OPEN_SUFFIX,
    REJECTS_DIR,
    Authentication,
    Envelope,
    body_shape,
    delivery_id,
    format_line,
    parse_body,
)


def line_of(body: bytes) -> bytes:
    return next(landed_lines([body]))


def rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "edume.duckdb"


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


def test_reloading_the_same_landing_loads_nothing_new(landing: Path, warehouse: Path) -> None:
    write_backlog(landing, events=250, per_segment=100)

    first = load_landing(landing, warehouse)
    second = load_landing(landing, warehouse)

    assert (first.segments_loaded, first.rows_loaded) == (3, 250)
    assert (second.segments_loaded, second.rows_loaded, second.segments_already_loaded) == (0, 0, 3)
    assert rows(warehouse, "select count(*) from raw.edume_events") == [(250,)]


def test_rows_keep_envelope_body_and_position_losslessly(landing: Path, warehouse: Path) -> None:
    body = (
        '{"type":"course.added","payload":{"title":"Café ☕ \\"x\\""},'
        '"timestamp":"2023-05-31T11:42:57.633Z"}'
    )
    write_segment(landing, "one", [line_of(event_body(1)), line_of(body.encode())])

    load_landing(landing, warehouse)

    (row,) = rows(
        warehouse,
        "select delivery_id, auth_mode, signature_form, secret_index, token_index, event_type, "
        "strftime(event_timestamp, '%Y-%m-%d %H:%M:%S.%g'), body::varchar, segment, line_number "
        "from raw.edume_events where line_number = 2",
    )
    assert row == (
        delivery_id(body.encode()),
        "hmac",
        "raw",
        0,
        None,
        "course.added",
        "2023-05-31 11:42:57.633",
        body,
        "received_date=2026-11-01/one.ndjson",
        2,
    )


def test_corrupt_and_torn_lines_are_quarantined_while_neighbours_load(
    landing: Path, warehouse: Path
) -> None:
    good = [line_of(event_body(i)) for i in range(4)]
    tampered = line_of(event_body(99)).replace(b"learner.activity", b"learner.ACTIVITY")
    write_segment(
        landing,
        "mixed",
        [
            good[0],
            b"this is not json\n",
            good[1],
            good[2][: len(good[2]) // 2] + b"\n",  # a torn line
            b"\xff\xfe not utf-8\n",
            tampered,  # delivery_id no longer matches the body
            b'{"received_at": "2026-11-01T00:00:00.000000Z"}\n',  # no envelope
            good[3],
        ],
    )

    result = load_landing(landing, warehouse)

    assert (result.rows_loaded, result.rows_rejected) == (3, 5)
    assert rows(warehouse, "select line_number from raw.edume_events order by 1") == [
        (1,),
        (3,),
        (8,),
    ]
    rejected = dict(
        rows(warehouse, "select line_number, error from raw.edume_rejected_lines order by 1")
    )
    assert rejected == {
        2: "line is not valid JSON",
        4: "line is not valid JSON",
        5: "line is not valid UTF-8: invalid start byte",
        6: "delivery_id does not match the SHA-256 of the body",
        7: "delivery_id is missing or not 64 lower-case hex digits",
    }
    assert rows(warehouse, "select line from raw.edume_rejected_lines where line_number = 2") == [
        ("this is not json",)
    ]
    assert rows(warehouse, "select rows_loaded, rows_rejected from raw.edume_loaded_segments") == [
        (3, 5)
    ]


def test_body_without_a_known_type_loads_with_null_event_type(
    landing: Path, warehouse: Path
) -> None:
    write_segment(
        landing,
        "drift",
        [line_of(b'{"payload":{}}'), line_of(b'{"type":7,"timestamp":"yesterday"}')],
    )

    result = load_landing(landing, warehouse)

    assert (result.rows_rejected, result.segments_line_by_line) == (0, 0)  # all on the fast path
    assert rows(
        warehouse, "select event_type, event_timestamp from raw.edume_events order by line_number"
    ) == [(None, None), (None, None)]


def test_segment_changed_after_loading_is_refused_and_the_rest_loads(
    landing: Path, warehouse: Path
) -> None:
    first, _ = write_backlog(landing, events=20, per_segment=10)
    load_landing(landing, warehouse)
    with open(first, "ab") as handle:  # someone appends to a sealed, loaded segment
        handle.write(line_of(event_body(1000)))
    write_backlog(landing, events=10, per_segment=10, first_index=500, prefix="later")

    with pytest.raises(ChangedSegmentError, match=r"seg-000000000000\.ndjson") as raised:
        load_landing(landing, warehouse)

    assert raised.value.result.rows_loaded == 10  # the new segment still loaded
    assert rows(warehouse, "select count(*) from raw.edume_events") == [(30,)]


def test_segment_rewritten_with_the_same_size_is_refused(landing: Path, warehouse: Path) -> None:
    (segment,) = write_backlog(landing, events=3, per_segment=3)
    load_landing(landing, warehouse)
    data = segment.read_bytes()
    segment.write_bytes(data.replace(b"ext-1", b"ext-9"))  # same size, new mtime

    with pytest.raises(ChangedSegmentError):
        load_landing(landing, warehouse)


def test_backlog_over_many_segments_loads_completely_in_small_batches(
    landing: Path, warehouse: Path
) -> None:
    write_backlog(landing, events=3000, per_segment=20)
    batches = []

    result = load_landing(landing, warehouse, batch_segments=7, on_batch=batches.append)

    assert (result.segments_loaded, result.rows_loaded) == (150, 3000)
    assert len(batches) == 22  # ceil(150 / 7): each batch its own transaction
    assert rows(
        warehouse,
        "select count(*), count(distinct delivery_id), count(distinct (segment, line_number)) "
        "from raw.edume_events",
    ) == [(3000, 3000, 3000)]


def test_open_segments_and_rejects_are_never_read(landing: Path, warehouse: Path) -> None:
    sealed = write_segment(landing, "sealed", [line_of(event_body(1))])
    sealed.with_name("appending" + OPEN_SUFFIX).write_bytes(line_of(event_body(2)))
    (landing / REJECTS_DIR).mkdir()
    (landing / REJECTS_DIR / "torn.ndjson").write_bytes(b'{"received_at": "2026-')

    result = load_landing(landing, warehouse)

    assert (result.segments_loaded, result.rows_loaded, result.rows_rejected) == (1, 1, 0)


def test_a_failed_batch_commits_neither_rows_nor_manifest(
    landing: Path, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_backlog(landing, events=10, per_segment=5)
    monkeypatch.setattr(ndjson, "_INSERT_MANIFEST_SQL", "insert into no_such_table values (?)")

    with pytest.raises(duckdb.Error):
        load_landing(landing, warehouse)
    monkeypatch.undo()

    assert rows(warehouse, "select count(*) from raw.edume_events") == [(0,)]
    assert rows(warehouse, "select count(*) from raw.edume_loaded_segments") == [(0,)]
    assert load_landing(landing, warehouse).rows_loaded == 10


def test_empty_or_missing_landing_loads_nothing(tmp_path: Path, warehouse: Path) -> None:
    result = load_landing(tmp_path / "nowhere", warehouse)

    assert result.segments_loaded == 0
    assert rows(warehouse, "select count(*) from raw.edume_events") == [(0,)]


def _numbered_lines(segment_id: int, count: int, chance: random.Random) -> list[bytes]:
    """Lines whose body says which segment and line they are, padded to very different sizes."""
    lines = []
    for number in range(1, count + 1):
        pad = "x" * chance.choice([0, 10, 300, 5_000, 60_000])
        body = f'{{"type":"t","segment":{segment_id},"line":{number},"pad":"{pad}"}}'
        lines.append(line_of(body.encode()))
    return lines


def test_every_row_carries_its_own_line_number_across_parallel_scans(
    landing: Path, warehouse: Path
) -> None:
    # The fast path numbers lines with WITH ORDINALITY over several files per scan and several
    # scans at once; a lost order or a wrong offset would put a body beside another line's number.
    chance = random.Random(7)
    for segment_id in range(60):
        lines = _numbered_lines(segment_id, chance.randrange(1, 120), chance)
        write_segment(landing, f"s{segment_id:03d}", lines)

    result = load_landing(landing, warehouse)

    assert (result.rows_rejected, result.segments_line_by_line) == (0, 0)  # all on the fast path
    assert rows(
        warehouse,
        "select count(*), count(*) filter (where line_number = (body ->> '$.line')::bigint "
        "and segment = format('received_date=2026-11-01/s{:03d}.ndjson', "
        "(body ->> '$.segment')::int)) from raw.edume_events",
    ) == [(result.rows_loaded, result.rows_loaded)]


def test_a_blank_line_is_rejected_and_the_segments_scanned_after_it_keep_their_numbers(
    landing: Path, warehouse: Path
) -> None:
    # DuckDB's NDJSON reader skips blank lines, which would shift the numbers of every later row
    # of the same scan; such a segment must go line by line and its neighbours stay exact.
    chance = random.Random(11)
    first = _numbered_lines(0, 5, chance)
    write_segment(landing, "a-first", [*first[:2], b"\n", *first[2:]])
    for segment_id in range(1, 6):
        write_segment(landing, f"b-{segment_id}", _numbered_lines(segment_id, 7, chance))

    result = load_landing(landing, warehouse)

    assert (result.rows_loaded, result.rows_rejected) == (5 + 5 * 7, 1)
    assert 1 <= result.segments_line_by_line < 6  # it, and those numbered after it in its scan
    assert rows(warehouse, "select segment, line_number, error from raw.edume_rejected_lines") == [
        ("received_date=2026-11-01/a-first.ndjson", 3, "empty line")
    ]
    assert rows(
        warehouse,
        "select count(*) from raw.edume_events where line_number <> (body ->> '$.line')::bigint "
        "+ (segment like '%a-first%' and line_number > 3)::int",
    ) == [(0,)]


def test_absent_nullable_envelope_fields_load_as_null_on_both_paths(
    landing: Path, warehouse: Path
) -> None:
    # Decision: an absent signature_form/secret_index/token_index means null, whichever path
    # (DuckDB's NDJSON reader cannot tell absent from null) loads the segment.
    body = event_body(5)
    bare = (
        b'{"received_at":"2026-11-01T00:00:00.000000Z","delivery_id":"'
        + delivery_id(body).encode()
        + b'","auth_mode":"bearer","body":'
        + orjson.dumps(body.decode())
        + b"}\n"
    )
    write_segment(landing, "fast", [bare])
    write_segment(landing, "slow", [bare, b"not json\n"])

    result = load_landing(landing, warehouse)

    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    assert rows(
        warehouse,
        "select segment, signature_form, secret_index, token_index, content_type, "
        "content_encoding, user_agent from raw.edume_events order by segment",
    ) == [
        ("received_date=2026-11-01/fast.ndjson", None, None, None, None, None, None),
        ("received_date=2026-11-01/slow.ndjson", None, None, None, None, None, None),
    ]


def _current_line(n: int) -> bytes:
    """A line as the receiver writes it today: format 3, with the request's headers and the name
    of the body's shape."""
    envelope = Envelope("text/plain; charset=utf-8", "gzip", f'eduMe/{n} "quoted" \xff')
    auth = Authentication("hmac", "raw", 0, None)
    return format_line(event_body(n), auth, datetime(2026, 11, 1, tzinfo=UTC), envelope)


def _format_2_line(n: int) -> bytes:
    """A line as the receiver wrote it before landing format 3: no ``body_shape``."""
    return as_format_2(_current_line(n))


@pytest.mark.parametrize("named", [True, False], ids=["format-3", "format-2"])
def test_request_headers_and_body_shape_load_on_both_paths(
    landing: Path, warehouse: Path, named: bool
) -> None:
    line = _current_line if named else _format_2_line  # format 2: no body_shape, loads as null
    write_segment(landing, "fast", [line(1)])
    fast = load_landing(landing, warehouse)
    write_segment(landing, "slow", [line(2), b"not json\n"])
    slow = load_landing(landing, warehouse)

    assert (fast.rows_loaded, fast.segments_line_by_line) == (1, 0)
    assert (slow.rows_loaded, slow.rows_rejected, slow.segments_line_by_line) == (1, 1, 1)
    shape = body_shape(parse_body(event_body(1)))
    assert shape == body_shape(parse_body(event_body(2)))  # same keys and types
    shape = shape if named else None
    assert rows(
        warehouse,
        "select line_number, content_type, content_encoding, user_agent, body_shape "
        "from raw.edume_events order by segment",
    ) == [
        (1, "text/plain; charset=utf-8", "gzip", 'eduMe/1 "quoted" \xff', shape),
        (1, "text/plain; charset=utf-8", "gzip", 'eduMe/2 "quoted" \xff', shape),
    ]


def test_an_old_warehouse_is_upgraded_in_place_and_keeps_its_rows(
    landing: Path, warehouse: Path
) -> None:
    # The warehouse as a loader of landing format 1 left it: no request-header columns.
    old_ddl = ndjson.DDL.split("-- Landing format 2")[0] + ";"
    warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(old_ddl)
        con.execute(
            "insert into raw.edume_events values ('old', '2026-10-01', 'hmac', 'raw', 0, null, "
            "'x', null, '{}', 'received_date=2026-10-01/old.ndjson', 1, '2026-10-01')"
        )
    write_segment(landing, "new", [line_of(event_body(1)), _current_line(2)])

    result = load_landing(landing, warehouse)

    assert result.rows_loaded == 2
    shape = body_shape(parse_body(event_body(2)))
    assert rows(
        warehouse,
        "select delivery_id = 'old', content_type, user_agent, body_shape from raw.edume_events "
        "order by delivery_id = 'old', line_number",
    ) == [
        (False, None, None, shape),
        (False, "text/plain; charset=utf-8", 'eduMe/2 "quoted" \xff', shape),
        (True, None, None, None),
    ]


def test_an_unknown_format_version_or_a_non_string_header_is_rejected(
    landing: Path, warehouse: Path
) -> None:
    good = _current_line(1)
    future = _current_line(2).replace(b'"format_version":3', b'"format_version":4')
    number_type = _current_line(3).replace(
        b'"content_type":"text/plain; charset=utf-8"', b'"content_type":7'
    )
    shape = body_shape(parse_body(event_body(4))).encode()
    number_shape = _current_line(4).replace(b'"body_shape":"' + shape + b'"', b'"body_shape":7')
    assert future != _current_line(2) and b'"content_type":7' in number_type
    assert b'"body_shape":7' in number_shape
    write_segment(landing, "mixed", [good, future, number_type, number_shape])

    result = load_landing(landing, warehouse)

    assert (result.rows_loaded, result.rows_rejected) == (1, 3)
    rejected = rows(warehouse, "select line_number, error from raw.edume_rejected_lines order by 1")
    assert rejected == [
        (2, "format_version is not one of 1, 2, 3 (this loader reads those)"),
        (3, "content_type is not a string or null"),
        (4, "body_shape is not a string or null"),
    ]


def test_a_string_index_or_a_non_string_body_is_rejected_like_on_the_line_by_line_path(
    landing: Path, warehouse: Path
) -> None:
    good = line_of(event_body(1))
    string_index = good.replace(b'"secret_index":0', b'"secret_index":"0"')
    body = event_body(2)
    object_body = (
        b'{"received_at":"2026-11-01T00:00:00.000000Z","delivery_id":"'
        + delivery_id(body).encode()
        + b'","auth_mode":"hmac","signature_form":"raw","secret_index":0,"token_index":null,'
        + b'"body":'
        + body
        + b"}\n"
    )
    write_segment(landing, "only-valid-json", [good, string_index, object_body])

    result = load_landing(landing, warehouse)

    assert (result.rows_loaded, result.rows_rejected) == (1, 2)
    rejected = rows(warehouse, "select line_number, error from raw.edume_rejected_lines order by 1")
    assert rejected == [
        (2, "secret_index is not an integer or null"),
        (3, "body is missing or not a JSON string"),
    ]
