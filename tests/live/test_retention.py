"""Retention: a landing segment goes only once the manifest has listed it as loaded for long
enough; unloaded segments and the warehouse's rows stay."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

from bench.synthetic import event_body, landed_lines, write_segment
from pipeline.live.worker import LiveOptions, apply_retention
from pipeline.loader.ndjson import load_landing

OLD_DAY = datetime(2026, 1, 5, tzinfo=UTC)


def seal(landing: Path, name: str, day: datetime) -> Path:
    return write_segment(landing, name, landed_lines([event_body(len(name))], day), received_at=day)


def test_only_segments_loaded_long_ago_are_removed(tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "edume.duckdb"
    old = seal(landing, "loaded-long-ago", OLD_DAY)
    recent = seal(landing, "loaded-today", datetime.now(UTC))
    load_landing(landing, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update raw.edume_loaded_segments set loaded_at = loaded_at - interval 40 days "
            "where segment like '%loaded-long-ago%'"
        )
    unloaded = seal(landing, "not-loaded-yet", OLD_DAY)
    options = LiveOptions(run_retention_days=0, segment_retention_days=30)

    with dg.DagsterInstance.ephemeral() as instance:
        runs, segments = apply_retention(instance, landing, warehouse, options, log=print)

    assert (runs, segments) == (0, 1)
    assert not old.exists()
    assert recent.exists() and unloaded.exists()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from raw.edume_events").fetchone() == (2,)
        assert con.execute("select count(*) from raw.edume_loaded_segments").fetchone() == (2,)


def test_an_emptied_old_partition_directory_is_removed_too(tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "edume.duckdb"
    old = seal(landing, "alone", OLD_DAY)
    load_landing(landing, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update raw.edume_loaded_segments set loaded_at = loaded_at - interval 40 days")

    with dg.DagsterInstance.ephemeral() as instance:
        apply_retention(instance, landing, warehouse, LiveOptions(), log=print)

    assert not old.parent.exists()


def test_zero_days_keeps_every_segment(tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "edume.duckdb"
    old = seal(landing, "kept", OLD_DAY)
    load_landing(landing, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update raw.edume_loaded_segments set loaded_at = loaded_at - interval 400 days"
        )
    options = LiveOptions(run_retention_days=0, segment_retention_days=0)

    with dg.DagsterInstance.ephemeral() as instance:
        assert apply_retention(instance, landing, warehouse, options, log=print) == (0, 0)

    assert old.exists()
