"""Dagster's SQLite event log, with its database connections kept open between statements.

Dagster's ``SqliteEventLogStorage`` creates a SQLAlchemy engine, opens a connection and disposes
the engine for every statement it runs. A live micro-batch stores over 300 events as it goes
(each dbt model's output and materialization, each check planned and evaluated), about 500
writes with the copies of asset events in the cross-run index, and each store of an asset event
also re-read the index's table layout. That was about a seventh of a micro-batch
(``bench/microbatch.py``). This subclass keeps one engine (a small
connection pool) per shard instead: the index's for the life of the process, run shards' for the
most recent runs. Files, schema, queries and durability are Dagster's own (WAL journal, commit per
event), so an instance switches to or from it with no migration.

``dagster_home/dagster.yaml`` selects it::

    event_log_storage:
      module: pipeline.defs.event_log_storage
      class: PooledSqliteEventLogStorage
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

RUN_SHARDS_KEPT_OPEN = 4  # the running batch's shard, and readers of the last few runs


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """:class:`SqliteEventLogStorage` with one engine per shard, kept instead of made per call.

    ``base_dir`` defaults to ``$DAGSTER_HOME/history/runs``, where Dagster's default puts it.
    """

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()  # shard -> engine, oldest first
        self._tables_seen: set[str] = set()
        self._asset_key_columns_seen: set[str] = set()
        if base_dir is None:
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise dg.DagsterInvariantViolationError(
                    "PooledSqliteEventLogStorage needs `base_dir` in its config or DAGSTER_HOME set"
                )
            base_dir = os.path.join(home, "history", "runs")
        super().__init__(base_dir, inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": dg.Field(dg.StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        """The shard's engine, made on first use; the caller holds ``self._db_lock``."""
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = create_engine(
            self.conn_string_for_shard(shard),
            poolclass=QueuePool,
            pool_size=1,  # one statement at a time under the lock; _initdb briefly needs two
            max_overflow=4,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        self._engines[shard] = engine
        run_shards = [name for name in self._engines if name != INDEX_SHARD_NAME]
        for stale in run_shards[:-RUN_SHARDS_KEPT_OPEN]:
            self._engines.pop(stale).dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:  # the parent's, minus the engine churn
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    # Dagster asks whether a table or column exists before many statements; the layout only
    # grows (``dagster instance migrate``, with the processes stopped), so a "yes" is kept.

    def has_table(self, table_name: str) -> bool:
        if table_name not in self._tables_seen and super().has_table(table_name):
            self._tables_seen.add(table_name)
        return table_name in self._tables_seen

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        seen = self._asset_key_columns_seen
        if column_name not in seen and super()._has_asset_key_col_on_connection(conn, column_name):
            seen.add(column_name)
        return column_name in seen

    def _forget(self, shards: list[str]) -> None:
        with self._db_lock:
            for shard in shards:
                engine = self._engines.pop(shard, None)
                if engine is not None:
                    engine.dispose()

    def delete_events(self, run_id: str) -> None:
        super().delete_events(run_id)
        self._forget([run_id])

    def wipe(self) -> None:
        self._forget([name for name in self._engines if name != INDEX_SHARD_NAME])
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._forget(list(self._engines))
