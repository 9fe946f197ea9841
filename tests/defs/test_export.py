"""Exports: each mart as parquet (atomic, BI types) and query.duckdb, readable during writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipeline.export import export_marts
from pipeline.settings import REPO_ROOT

HOLD_WRITE_CONNECTION = (
    "import sys, time, duckdb\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('open', flush=True)\n"
    "time.sleep(float(sys.argv[2]))"
)


def make_warehouse(path: Path, sql: str) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.execute(sql)
    return path


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return make_warehouse(
        tmp_path / "edume.duckdb",
        "create table marts.fct_example as select 7::utinyint as tiny, 12::hugeint as huge, "
        "3::ubigint as big, timestamp '2026-11-29 05:00:00' as occurred_at, 'x' as label",
    )


def test_marts_export_as_parquet_with_bi_friendly_types(tmp_path: Path, warehouse: Path) -> None:
    export_marts(warehouse, tmp_path / "exports")

    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        relation = f"read_parquet('{tmp_path / 'exports' / 'fct_example.parquet'}')"
        types = dict(
            (row[0], row[1]) for row in con.execute(f"describe select * from {relation}").fetchall()
        )
        occurred = con.execute(f"select epoch(occurred_at) from {relation}").fetchone()[0]

    assert types == {
        "tiny": "SMALLINT",
        "huge": "BIGINT",
        "big": "BIGINT",
        "occurred_at": "TIMESTAMP WITH TIME ZONE",
        "label": "VARCHAR",
    }
    assert occurred == 1_795_928_400  # 2026-11-29T05:00:00Z: naive warehouse time read as UTC


def test_query_file_answers_while_another_process_holds_the_warehouse(
    tmp_path: Path, warehouse: Path
) -> None:
    export_marts(warehouse, tmp_path / "exports")
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_CONNECTION, str(warehouse), "10"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "open"
        with pytest.raises(duckdb.IOException, match="lock"):  # the warehouse itself is locked
            duckdb.connect(str(warehouse), read_only=True)

        with duckdb.connect(str(tmp_path / "exports" / "query.duckdb"), read_only=True) as con:
            answer = con.execute("select label, tiny from fct_example").fetchall()

        assert answer == [("x", 7)]
    finally:
        writer.kill()
        writer.wait()


def test_a_failed_export_keeps_the_previous_files(tmp_path: Path, warehouse: Path) -> None:
    exports = tmp_path / "exports"
    export_marts(warehouse, exports)
    before = (exports / "fct_example.parquet").read_bytes()
    make_warehouse(  # 2**64 - 1 does not fit a BI-friendly BIGINT: the export must refuse it
        warehouse,
        "create or replace table marts.fct_example as select 18446744073709551615::ubigint as big",
    )

    with pytest.raises(duckdb.ConversionException):
        export_marts(warehouse, exports)

    assert (exports / "fct_example.parquet").read_bytes() == before
    assert sorted(p.name for p in exports.iterdir()) == ["fct_example.parquet", "query.duckdb"]


def test_a_new_export_replaces_the_files_and_drops_no_temp_files(
    tmp_path: Path, warehouse: Path
) -> None:
    exports = tmp_path / "exports"
    export_marts(warehouse, exports)
    make_warehouse(warehouse, "create table marts.dim_other as select 1 as other_id")

    result = export_marts(warehouse, exports)

    assert result.rows == {"dim_other": 1, "fct_example": 1}
    assert sorted(p.name for p in exports.iterdir()) == [
        "dim_other.parquet",
        "fct_example.parquet",
        "query.duckdb",
    ]
    with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as con:
        assert con.execute("select other_id from dim_other").fetchall() == [(1,)]
