"""The raw hand-off to Spark: raw.edume_events of a real DuckDB file, loaded by the real loader,
exported as parquet partitioned by receive date, and read back with DuckDB's parquet reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from bench.synthetic import event_body, landed_lines, write_segment
from pipeline.loader.handoff import (
    DATA_FILE,
    export_handoff,
    hand_off,
    handoff_dir,
    spark_dir,
)
from pipeline.loader.ndjson import load_landing

DAY_1 = datetime(2026, 11, 1, 23, 59, 59, 999_999, tzinfo=UTC)  # its 2nd line is on Nov 2
DAY_2 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
DAY_3 = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)


def _land(landing: Path, segment_id: str, first: int, count: int, received_at: datetime) -> None:
    bodies = (event_body(index) for index in range(first, first + count))
    write_segment(landing, segment_id, landed_lines(bodies, received_at), received_at=received_at)


def _read(destination: Path, where: str = "true") -> list[tuple]:
    with duckdb.connect() as connection:
        connection.execute("set TimeZone = 'UTC'")
        return connection.execute(
            "select received_date, delivery_id, received_at, body "
            f"from read_parquet('{destination}/*/*.parquet', hive_partitioning = true) "
            f"where {where} order by received_at"
        ).fetchall()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "edume.duckdb"


def test_every_raw_row_lands_in_the_parquet_partition_of_its_receive_date(
    tmp_path: Path, warehouse: Path
) -> None:
    _land(tmp_path / "landing", "a", 0, 3, DAY_1)  # lines 2 and 3 are received after midnight
    _land(tmp_path / "landing", "b", 3, 2, DAY_2)
    load_landing(tmp_path / "landing", warehouse)

    result = export_handoff(warehouse, tmp_path / "handoff")

    rows = _read(tmp_path / "handoff")
    assert result.rows_written == len(rows) == 5
    assert [str(row[0]) for row in rows] == ["2026-11-01"] + ["2026-11-02"] * 4
    assert rows[0][2] == DAY_1  # an instant in UTC, to the microsecond
    assert rows[0][3] == event_body(0).decode()  # the body byte for byte
    assert sorted(p.name for p in (tmp_path / "handoff").iterdir() if p.is_dir()) == [
        "received_date=2026-11-01",
        "received_date=2026-11-02",
    ]


def test_a_second_hand_off_rewrites_only_the_dates_that_received_new_rows(
    tmp_path: Path, warehouse: Path
) -> None:
    _land(tmp_path / "landing", "a", 0, 2, DAY_1 - timedelta(hours=1))
    _land(tmp_path / "landing", "b", 2, 2, DAY_2)
    load_landing(tmp_path / "landing", warehouse)
    export_handoff(warehouse, tmp_path / "handoff")
    untouched = tmp_path / "handoff" / "received_date=2026-11-01" / DATA_FILE
    first_write = untouched.stat().st_mtime_ns

    _land(tmp_path / "landing", "c", 4, 1, DAY_2 + timedelta(hours=1))
    _land(tmp_path / "landing", "d", 5, 1, DAY_3)
    load_landing(tmp_path / "landing", warehouse)
    result = export_handoff(warehouse, tmp_path / "handoff")

    assert (result.full, result.partitions_written) == (False, ("2026-11-02", "2026-11-03"))
    assert untouched.stat().st_mtime_ns == first_write
    assert len(_read(tmp_path / "handoff")) == 6


def test_the_hand_off_is_rewritten_in_full_when_the_warehouse_was_rebuilt(
    tmp_path: Path, warehouse: Path
) -> None:
    _land(tmp_path / "landing", "a", 0, 2, DAY_1)
    load_landing(tmp_path / "landing", warehouse)
    export_handoff(warehouse, tmp_path / "handoff")
    warehouse.unlink()
    _land(tmp_path / "other-landing", "b", 10, 3, DAY_3)
    load_landing(tmp_path / "other-landing", warehouse)

    result = export_handoff(warehouse, tmp_path / "handoff")

    assert (result.full, result.partitions_written) == (True, ("2026-11-03",))
    assert not (tmp_path / "handoff" / "received_date=2026-11-01").exists()
    assert len(_read(tmp_path / "handoff")) == 3


def test_no_hand_off_is_written_for_the_duckdb_engine(tmp_path: Path, warehouse: Path) -> None:
    _land(tmp_path / "landing", "a", 0, 1, DAY_1)
    load_landing(tmp_path / "landing", warehouse)

    assert hand_off("duckdb", warehouse, env={}) is None
    assert not spark_dir(warehouse, env={}).exists()


def test_the_spark_hand_off_goes_beside_the_warehouse_unless_edume_spark_dir_is_set(
    tmp_path: Path, warehouse: Path
) -> None:
    _land(tmp_path / "landing", "a", 0, 1, DAY_1)
    load_landing(tmp_path / "landing", warehouse)

    beside = hand_off("spark", warehouse, env={})
    elsewhere = hand_off("spark", warehouse, env={"EDUME_SPARK_DIR": str(tmp_path / "sp")})

    assert beside is not None and beside.destination == handoff_dir(warehouse.parent / "spark")
    assert elsewhere is not None and elsewhere.destination == handoff_dir(tmp_path / "sp")
    assert len(_read(elsewhere.destination)) == 1


def test_a_hand_off_before_any_load_names_the_missing_warehouse(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="load the landing"):
        export_handoff(tmp_path / "missing.duckdb", tmp_path / "handoff")
