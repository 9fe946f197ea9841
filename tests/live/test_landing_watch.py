"""The landing watch: every newly sealed segment once, in any partition, never an open one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.synthetic import event_body, landed_lines, write_segment
from pipeline.loader import landing_watch
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


def _count_partition_listings(monkeypatch: pytest.MonkeyPatch, landing: Path) -> list[str]:
    """Records each listing of a partition directory (not of the landing dir itself)."""
    listed: list[str] = []
    scandir = os.scandir

    def counting(path: str) -> Iterator[os.DirEntry[str]]:
        if Path(path) != landing:
            listed.append(Path(path).name)
        return scandir(path)

    monkeypatch.setattr(landing_watch.os, "scandir", counting)
    return listed


def test_a_settled_partition_is_not_listed_again_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(landing_watch, "SETTLED_AFTER_NS", 0)  # every listing counts as settled
    first = seal(tmp_path, "a")
    listed = _count_partition_listings(monkeypatch, tmp_path)
    found, cursor = new_segments(tmp_path, Cursor())
    assert (found, len(listed)) == ([first], 1)

    assert new_segments(tmp_path, cursor)[0] == []
    assert len(listed) == 1  # the partition holding the newest segment was not listed again

    second = seal(tmp_path, "b")
    assert new_segments(tmp_path, cursor)[0] == [second]
    assert len(listed) == 2


def test_a_partition_changed_just_before_a_look_is_listed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A change in the same clock tick as a listing may leave the directory's mtime unmoved: a
    # listing that came within SETTLED_AFTER_NS of the change is not trusted to have seen it all.
    seal(tmp_path, "a")
    listed = _count_partition_listings(monkeypatch, tmp_path)
    _, cursor = new_segments(tmp_path, Cursor())
    new_segments(tmp_path, cursor)
    assert len(listed) == 2
