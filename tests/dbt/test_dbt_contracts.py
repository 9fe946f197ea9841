"""What the dbt project declares, and that the engine holds it: enforced contracts on every mart,
exposures, source freshness, the `as_of` tag, comments persisted in the warehouse, and
constraints that fail a build (a duplicate key, a NULL) instead of letting a bad row in.

The fixture company is loaded and built once (`dbt build`, models and data tests); the failing
builds run on a copy of the project with one model broken on purpose.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import TEST_VARS
from fixture_company import AS_OF, company_deliveries
from warehouse_harness import DbtRunner, land_and_load, mart_rows, query

from pipeline.export import DESIGNED_MARTS
from pipeline.settings import DBT_PROJECT_DIR

pytestmark = pytest.mark.slow

BUILD_MODELS = ("build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, make_dbt) -> tuple[Path, dict]:
    """The fixture company's warehouse after `dbt build`, and the manifest of that build."""
    root = tmp_path_factory.mktemp("contracts")
    warehouse = root / "edume.duckdb"
    land_and_load(root / "landing", warehouse, company_deliveries())
    runner = make_dbt(warehouse)
    runner("build", "--exclude-resource-type", "unit_test")
    manifest = json.loads((runner.work_dir / "target" / "manifest.json").read_text())
    return warehouse, manifest


def mart_nodes(manifest: dict) -> dict[str, dict]:
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }


def test_every_mart_has_an_enforced_contract_with_every_column_typed(built) -> None:
    _, manifest = built
    marts = mart_nodes(manifest)
    assert set(DESIGNED_MARTS) <= set(marts)
    untyped = {
        name: [column for column, spec in node["columns"].items() if not spec.get("data_type")]
        for name, node in marts.items()
    }
    assert {name: node["config"]["contract"]["enforced"] for name, node in marts.items()} == (
        dict.fromkeys(marts, True)
    )
    assert {name: columns for name, columns in untyped.items() if columns} == {}


def test_the_manifest_declares_exposures_of_the_marts_and_freshness_on_the_raw_source(
    built,
) -> None:
    _, manifest = built
    exposures = manifest["exposures"].values()
    assert {exposure["name"] for exposure in exposures} >= {"parquet_exports", "query_duckdb"}
    for exposure in exposures:
        assert exposure["owner"]["name"] and exposure["maturity"], exposure["name"]
        assert exposure["depends_on"]["nodes"], exposure["name"]
    exported = next(e for e in exposures if e["name"] == "parquet_exports")
    assert {node.split(".")[-1] for node in exported["depends_on"]["nodes"]} == set(DESIGNED_MARTS)
    source = manifest["sources"]["source.edume.raw.edume_events"]
    assert source["loaded_at_field"] == "loaded_at"
    freshness = source["freshness"]
    assert freshness["warn_after"]["count"] and freshness["error_after"]["count"]


def test_every_mart_column_comment_in_the_warehouse_equals_its_description(built) -> None:
    warehouse, manifest = built
    described = {
        (name, column): spec["description"]
        for name, node in mart_nodes(manifest).items()
        for column, spec in node["columns"].items()
    }
    comments = {
        (table, column): comment
        for table, column, comment in query(
            warehouse,
            "select table_name, column_name, comment from duckdb_columns() "
            "where schema_name = 'marts' and table_name in "
            "(select unnest(?::varchar[]))",
            [list(DESIGNED_MARTS)],
        )
    }
    assert comments and all(comments.values()), comments
    assert comments == {key: described[key] for key in comments}
    assert set(comments) == {key for key in described if key[0] in DESIGNED_MARTS}


def test_every_model_reading_as_of_and_every_model_downstream_is_tagged_as_of(built) -> None:
    """In the layers of this project's warehouse (staging, intermediate, marts); models/reporting
    and models/quality tag theirs where they read these."""
    _, manifest = built
    models = {
        unique_id: node
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
        and node["schema"] in ("staging", "intermediate", "marts")
    }
    reading = {
        unique_id
        for unique_id, node in models.items()
        if AS_OF in (node.get("compiled_code") or "")
    }
    assert reading, "the fixed as_of appears in the compiled SQL of the models that read it"
    children = manifest["child_map"]
    depending, todo = set(), list(reading)
    while todo:
        unique_id = todo.pop()
        if unique_id in models and unique_id not in depending:
            depending.add(unique_id)
            todo.extend(children.get(unique_id, []))
    tagged = {unique_id for unique_id, node in models.items() if "as_of" in node["tags"]}
    assert tagged == depending


def test_the_lookup_key_has_one_index_the_primary_key(built) -> None:
    warehouse, _ = built
    # A separate index on learner_course_key would duplicate the primary key's ART index.
    assert (
        query(
            warehouse,
            "select table_name from duckdb_indexes() where sql ilike '%learner_course_key%'",
        )
        == []
    )
    assert query(
        warehouse,
        "select table_name from duckdb_constraints() where constraint_type = 'PRIMARY KEY' "
        "and constraint_column_names = ['learner_course_key'] order by all",
    ) == [("fct_training_compliance",), ("int_learner_course_progress_aggregated",)]


# A model broken on purpose in a copy of the project, after a first clean build: the
# replacement is applied to the model's SQL, and the build must fail with the engine's message.
BROKEN = {
    "a duplicate key in a rebuilt mart table": (
        "marts/dim_learners.sql",
        "select * from final",
        "select * from final union all select * from final where learner_id = 90211",
        r'PRIMARY KEY or UNIQUE constraint violation: duplicate key "90211"',
    ),
    "a NULL in a NOT NULL column of a mart table": (
        "marts/course_team_assignments.sql",
        "        {{ edume.utc('memberships.member_since') }} as assigned_at",
        "        {{ edume.utc('cast(null as timestamp)') }} as assigned_at",
        r"NOT NULL constraint failed: .*assigned_at",
    ),
    "a duplicate key in an incremental run": (
        "intermediate/int_learner_events_deduplicated.sql",
        "    columns) }}",
        "    columns) }}\nunion all select * from final",
        r'PRIMARY KEY or UNIQUE constraint violation: duplicate key "[0-9a-f]{64}"',
    ),
    "a value outside the accepted ones in a rebuilt mart table (CHECK)": (
        "marts/dim_courses.sql",
        "coalesce(states.status, 'unknown') as status,",
        "coalesce(states.status, 'unknown') || '!' as status,",
        r'CHECK constraint failed on table "dim_courses[^"]*" with expression CHECK\(.*status IN',
    ),
    "a row breaking an invariant in an incremental run (CHECK)": (
        "intermediate/int_learner_course_progress_aggregated.sql",
        "            when per_pair.completed_at is not null then 'completed'",
        "            when per_pair.completed_at is not null then 'in_progress'",
        r'CHECK constraint failed on table "int_learner_course_progress_aggregated[^"]*" '
        r"with expression CHECK\(COALESCE\(",
    ),
    "a duplicate key in a quality/reporting table": (
        "reporting/course_funnel.sql",
        "from {{ ref('fct_learner_funnel') }} as funnel",
        "from (select * from {{ ref('fct_learner_funnel') }}\n"
        "    union all select * from {{ ref('fct_learner_funnel') }}) as funnel",
        r"PRIMARY KEY or UNIQUE constraint violation: duplicate key",
    ),
    "a NULL in a NOT NULL column in an incremental run": (
        "intermediate/int_learner_course_progress_aggregated.sql",
        "        per_pair.learner_id,\n",
        "        cast(null as bigint) as learner_id,\n",
        r"NOT NULL constraint failed: .*learner_id",
    ),
}


@pytest.fixture(scope="module")
def half_built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DbtRunner, int]:
    """A copy of the project (one path for the module, so partial parsing carries over) and a
    warehouse holding the first half of the fixture company, built by it."""
    root = tmp_path_factory.mktemp("broken")
    project = root / "project"
    shutil.copytree(
        DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages")
    )
    warehouse = root / "edume.duckdb"
    dbt = DbtRunner(warehouse, root / "dbt", TEST_VARS, project_dir=project)
    next_segment = land_and_load(root / "landing", warehouse, _deliveries()[0])
    dbt(*BUILD_MODELS)
    return root, dbt, next_segment


def _deliveries() -> tuple[list, list]:
    deliveries = sorted(company_deliveries(), key=lambda d: d.received_at)
    half = len(deliveries) // 2
    return deliveries[:half], deliveries[half:]


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_build_that_would_write_a_bad_row_fails_and_keeps_the_previous_rows(
    tmp_path: Path, half_built, case: str
) -> None:
    model, old, new, message = BROKEN[case]
    root, built_dbt, next_segment = half_built
    warehouse, landing = tmp_path / "edume.duckdb", tmp_path / "landing"
    shutil.copy(built_dbt.warehouse, warehouse)
    shutil.copytree(root / "landing", landing)
    dbt = DbtRunner(warehouse, built_dbt.work_dir, TEST_VARS, project_dir=built_dbt.project_dir)
    table = model.split("/")[-1].removesuffix(".sql")
    relation = f"{model.split('/')[0]}.{table}"
    before = query(warehouse, f"select * from {relation} order by all")
    assert before, f"{relation} has rows to keep"
    land_and_load(landing, warehouse, _deliveries()[1], first_segment=next_segment)
    path = built_dbt.project_dir / "models" / model
    original = path.read_text()
    assert original.count(old) == 1, f"{model} no longer contains {old!r}"
    path.write_text(original.replace(old, new))
    try:
        # The model and what it reads: an incremental model sees the new events only once the
        # incremental tables upstream have taken them in.
        failed = dbt.run(*BUILD_MODELS, "--select", f"+{table}")
    finally:
        path.write_text(original)
    assert failed.returncode != 0, failed.stdout[-3000:]
    assert re.search(message, failed.stdout), failed.stdout[-3000:]
    assert query(warehouse, f"select * from {relation} order by all") == before


def test_a_warehouse_built_before_the_constraints_gets_them_at_the_next_build(
    tmp_path: Path, make_dbt
) -> None:
    """The one-time upgrade (macros/contracts.sql upgrade_to_constraints): the tables as the
    project used to build them (no primary keys, a lookup index on learner_course_key) are
    upgraded by the next `dbt build`, with the same marts."""
    warehouse = tmp_path / "edume.duckdb"
    land_and_load(tmp_path / "landing", warehouse, company_deliveries())
    dbt = make_dbt(warehouse)
    dbt(*BUILD_MODELS)
    expected = mart_rows(warehouse)
    old_tables = {
        "intermediate.int_learner_course_progress_aggregated": "learner_course_key",
        "intermediate.int_learner_events_deduplicated": None,
        "marts.fct_training_compliance": "learner_course_key",
    }
    with duckdb.connect(str(warehouse)) as con:
        for table, indexed in old_tables.items():
            name = table.split(".")[1]
            con.execute(
                f"create table {table}__old as select * exclude (built_at) from {table}"
                if name.startswith("int_")
                else f"create table {table}__old as select * from {table}"
            )
            con.execute(f"drop table {table}")
            con.execute(f"alter table {table}__old rename to {name}")
            if indexed:
                con.execute(f"create unique index {name}__{indexed} on {table} ({indexed})")
    dbt(*BUILD_MODELS)
    assert mart_rows(warehouse) == expected
    assert query(
        warehouse,
        "select table_name from duckdb_constraints() where constraint_type = 'PRIMARY KEY' "
        "and table_name in ('int_learner_course_progress_aggregated', "
        "'int_learner_events_deduplicated', 'fct_training_compliance') order by all",
    ) == [
        ("fct_training_compliance",),
        ("int_learner_course_progress_aggregated",),
        ("int_learner_events_deduplicated",),
    ]
    assert query(warehouse, "select index_name from duckdb_indexes()") == []


def test_a_warehouse_built_before_the_check_constraints_gets_them_at_the_next_build(
    tmp_path: Path, make_dbt
) -> None:
    """The same upgrade for the CHECK constraints that replaced data tests: incremental tables
    as the previous release built them (primary key, no CHECK; the envelope counts with neither)
    are rebuilt in full, once, by the next `dbt build`, with the same marts and quality facts."""
    warehouse = tmp_path / "edume.duckdb"
    land_and_load(tmp_path / "landing", warehouse, company_deliveries())
    dbt = make_dbt(warehouse)
    dbt(*BUILD_MODELS)
    facts = "select * from quality.delivery_envelopes order by all"
    expected, expected_facts = mart_rows(warehouse), query(warehouse, facts)
    old_tables = {  # table: its primary key in the previous release
        "intermediate.int_learner_course_progress_aggregated": "learner_course_key",
        "intermediate.int_learner_events_deduplicated": "delivery_id",
        "intermediate.int_delivery_envelopes_aggregated": None,
    }
    checks = (
        "select table_name, count(*) filter (where constraint_type = 'CHECK'), "
        "count(*) filter (where constraint_type = 'PRIMARY KEY') from duckdb_constraints() "
        "where schema_name = 'intermediate' and table_name in "
        "('int_learner_course_progress_aggregated', 'int_learner_events_deduplicated', "
        "'int_delivery_envelopes_aggregated', 'int_events_quarantined') group by all order by all"
    )
    upgraded = [
        ("int_delivery_envelopes_aggregated", 1, 1),
        ("int_events_quarantined", 1, 1),  # a table, rebuilt at every build
        ("int_learner_course_progress_aggregated", 4, 1),
        ("int_learner_events_deduplicated", 2, 1),
    ]
    assert query(warehouse, checks) == upgraded
    with duckdb.connect(str(warehouse)) as con:
        for table, key in old_tables.items():
            name = table.split(".")[1]
            con.execute(f"create table {table}__old as select * from {table}")
            con.execute(f"drop table {table}")
            con.execute(f"alter table {table}__old rename to {name}")
            if key:
                con.execute(f"alter table {table} add primary key ({key})")
    assert query(warehouse, checks) == [
        ("int_events_quarantined", 1, 1),
        ("int_learner_course_progress_aggregated", 0, 1),
        ("int_learner_events_deduplicated", 0, 1),
    ]
    dbt(*BUILD_MODELS)
    assert mart_rows(warehouse) == expected
    assert query(warehouse, facts) == expected_facts
    assert query(warehouse, checks) == upgraded
