"""The project's Dagster event log (pipeline/defs/event_log_storage.py): Dagster's SQLite files,
read and written the same, with connections kept open, and only a few of them."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import dagster as dg
import pytest

from bench.live_kit import instance_at
from pipeline.defs import event_log_storage
from pipeline.defs.event_log_storage import RUN_SHARDS_KEPT_OPEN, PooledSqliteEventLogStorage
from pipeline.settings import REPO_ROOT


@dg.asset
def lessons() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"dagster/row_count": 3})


@dg.asset_check(asset=lessons)
def lessons_are_counted() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def write_home(home: Path, *, pooled: bool) -> None:
    """``home/dagster.yaml``: the project's, or the same without the event log block."""
    home.mkdir(exist_ok=True)
    text = (REPO_ROOT / "dagster_home" / "dagster.yaml").read_text()
    if not pooled:
        block = text[text.index("event_log_storage:") :].split("\n\n", 1)[0]
        text = text.replace(block, "")
    (home / "dagster.yaml").write_text(text)


def materialize(instance: dg.DagsterInstance) -> str:
    result = dg.materialize([lessons, lessons_are_counted], instance=instance)
    assert result.success
    return result.run_id


def open_run_databases(home: Path) -> set[str]:
    """Names of the run databases under ``home`` this process has open (its file descriptors)."""
    runs = home / "history" / "runs"
    names = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = Path(os.readlink(fd))
        except OSError:  # closed since listed
            continue
        if target.parent == runs and target.suffix == ".db" and target.stem != "index":
            names.add(target.stem)
    return names


def test_the_project_instance_stores_its_events_under_history_runs_through_the_pooled_storage(
    tmp_path: Path,
) -> None:
    write_home(tmp_path, pooled=True)

    with instance_at(tmp_path) as instance:
        run_id = materialize(instance)
        storage = instance.event_log_storage
        stored = instance.get_latest_materialization_event(lessons.key)

    assert type(storage) is PooledSqliteEventLogStorage
    assert (tmp_path / "history" / "runs" / f"{run_id}.db").is_file()
    assert (tmp_path / "history" / "runs" / "index.db").is_file()
    assert stored is not None and stored.run_id == run_id


@pytest.mark.parametrize("first", ["pooled", "dagster's own"])
def test_either_class_reads_what_the_other_stored_so_switching_needs_no_migration(
    tmp_path: Path, first: str
) -> None:
    write_home(tmp_path, pooled=first == "pooled")
    with instance_at(tmp_path) as instance:
        run_id = materialize(instance)
        logs = [entry.dagster_event_type for entry in instance.all_logs(run_id)]

    write_home(tmp_path, pooled=first != "pooled")
    with instance_at(tmp_path) as instance:
        read = [entry.dagster_event_type for entry in instance.all_logs(run_id)]
        materialization = instance.get_latest_materialization_event(lessons.key)
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [lessons_are_counted.check_key]
        )[lessons_are_counted.check_key]
        later = materialize(instance)
        latest = instance.get_latest_materialization_event(lessons.key)

    assert read == logs and dg.DagsterEventType.ASSET_MATERIALIZATION in read
    assert materialization is not None and materialization.run_id == run_id
    assert check.run_id == run_id and check.status.value == "SUCCEEDED"
    assert latest is not None and latest.run_id == later


def test_a_long_lived_process_keeps_only_the_newest_run_databases_open(tmp_path: Path) -> None:
    write_home(tmp_path, pooled=True)

    with instance_at(tmp_path) as instance:
        run_ids = [materialize(instance) for _ in range(RUN_SHARDS_KEPT_OPEN + 3)]
        open_while_running = open_run_databases(tmp_path)
    after_dispose = open_run_databases(tmp_path)

    assert open_while_running == set(run_ids[-RUN_SHARDS_KEPT_OPEN:])
    assert after_dispose == set()


def test_a_deleted_run_leaves_no_database_open(tmp_path: Path) -> None:
    write_home(tmp_path, pooled=True)

    with instance_at(tmp_path) as instance:
        kept, deleted = materialize(instance), materialize(instance)
        instance.delete_run(deleted)
        still_open = open_run_databases(tmp_path)
        remaining = [run.run_id for run in instance.get_runs()]

    assert still_open == {kept}
    assert remaining == [kept]


def test_without_base_dir_or_dagster_home_it_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)

    with pytest.raises(dg.DagsterInvariantViolationError, match=r"base_dir.*DAGSTER_HOME"):
        PooledSqliteEventLogStorage()


def test_an_explicit_base_dir_wins_over_dagster_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))

    storage = PooledSqliteEventLogStorage(base_dir=str(tmp_path / "events"))
    storage.dispose()

    assert (tmp_path / "events" / "index.db").is_file()
    assert not (tmp_path / "elsewhere").exists()


def parameters(function: object) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]  # type: ignore[arg-type]


def test_every_method_it_overrides_still_exists_in_dagsters_class_with_the_same_signature() -> None:
    # The class leans on Dagster internals (the pins are exact): an upgrade that renames or
    # reshapes one of these fails here, not as a silently slower or broken event log.
    parent = PooledSqliteEventLogStorage.__mro__[1]
    own = {
        name
        for name, value in vars(PooledSqliteEventLogStorage).items()
        if callable(value) and not name.startswith("__") and name not in {"_engine", "_forget"}
    }

    assert parent.__name__ == "SqliteEventLogStorage"
    for name in own - {"config_type", "from_config_value"}:
        assert parameters(getattr(parent, name)) == parameters(
            getattr(PooledSqliteEventLogStorage, name)
        ), name
    assert event_log_storage.SqliteEventLogStorage is parent
