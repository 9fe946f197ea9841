"""Arrival order, duplicates and incremental runs never change the marts.

One event set (the fixture company plus a seeded messy one, with eduMe-style retries) is landed
in received_at order and built once: the reference. Every other warehouse here gets the same
deliveries in another order, with extra copies, or in two loads, and must equal it mart for mart.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from fixture_company import company_deliveries
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from random_company import random_deliveries
from warehouse_harness import Delivery, land_and_load, mart_rows, query

pytestmark = pytest.mark.slow

BUILD_MODELS = ("build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test")
EVENT_SET = tuple(company_deliveries() + random_deliveries(seed=7))
INCREMENTAL_MODELS = (
    "int_learner_events_deduplicated",
    "int_unprocessable_events_deduplicated",
    "int_learner_team_snapshots_deduplicated",
    "int_learner_course_progress_aggregated",
    "int_learner_profiles_aggregated",
    "int_course_learner_mentions_aggregated",
    "int_team_memberships_resolved",
)


@dataclass(frozen=True)
class Reference:
    marts: dict[str, list[tuple]]
    marts_without_received_at: dict[str, list[tuple]]


def with_retries(deliveries: list[Delivery], rng: random.Random, count: int) -> list[Delivery]:
    """``count`` extra copies of random deliveries, each received later than its original."""
    extra = [rng.choice(deliveries) for _ in range(count)]
    return deliveries + [
        Delivery(d.body, d.received_at + timedelta(minutes=rng.randint(1, 600))) for d in extra
    ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, make_dbt) -> Reference:
    root = tmp_path_factory.mktemp("in_order")
    warehouse = root / "edume.duckdb"
    land_and_load(root / "landing", warehouse, sorted(EVENT_SET, key=lambda d: d.received_at))
    make_dbt(warehouse)(*BUILD_MODELS)
    marts = mart_rows(warehouse)
    assert all(marts.values()), "every mart has rows, so the comparisons below mean something"
    return Reference(marts, mart_rows(warehouse, without=("received_at",)))


def test_shuffled_deliveries_with_duplicates_give_identical_marts(
    tmp_path: Path, make_dbt, reference: Reference
) -> None:
    rng = random.Random(11)
    deliveries = with_retries(list(EVENT_SET), rng, count=40)
    rng.shuffle(deliveries)
    warehouse = tmp_path / "edume.duckdb"
    land_and_load(tmp_path / "landing", warehouse, deliveries)
    make_dbt(warehouse)(*BUILD_MODELS)
    assert mart_rows(warehouse) == reference.marts


def test_incremental_run_then_full_refresh_equal_a_single_full_build(
    tmp_path: Path, make_dbt, reference: Reference
) -> None:
    rng = random.Random(23)
    deliveries = list(EVENT_SET)
    rng.shuffle(deliveries)
    first, second = deliveries[: len(deliveries) // 2], deliveries[len(deliveries) // 2 :]
    # The earliest copy of a body already loaded arrives in the second load: the incremental run
    # must replace the kept copy's received_at, not keep the first-loaded one.
    early = second[0]
    first.append(Delivery(early.body, early.received_at + timedelta(hours=2)))
    warehouse, landing = tmp_path / "edume.duckdb", tmp_path / "landing"
    dbt = make_dbt(warehouse)
    next_segment = land_and_load(landing, warehouse, first)
    dbt(*BUILD_MODELS)
    land_and_load(landing, warehouse, second, first_segment=next_segment)
    dbt(*BUILD_MODELS)
    for model in INCREMENTAL_MODELS:
        ran = next((dbt.work_dir / "target" / "run").rglob(f"{model}.sql"))
        assert "delete from" in ran.read_text(), f"the second run of {model} was incremental"
    assert mart_rows(warehouse) == reference.marts
    # The primary keys (DuckDB's lookup indexes) survive an incremental run and a rebuild.
    keys = (
        "select table_name, constraint_column_names from duckdb_constraints() "
        "where constraint_type = 'PRIMARY KEY' and table_name in "
        "('fct_training_compliance', 'int_learner_course_progress_aggregated') order by all"
    )
    expected_keys = [
        ("fct_training_compliance", ["learner_course_key"]),
        ("int_learner_course_progress_aggregated", ["learner_course_key"]),
    ]
    assert query(warehouse, keys) == expected_keys
    dbt(*BUILD_MODELS, "--full-refresh")
    assert mart_rows(warehouse) == reference.marts
    assert query(warehouse, keys) == expected_keys


def build_in_two_halves(tmp_path: Path, make_dbt, between: str) -> Path:
    """The event set landed and built in two halves, with SQL ``between`` run on the warehouse
    after the first build (an older deployment's table, say); returns the warehouse."""
    deliveries = sorted(EVENT_SET, key=lambda d: d.received_at)
    first, second = deliveries[: len(deliveries) // 2], deliveries[len(deliveries) // 2 :]
    warehouse, landing = tmp_path / "edume.duckdb", tmp_path / "landing"
    dbt = make_dbt(warehouse)
    next_segment = land_and_load(landing, warehouse, first)
    dbt(*BUILD_MODELS)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(between)
    land_and_load(landing, warehouse, second, first_segment=next_segment)
    dbt(*BUILD_MODELS)
    return warehouse


def test_a_memberships_table_built_before_it_was_incremental_is_rebuilt_by_the_next_run(
    tmp_path: Path, make_dbt, reference: Reference
) -> None:
    # Before it was incremental, int_team_memberships_resolved had no loaded_at: an upgraded
    # deployment's next run must recompute every entity, not fail on the missing watermark.
    memberships = "intermediate.int_team_memberships_resolved"
    warehouse = build_in_two_halves(
        tmp_path, make_dbt, f"alter table {memberships} drop column loaded_at"
    )
    assert mart_rows(warehouse) == reference.marts
    # The column is back: null for courses (recomputed at every run), set for every learner row.
    mismatched = (
        f"select count(*) from {memberships} where (loaded_at is null) <> (entity_kind = 'course')"
    )
    assert query(warehouse, mismatched) == [(0,)]


def test_a_profiles_table_built_before_built_at_gets_the_column_from_the_next_run(
    tmp_path: Path, make_dbt, reference: Reference
) -> None:
    # Before the export's buckets, int_learner_profiles_aggregated had no built_at: an upgraded
    # deployment's next run appends it (null in the rows it does not rewrite), and builds.
    profiles = "intermediate.int_learner_profiles_aggregated"
    warehouse = build_in_two_halves(
        tmp_path, make_dbt, f"alter table {profiles} drop column built_at"
    )
    assert mart_rows(warehouse) == reference.marts
    stamped = f"select count(built_at) > 0, count(*) filter (built_at is null) > 0 from {profiles}"
    assert query(warehouse, stamped) == [(True, True)]  # the rewritten learners' rows only


@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    order=st.permutations(range(len(EVENT_SET))),
    copies=st.lists(st.integers(0, len(EVENT_SET) - 1), max_size=60),
    per_segment=st.integers(1, 50),
)
def test_any_arrival_order_with_any_duplicates_gives_identical_marts(
    make_dbt, reference: Reference, order, copies, per_segment
) -> None:
    # The receive times are dealt out again in the permuted order, so the deliveries truly
    # ARRIVE in that order; only the received_at columns may then differ from the reference.
    times = sorted(d.received_at for d in EVENT_SET)
    deliveries = [
        Delivery(EVENT_SET[i].body, received) for i, received in zip(order, times, strict=True)
    ]
    deliveries += [
        Delivery(deliveries[i].body, times[-1] + timedelta(seconds=n + 1))
        for n, i in enumerate(copies)
    ]
    with tempfile.TemporaryDirectory() as scratch:
        warehouse = Path(scratch) / "edume.duckdb"
        land_and_load(Path(scratch) / "landing", warehouse, deliveries, per_segment=per_segment)
        make_dbt(warehouse)(*BUILD_MODELS)
        assert mart_rows(warehouse, without=("received_at",)) == reference.marts_without_received_at
