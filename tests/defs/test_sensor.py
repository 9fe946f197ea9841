"""The landing sensor: a run for newly sealed segments, and never twice for the same one."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from bench.synthetic import event_body, landed_lines, write_segment
from pipeline.defs.jobs import build_pipeline_job
from pipeline.defs.resources import EdumePaths
from pipeline.defs.sensors import build_landing_sensor
from pipeline.receiver.landing_format import OPEN_SUFFIX


def tick(sensor: dg.SensorDefinition, landing: Path, cursor: str | None) -> dg.SensorResult:
    paths = EdumePaths(landing_dir=str(landing), warehouse="unused", export_dir="unused")
    context = dg.build_sensor_context(cursor=cursor, resources={"paths": paths})
    return sensor(context)


def segment(landing: Path, name: str) -> Path:
    return write_segment(landing, name, landed_lines([event_body(len(name))]))


def test_sensor_triggers_once_per_new_segment(tmp_path: Path) -> None:
    sensor = build_landing_sensor(build_pipeline_job())
    segment(tmp_path, "a")

    first = tick(sensor, tmp_path, None)
    again = tick(sensor, tmp_path, first.cursor)
    segment(tmp_path, "b")
    second = tick(sensor, tmp_path, again.cursor or first.cursor)
    third = tick(sensor, tmp_path, second.cursor)

    assert len(first.run_requests) == 1
    assert not again.run_requests
    assert len(second.run_requests) == 1
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert second.run_requests[0].tags["edume/first"].endswith("/b.ndjson")
    assert not third.run_requests


def test_segments_sealed_between_ticks_share_one_run(tmp_path: Path) -> None:
    sensor = build_landing_sensor(build_pipeline_job())
    for name in ("a", "b", "c"):
        segment(tmp_path, name)

    result = tick(sensor, tmp_path, None)

    assert len(result.run_requests) == 1
    assert result.run_requests[0].tags["edume/segments"] == "3"


def test_a_retried_tick_asks_for_the_same_run_key(tmp_path: Path) -> None:
    # Dagster drops a RunRequest whose run key it has already launched: a tick retried after its
    # cursor was lost must therefore produce the same key.
    sensor = build_landing_sensor(build_pipeline_job())
    segment(tmp_path, "a")

    assert tick(sensor, tmp_path, None).run_requests[0].run_key == (
        tick(sensor, tmp_path, None).run_requests[0].run_key
    )


def test_open_segments_do_not_trigger(tmp_path: Path) -> None:
    sensor = build_landing_sensor(build_pipeline_job())
    partition = tmp_path / "received_date=2026-11-01"
    partition.mkdir()
    (partition / f"x{OPEN_SUFFIX}").write_bytes(b"{}\n")

    assert not tick(sensor, tmp_path, None).run_requests
