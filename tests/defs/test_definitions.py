"""The one Definitions: raw, dbt and export assets in their groups, checks, jobs, sensor,
schedules; the instance's one-writer pool; the `dg` and `dagster` CLIs load the same location."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from bench.live_kit import instance_at
from pipeline.definitions import build_definitions
from pipeline.defs.assets import EXPORTS, RAW_EVENTS, WAREHOUSE_POOL
from pipeline.defs.jobs import AS_OF_REFRESH_JOB, PIPELINE_JOB
from pipeline.defs.resources import edume_dbt_project
from pipeline.settings import REPO_ROOT, load_settings

BIN = Path(sys.executable).parent
CLI_TIMEOUT_S = 600  # loading parses the dbt project: minutes on a busy 2-core machine


@pytest.fixture(scope="module")
def defs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("defs")


@pytest.fixture(scope="module")
def repository(defs_dir: Path) -> dg.RepositoryDefinition:
    """The Definitions over a dbt target dir with no manifest yet, as in a fresh checkout (no
    ``dagster dev`` either, as under ``up``'s code server): loading parses the project first."""
    project = edume_dbt_project(target_path=defs_dir / "dbt-target")
    settings = load_settings(
        {
            "EDUME_LANDING_DIR": str(defs_dir / "landing"),
            "EDUME_WAREHOUSE": str(defs_dir / "edume.duckdb"),
            "EDUME_EXPORT_DIR": str(defs_dir / "exports"),
        }
    )
    return build_definitions(project, settings).get_repository_def()


def test_loading_without_a_manifest_parses_the_dbt_project_first(
    repository: dg.RepositoryDefinition, defs_dir: Path
) -> None:
    assert (defs_dir / "dbt-target" / "manifest.json").is_file()
    assert repository.asset_graph.get(EXPORTS).parent_keys


def test_raw_asset_key_is_the_dbt_source_and_feeds_the_staging_models(
    repository: dg.RepositoryDefinition,
) -> None:
    graph = repository.asset_graph
    children = graph.get(RAW_EVENTS).child_keys
    beside_staging = {key for key in children if key.path[0] != "staging"}

    assert RAW_EVENTS in graph.get_all_asset_keys()
    assert any(key.path[0] == "staging" for key in children)
    # The data-quality facts read the raw table too (models/quality, and the envelope counts they
    # keep incrementally); the marts only via staging.
    envelope_counts = dg.AssetKey(["intermediate", "int_delivery_envelopes_aggregated"])
    assert {key for key in beside_staging if key.path[0] != "quality"} == {envelope_counts}
    assert graph.get(envelope_counts).child_keys <= {
        key for key in graph.get_all_asset_keys() if key.path[0] == "quality"
    }


def test_export_asset_depends_on_the_marts(repository: dg.RepositoryDefinition) -> None:
    parents = repository.asset_graph.get(EXPORTS).parent_keys

    assert parents
    assert {key.path[0] for key in parents} == {"marts"}


def test_no_asset_sits_in_the_default_group_and_the_layers_read_like_the_readme(
    repository: dg.RepositoryDefinition,
) -> None:
    graph = repository.asset_graph
    groups = {key: graph.get(key).group_name for key in graph.get_all_asset_keys()}

    assert "default" not in set(groups.values())
    assert {"raw", "staging", "intermediate", "marts", "exports"} <= set(groups.values())
    assert groups[RAW_EVENTS] == "raw"
    assert groups[EXPORTS] == "exports"
    # A dbt model's group is its folder, which is also its schema's name here.
    assert all(group == key.path[0] for key, group in groups.items() if key.path[0] != "raw")


def test_every_asset_has_an_owner_and_a_layer_tag(repository: dg.RepositoryDefinition) -> None:
    graph = repository.asset_graph
    nodes = [graph.get(key) for key in graph.get_all_asset_keys()]

    assert all(node.owners for node in nodes)
    assert all(node.tags.get("edume/layer") == node.group_name for node in nodes)


def test_every_asset_is_in_the_one_writer_pool(repository: dg.RepositoryDefinition) -> None:
    graph = repository.asset_graph
    pools = {key: graph.get(key).pools for key in graph.materializable_asset_keys}

    assert {key: pool for key, pool in pools.items() if pool != {WAREHOUSE_POOL}} == {}


def test_raw_asset_has_a_freshness_policy_the_daemon_evaluates(
    repository: dg.RepositoryDefinition,
) -> None:
    policy = repository.asset_graph.get(RAW_EVENTS).freshness_policy

    assert isinstance(policy, dg.FreshnessPolicy)


def test_jobs_run_in_process_and_the_pipeline_job_selects_every_asset(
    repository: dg.RepositoryDefinition,
) -> None:
    job = repository.get_job(PIPELINE_JOB)
    refresh = repository.get_job(AS_OF_REFRESH_JOB)

    assert job.executor_def is dg.in_process_executor
    assert refresh.executor_def is dg.in_process_executor
    assert job.asset_layer.selected_asset_keys == repository.asset_graph.materializable_asset_keys
    assert RAW_EVENTS not in refresh.asset_layer.selected_asset_keys
    assert EXPORTS in refresh.asset_layer.selected_asset_keys


def test_sensor_and_hourly_schedules_target_their_jobs(
    repository: dg.RepositoryDefinition,
) -> None:
    sensor = repository.get_sensor_def("landing_sensor")
    pipeline = repository.get_schedule_def("hourly_pipeline")
    refresh = repository.get_schedule_def("hourly_as_of_refresh")

    assert sensor.job_name == PIPELINE_JOB
    assert (pipeline.job_name, pipeline.cron_schedule) == (PIPELINE_JOB, "7 * * * *")
    assert (refresh.job_name, refresh.cron_schedule) == (AS_OF_REFRESH_JOB, "7 * * * *")


def test_checks_cover_freshness_rejects_and_unknown_event_types(
    repository: dg.RepositoryDefinition,
) -> None:
    names = {key.name for key in repository.asset_graph.asset_check_keys}

    assert {"raw_events_are_fresh", "rejected_lines_are_rare", "no_unknown_event_types"} <= names


def cli_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "VIRTUAL_ENV": str(BIN.parent),  # as when the venv is activated: dg uses this Python
        "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
        "EDUME_WAREHOUSE": str(tmp_path / "edume.duckdb"),
    }


def test_dg_check_defs_passes(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "dg"), "check", "defs"],
        cwd=REPO_ROOT,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_workspace_yaml_and_the_dg_project_name_the_same_code_location(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        env={**cli_env(tmp_path), "DAGSTER_IS_DEV_CLI": "1"},  # prepare_if_dev parses dbt
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()

    assert done.returncode == 0, done.stdout + done.stderr
    assert "location_name: edume" in (REPO_ROOT / "workspace.yaml").read_text()
    assert 'code_location_name = "edume"' in pyproject
    assert 'code_location_target_module = "pipeline.definitions"' in pyproject
    assert "module_name: pipeline.definitions" in (REPO_ROOT / "workspace.yaml").read_text()


def test_instance_starts_one_warehouse_run_at_a_time_through_a_run_granularity_pool(
    tmp_path: Path,
) -> None:
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", tmp_path / "dagster.yaml")

    with instance_at(tmp_path) as instance:
        pools = instance.get_concurrency_config().pool_config

    assert pools.pool_granularity.value == "run"
    assert pools.default_pool_limit == 1


def test_no_module_but_the_event_log_storage_imports_dagster_private_core() -> None:
    # The exception: Dagster has no public name for the SQLite event log class it subclasses
    # (tests/defs/test_event_log_storage.py pins the methods it overrides).
    private = re.compile(r"^\s*(from|import)\s+dagster\._(core|serdes)", re.MULTILINE)
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for folder in ("pipeline", "tests", "bench")
        for path in (REPO_ROOT / folder).rglob("*.py")
        if private.search(path.read_text(encoding="utf-8"))
    ]

    assert offenders == ["pipeline/defs/event_log_storage.py"]
