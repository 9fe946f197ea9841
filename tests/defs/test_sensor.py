"""The landing sensor and the hourly schedules: a run only when there is something new to do."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from bench.synthetic import event_body, landed_lines, write_segment
from pipeline.defs.jobs import AS_OF_REFRESH_JOB, PIPELINE_JOB
from pipeline.defs.resources import EdumePaths
from pipeline.defs.schedules import build_hourly_schedules
from pipeline.defs.sensors import build_landing_sensor
from pipeline.live.presence import hold_live_presence
from pipeline.receiver.landing_format import OPEN_SUFFIX
from pipeline.settings import SettingsError, load_settings


@pytest.fixture
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dg.DagsterInstance]:
    """A persistent instance in a temp dir (schedule contexts re-open it from its ref)."""
    with dg.DagsterInstance.local_temp(tempdir=str(tmp_path_factory.mktemp("home"))) as made:
        yield made


def paths_for(landing: Path) -> EdumePaths:
    return EdumePaths(
        landing_dir=str(landing), warehouse=str(landing / "edume.duckdb"), export_dir="unused"
    )


def tick(landing: Path, cursor: str | None, instance: dg.DagsterInstance) -> dg.SensorResult:
    context = dg.build_sensor_context(
        cursor=cursor, resources={"paths": paths_for(landing)}, instance=instance
    )
    return build_landing_sensor()(context)


def schedule_ticks(landing: Path, instance: dg.DagsterInstance) -> dict[str, list[object]]:
    """What each hourly schedule yields on one tick: run requests and skip reasons."""
    results = {}
    for schedule in build_hourly_schedules():
        context = dg.build_schedule_context(
            instance=instance, resources={"paths": paths_for(landing)}
        )
        results[schedule.name] = list(schedule.evaluate_tick(context).run_requests or [])
    return results


def segment(landing: Path, name: str) -> Path:
    return write_segment(landing, name, landed_lines([event_body(len(name))]))


def stand_in_job(job_name: str) -> dg.JobDefinition:
    """A trivial job under ``job_name``: its runs stand for the pipeline's in the instance."""

    @dg.asset(name=f"stand_in_{job_name}")
    def stand_in() -> None:
        return None

    defs = dg.Definitions(assets=[stand_in], jobs=[dg.define_asset_job(job_name)])
    return defs.resolve_job_def(job_name)


def pending_run(instance: dg.DagsterInstance, job_name: str) -> None:
    """A run of ``job_name`` created and not started yet (as a launched or queued one waits)."""
    instance.create_run_for_job(stand_in_job(job_name), status=dg.DagsterRunStatus.NOT_STARTED)


def finish_run(instance: dg.DagsterInstance, job_name: str) -> None:
    """A run of ``job_name`` that started now and succeeded."""
    assert stand_in_job(job_name).execute_in_process(instance=instance).success


def test_sensor_triggers_once_per_new_segment(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    segment(tmp_path, "a")

    first = tick(tmp_path, None, instance)
    again = tick(tmp_path, first.cursor, instance)
    segment(tmp_path, "b")
    second = tick(tmp_path, again.cursor or first.cursor, instance)
    third = tick(tmp_path, second.cursor, instance)

    assert len(first.run_requests) == 1
    assert not again.run_requests
    assert len(second.run_requests) == 1
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert second.run_requests[0].tags["edume/first"].endswith("/b.ndjson")
    assert not third.run_requests


def test_segments_sealed_between_ticks_share_one_run(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    for name in ("a", "b", "c"):
        segment(tmp_path, name)

    result = tick(tmp_path, None, instance)

    assert len(result.run_requests) == 1
    assert result.run_requests[0].tags["edume/segments"] == "3"


def test_a_retried_tick_asks_for_the_same_run_key(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    # Dagster drops a RunRequest whose run key it has already launched: a tick retried after its
    # cursor was lost must therefore produce the same key.
    segment(tmp_path, "a")

    assert tick(tmp_path, None, instance).run_requests[0].run_key == (
        tick(tmp_path, None, instance).run_requests[0].run_key
    )


def test_open_segments_do_not_trigger(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    partition = tmp_path / "received_date=2026-11-01"
    partition.mkdir()
    (partition / f"x{OPEN_SUFFIX}").write_bytes(b"{}\n")

    assert not tick(tmp_path, None, instance).run_requests


def test_sensor_skips_and_keeps_its_cursor_while_the_live_worker_runs(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    segment(tmp_path, "a")

    with hold_live_presence(tmp_path / "edume.duckdb"):
        during = tick(tmp_path, None, instance)
    after = tick(tmp_path, during.cursor, instance)

    assert not during.run_requests
    assert "live worker" in (during.skip_reason.skip_message or "")
    assert len(after.run_requests) == 1


def test_sensor_skips_and_keeps_its_cursor_while_a_run_waits_to_start(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    segment(tmp_path, "a")
    pending_run(instance, PIPELINE_JOB)

    result = tick(tmp_path, None, instance)

    assert not result.run_requests
    assert f"of {PIPELINE_JOB} is not_started" in (result.skip_reason.skip_message or "")
    assert result.cursor is None


def test_sensor_leaves_segments_sealed_before_the_newest_run_started_to_that_run(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    segment(tmp_path, "a")
    time.sleep(0.01)  # the run's start time must follow the seal
    finish_run(instance, PIPELINE_JOB)

    covered = tick(tmp_path, None, instance)
    segment(tmp_path, "b")
    fresh = tick(tmp_path, covered.cursor, instance)

    assert not covered.run_requests
    assert covered.cursor is not None
    assert len(fresh.run_requests) == 1
    assert fresh.run_requests[0].tags["edume/segments"] == "1"


def test_hourly_schedules_start_nothing_before_any_data(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    assert schedule_ticks(tmp_path, instance) == {
        "hourly_pipeline": [],
        "hourly_as_of_refresh": [],
    }


def test_hourly_pipeline_runs_only_for_segments_no_run_loaded(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    segment(tmp_path, "a")
    before = schedule_ticks(tmp_path, instance)
    time.sleep(0.01)
    finish_run(instance, PIPELINE_JOB)
    after = schedule_ticks(tmp_path, instance)

    assert [len(before["hourly_pipeline"]), len(before["hourly_as_of_refresh"])] == [1, 0]
    assert [len(after["hourly_pipeline"]), len(after["hourly_as_of_refresh"])] == [0, 1]


def test_hourly_schedules_skip_while_the_live_worker_runs_or_a_run_waits(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    finish_run(instance, PIPELINE_JOB)
    with hold_live_presence(tmp_path / "edume.duckdb"):
        live = schedule_ticks(tmp_path, instance)
    pending_run(instance, AS_OF_REFRESH_JOB)
    queued = schedule_ticks(tmp_path, instance)

    assert live == {"hourly_pipeline": [], "hourly_as_of_refresh": []}
    assert queued == {"hourly_pipeline": [], "hourly_as_of_refresh": []}


def test_the_sensor_ticks_every_edume_sensor_interval_s_and_refuses_a_bad_one() -> None:
    assert build_landing_sensor().minimum_interval_seconds == 5
    settings = load_settings({"EDUME_SENSOR_INTERVAL_S": "60"})
    assert build_landing_sensor(settings.sensor_interval_s).minimum_interval_seconds == 60
    for bad in ("0", "-5", "soon"):
        with pytest.raises(SettingsError, match="EDUME_SENSOR_INTERVAL_S"):
            load_settings({"EDUME_SENSOR_INTERVAL_S": bad})
