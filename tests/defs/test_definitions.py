"""The one Definitions: raw, dbt and export assets, checks, the job, sensor and schedule."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipeline.definitions import build_definitions
from pipeline.defs.assets import EXPORTS, RAW_EVENTS
from pipeline.defs.jobs import PIPELINE_JOB
from pipeline.defs.resources import WRITER_TAG, edume_dbt_project, prepare_dbt_project
from pipeline.settings import REPO_ROOT, load_settings

DAGSTER = str(Path(sys.executable).parent / "dagster")


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> dg.RepositoryDefinition:
    tmp = tmp_path_factory.mktemp("defs")
    project = edume_dbt_project(target_path=tmp / "dbt-target")
    prepare_dbt_project(project)
    settings = load_settings(
        {
            "EDUME_LANDING_DIR": str(tmp / "landing"),
            "EDUME_WAREHOUSE": str(tmp / "edume.duckdb"),
            "EDUME_EXPORT_DIR": str(tmp / "exports"),
        }
    )
    return build_definitions(project, settings).get_repository_def()


def test_raw_asset_key_is_the_dbt_source_and_feeds_the_staging_models(
    repository: dg.RepositoryDefinition,
) -> None:
    graph = repository.asset_graph
    downstream = {key.path[0] for key in graph.get(RAW_EVENTS).child_keys}

    assert RAW_EVENTS in graph.get_all_asset_keys()
    assert downstream == {"staging"}


def test_export_asset_depends_on_the_marts(repository: dg.RepositoryDefinition) -> None:
    parents = repository.asset_graph.get(EXPORTS).parent_keys

    assert parents
    assert {key.path[0] for key in parents} == {"marts"}


def test_pipeline_job_selects_every_asset_and_carries_the_writer_tag(
    repository: dg.RepositoryDefinition,
) -> None:
    job = repository.get_job(PIPELINE_JOB)

    assert WRITER_TAG.items() <= job.tags.items()
    assert job.asset_layer.selected_asset_keys == repository.asset_graph.get_all_asset_keys()


def test_sensor_and_hourly_schedule_target_the_pipeline_job(
    repository: dg.RepositoryDefinition,
) -> None:
    sensor = repository.get_sensor_def("landing_sensor")
    schedule = repository.get_schedule_def("hourly_pipeline")

    assert sensor.job_name == PIPELINE_JOB
    assert (schedule.job_name, schedule.cron_schedule) == (PIPELINE_JOB, "7 * * * *")


def test_checks_cover_freshness_rejects_and_unknown_event_types(
    repository: dg.RepositoryDefinition,
) -> None:
    names = {key.name for key in repository.asset_graph.asset_check_keys}

    assert {"raw_events_are_fresh", "rejected_lines_are_rare", "no_unknown_event_types"} <= names


def test_workspace_loads_with_the_dagster_cli_and_the_queued_instance(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_IS_DEV_CLI": "1",  # as under `dagster dev`: prepare_if_dev parses the project
        "EDUME_WAREHOUSE": str(tmp_path / "edume.duckdb"),
    }

    done = subprocess.run(
        [DAGSTER, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful for code location edume." in done.stdout + done.stderr


def test_instance_queues_writer_runs_one_at_a_time(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", tmp_path / "dagster.yaml")

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        limits = instance.run_coordinator.get_run_queue_config().tag_concurrency_limits

    assert {"key": "edume/warehouse", "value": "writer", "limit": 1} in limits
