"""When a sensor tick or a schedule tick may start a run: the rules both share.

- never while the live worker keeps this warehouse fresh (it runs every batch itself);
- never while a run of the job is queued or starting (that run will load everything sealed before
  it starts, so a second one would wait with nothing new to do: the backlog stays at one);
- never for segments sealed before the newest run of the pipeline job started (it loaded them).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipeline.loader.landing_watch import Cursor, new_segments

WAITING = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
]
STARTED = [
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELING,
    dg.DagsterRunStatus.CANCELED,
]


def live_worker_skip(warehouse: Path) -> str | None:
    """A skip reason while ``edume-pipeline live`` holds this warehouse's presence lock."""
    from pipeline.live.presence import live_worker_running  # imported when a tick asks

    if live_worker_running(warehouse):
        return "the live worker keeps the marts fresh"
    return None


def waiting_run_skip(instance: dg.DagsterInstance, job_names: list[str]) -> str | None:
    """A skip reason while a run of one of ``job_names`` is queued or starting."""
    for job_name in job_names:
        waiting = instance.get_runs(dg.RunsFilter(job_name=job_name, statuses=WAITING), limit=1)
        if waiting:
            return f"run {waiting[0].run_id} of {job_name} is {waiting[0].status.value.lower()}"
    return None


def last_run_start_ns(instance: dg.DagsterInstance, job_name: str) -> int | None:
    """When the newest run of ``job_name`` that started, started (ns since the epoch)."""
    records = instance.get_run_records(dg.RunsFilter(job_name=job_name, statuses=STARTED), limit=1)
    if not records or records[0].start_time is None:
        return None
    return int(records[0].start_time * 1e9)


def segments_sealed_since(landing_dir: Path, since_ns: int | None) -> list[str]:
    """Sealed segments whose seal (inode change time) is after ``since_ns`` (all if None)."""
    segments, _ = new_segments(landing_dir, Cursor(since_ns or 0))
    return segments
