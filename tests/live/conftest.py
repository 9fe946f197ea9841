"""Fixtures of the live worker's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from bench.live_kit import settings_under
from pipeline.defs.resources import edume_dbt_project
from pipeline.live.worker import LiveOptions, LiveWorker, build_worker


@pytest.fixture
def live_worker(tmp_path: Path) -> Iterator[LiveWorker]:
    """A live worker built in this process over a fresh warehouse under ``tmp_path`` (landing
    dir ``tmp_path/landing``), on an ephemeral instance; it logs nothing."""
    settings = settings_under(tmp_path)
    project = edume_dbt_project(None, tmp_path / "dbt_target")
    # Entered, as the worker enters its own (`with open_instance()`): resolving the Definitions
    # reads the current instance's defs-state storage. Once in CI (make test, 2 workers) that was
    # the storage of an instance an earlier test of the same process had left, already collected
    # ("undefined DagsterInstance weakref"); entering this one makes it the current one.
    with dg.DagsterInstance.ephemeral() as instance:
        yield build_worker(settings, instance, LiveOptions(), project, log=lambda _: None)
