"""The exports of a real ``dbt build`` (the fixture company, through the real loader), read with
pyarrow: every mart as its dbt contract declares it, and query.duckdb documented like the
warehouse."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import pytest
from fixture_company import company_deliveries
from warehouse_harness import land_and_load

from pipeline.export import ExportResult, export_marts
from pipeline.settings import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests" / "defs"))
from export_schema import arrow_type, bi_problems, read_export


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, make_dbt) -> tuple[Path, Path, ExportResult]:
    """(warehouse, dbt manifest, export result) after one load, one build and one export."""
    root = tmp_path_factory.mktemp("exported")
    warehouse = root / "edume.duckdb"
    land_and_load(root / "landing", warehouse, company_deliveries())
    dbt = make_dbt(warehouse)
    dbt("build")
    return (
        warehouse,
        dbt.work_dir / "target" / "manifest.json",
        export_marts(warehouse, root / "exports"),
    )


def _contracts(manifest: Path) -> dict[str, dict[str, str]]:
    """Each mart's declared columns and data types, from the manifest (in declared order)."""
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return {
        node["name"]: {name: column.get("data_type") for name, column in node["columns"].items()}
        for node in nodes
        if node["resource_type"] == "model" and node["config"].get("schema") == "marts"
    }


def test_every_exported_mart_has_its_contract_columns_and_types_as_pyarrow_reads_them(
    built: tuple[Path, Path, ExportResult],
) -> None:
    warehouse, manifest, result = built
    exported = {path.name.removesuffix(".parquet"): path for path in result.parquet_files}
    contracts = _contracts(manifest)
    assert contracts, "no mart in the manifest"

    for mart, columns in contracts.items():
        table = read_export(exported[mart])
        with duckdb.connect(str(warehouse), read_only=True) as con:
            (count,) = con.execute(f"select count(*) from marts.{mart}").fetchone()
        assert table.num_rows == count == result.rows[mart], mart
        assert table.column_names == list(columns), mart
        declared = {name: kind for name, kind in columns.items() if kind}
        assert {n: table.schema.field(n).type for n in declared} == {
            n: arrow_type(kind) for n, kind in declared.items()
        }, mart
        assert bi_problems(table.schema) == [], mart


def test_every_parquet_file_under_the_exports_reads_without_bi_problems(
    built: tuple[Path, Path, ExportResult],
) -> None:
    _, _, result = built
    assert result.files_written
    for path in result.files_written:
        assert bi_problems(read_export(path).schema) == [], path


def test_query_file_columns_carry_the_warehouse_comments(
    built: tuple[Path, Path, ExportResult],
) -> None:
    warehouse, _, result = built
    sql = (
        "select table_name, column_name, comment from duckdb_columns() "
        "where schema_name = ? and not internal and database_name = current_database() "
        "order by all"
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        expected = con.execute(sql, ["marts"]).fetchall()
    with duckdb.connect(str(result.query_file), read_only=True) as con:
        seen = con.execute(sql, ["main"]).fetchall()

    assert seen == expected
    assert all(comment for _, _, comment in seen), "a mart column without a description"


def _every_view(query_file: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(query_file), read_only=True) as con:
        views = con.execute(
            "select schema_name, view_name from duckdb_views() where not internal"
        ).fetchall()
        return {
            f"{schema}.{view}": con.execute(
                f'select * from "{schema}"."{view}" order by all'
            ).fetchall()
            for schema, view in views
        }


def test_exports_after_two_micro_batches_equal_a_full_export_of_the_same_warehouse(
    tmp_path: Path, make_dbt
) -> None:
    warehouse, exports = tmp_path / "edume.duckdb", tmp_path / "exports"
    deliveries = company_deliveries()
    dbt = make_dbt(warehouse)
    next_segment = 0
    for part in (deliveries[::2], deliveries[1::2]):  # the second half fills in old months
        next_segment = land_and_load(
            tmp_path / "landing", warehouse, part, first_segment=next_segment
        )
        dbt("build")
        export_marts(warehouse, exports)

    full = export_marts(warehouse, tmp_path / "full")

    assert _every_view(exports / "query.duckdb") == _every_view(full.query_file)
    files = [len(list(m.glob("*.parquet"))) for m in (exports / "fct_learner_activity").iterdir()]
    assert 2 in files, "the second batch rewrote every month instead of appending its rows"
