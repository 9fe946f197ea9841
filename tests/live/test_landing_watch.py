"""The landing watch: every newly sealed segment once, in any partition, never an open one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.synthetic import event_body, landed_lines, write_segment
from pipeline.loader.landing_watch import Cursor, new_segments
from pipeline.receiver.landing_format import OPEN_SUFFIX

OLD_DAY = datetime(2026, 1, 5, tzinfo=UTC)
NEW_DAY = datetime(2026, 11, 30, tzinfo=UTC)


def seal(landing: Path, name: str, day: datetime = NEW_DAY) -> str:
    path = write_segment(landing, name, landed_lines([event_body(len(name))]), received_at=day)
    return path.relative_to(landing).as_posix()


def test_each_sealed_segment_is_reported_once(tmp_path: Path) -> None:
    first = seal(tmp_path, "a")
    found, cursor = new_segments(tmp_path, Cursor())
    again, cursor = new_segments(tmp_path, cursor)
    second = seal(tmp_path, "b")
    later, _ = new_segments(tmp_path, cursor)

    assert found == [first]
    assert again == []
    assert later == [second]


def test_a_segment_sealed_in_an_old_partition_is_found(tmp_path: Path) -> None:
    seal(tmp_path, "today")
    seal(tmp_path, "long-ago", OLD_DAY)
    _, cursor = new_segments(tmp_path, Cursor())

    late = seal(tmp_path, "late-for-an-old-day", OLD_DAY)

    assert new_segments(tmp_path, cursor)[0] == [late]


def test_the_cursor_survives_a_round_trip_through_text(tmp_path: Path) -> None:
    seal(tmp_path, "a")
    _, cursor = new_segments(tmp_path, Cursor())

    assert Cursor.parse(cursor.dump()) == cursor
    assert new_segments(tmp_path, Cursor.parse(cursor.dump()))[0] == []


def test_open_segments_and_a_missing_landing_dir_report_nothing(tmp_path: Path) -> None:
    partition = tmp_path / "received_date=2026-11-01"
    partition.mkdir()
    (partition / f"x{OPEN_SUFFIX}").write_bytes(b"{}\n")

    assert new_segments(tmp_path, Cursor())[0] == []
    assert new_segments(tmp_path / "absent", Cursor())[0] == []
