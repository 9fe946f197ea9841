"""``materialize --select`` builds one mart and its parents only; ``--full-refresh`` rebuilds the
incremental models from all of the raw table (an incremental run would not restore lost rows)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb
import pytest
from materialize_kit import Pipeline, copy_dbt_project

from bench.synthetic import write_backlog

MART = "fct_learner_funnel"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("options")
    made = Pipeline.under(root, copy_dbt_project(root / "dbt_project"))
    write_backlog(made.landing, events=400, per_segment=200)
    return made


@pytest.fixture(scope="module")
def selected_run(pipeline: Pipeline) -> subprocess.CompletedProcess[str]:
    return pipeline.materialize("--select", f"+{MART}")


def manifest_nodes(pipeline: Pipeline) -> dict[str, dict]:
    target = pipeline.dbt_project / "target" / "manifest.json"
    return json.loads(target.read_text())["nodes"]


def parents_of(nodes: dict[str, dict], unique_id: str) -> set[str]:
    """Every model and seed ``unique_id`` reads, directly or not, by name."""
    found: set[str] = set()
    stack = list(nodes[unique_id]["depends_on"]["nodes"])
    while stack:
        parent = stack.pop()
        if parent in nodes and nodes[parent]["name"] not in found:
            found.add(nodes[parent]["name"])
            stack.extend(nodes[parent]["depends_on"]["nodes"])
    return found


def relations(warehouse: Path) -> set[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select table_name from information_schema.tables "
            "where table_schema in ('staging', 'intermediate', 'marts')"
        ).fetchall()
    return {name for (name,) in rows}


def test_select_builds_the_mart_and_its_parents_and_nothing_else(
    pipeline: Pipeline, selected_run: subprocess.CompletedProcess[str]
) -> None:
    nodes = manifest_nodes(pipeline)
    wanted = parents_of(nodes, f"model.edume.{MART}") | {MART}
    every_model = {node["name"] for node in nodes.values() if node["resource_type"] == "model"}

    assert selected_run.returncode == 0, selected_run.stdout[-3000:] + selected_run.stderr[-3000:]
    assert wanted < every_model  # the selection leaves some models out
    assert relations(pipeline.warehouse) & every_model == wanted & every_model


def test_select_still_loads_and_exports(
    pipeline: Pipeline, selected_run: subprocess.CompletedProcess[str]
) -> None:
    assert "materialized raw/edume_events" in selected_run.stdout
    assert "materialized exports/marts" in selected_run.stdout
    assert (pipeline.exports / f"{MART}.parquet").exists()


def test_select_refuses_a_selection_that_matches_no_model(pipeline: Pipeline) -> None:
    refused = pipeline.materialize("--select", "no_such_model_anywhere")

    assert refused.returncode == 2
    assert "matches no dbt model" in refused.stderr


def incremental_parent(pipeline: Pipeline) -> str:
    nodes = manifest_nodes(pipeline)
    names = parents_of(nodes, f"model.edume.{MART}")
    return min(
        node["name"]
        for node in nodes.values()
        if node["name"] in names and node["config"]["materialized"] == "incremental"
    )


def test_full_refresh_rebuilds_an_incremental_model_that_lost_rows(
    pipeline: Pipeline, selected_run: subprocess.CompletedProcess[str]
) -> None:
    model = incremental_parent(pipeline)
    with duckdb.connect(str(pipeline.warehouse)) as con:
        (schema,) = con.execute(
            "select table_schema from information_schema.tables where table_name = ?", [model]
        ).fetchone()
        before = con.execute(f"select count(*) from {schema}.{model}").fetchone()[0]
        con.execute(f"delete from {schema}.{model}")  # what an incremental run cannot restore

    rebuilt = pipeline.materialize("--full-refresh", "--select", f"+{MART}")
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        after = con.execute(f"select count(*) from {schema}.{model}").fetchone()[0]

    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:] + rebuilt.stderr[-3000:]
    assert before > 0
    assert after == before
    assert "--full-refresh" in pipeline.log_file.read_text()
