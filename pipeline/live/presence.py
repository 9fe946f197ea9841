"""Is a live worker keeping this warehouse fresh? An ``flock`` on ``<warehouse>.live`` says so.

The live worker (``edume-pipeline live``) holds an exclusive ``flock`` on ``<warehouse>.live`` for
its whole lifetime (:func:`hold_live_presence`). Anyone else asks :func:`live_worker_running`,
which tries the same lock without waiting: the kernel releases it when the worker exits or is
killed, so a dead worker never looks alive. Dagster's landing sensor and hourly schedule skip
while it is True (the worker already runs every batch). This module imports no Dagster.

This is not the writer lock (``pipeline.warehouse_lock``): the worker holds presence while idle,
and takes the writer lock only for a batch, so ``materialize`` by hand still gets its turn.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LiveWorkerAlreadyRunning(RuntimeError):
    """Another live worker already holds the presence lock of this warehouse."""


def presence_path(warehouse: Path) -> Path:
    """``<warehouse>.live``, beside the warehouse file."""
    warehouse = Path(warehouse).resolve()
    return warehouse.with_name(warehouse.name + ".live")


def live_worker_running(warehouse: Path) -> bool:
    """True while some process holds the live presence lock of ``warehouse``.

    Never blocks and never creates the lock file: a missing file means no worker ever ran.
    """
    path = presence_path(warehouse)
    try:
        handle = open(path)  # noqa: SIM115 - closed in the finally below
    except FileNotFoundError:
        return False
    try:
        # A shared lock is refused while the worker holds its exclusive one, and otherwise
        # released at once: probing never blocks the worker from starting.
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        handle.close()
    return False


@contextmanager
def hold_live_presence(warehouse: Path) -> Iterator[Path]:
    """Hold the exclusive presence lock of ``warehouse`` for the ``with`` block.

    Raises :class:`LiveWorkerAlreadyRunning` at once (never waits) if another process holds it:
    two workers on one warehouse would only queue behind each other's writer lock. Yields the lock
    file's path, which names the holder's pid for a human.
    """
    path = presence_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - closed in the finally below, which releases the lock
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise LiveWorkerAlreadyRunning(
                f"a live worker already keeps {warehouse} fresh ({path}: {holder})"
            ) from None
        handle.seek(0)
        handle.truncate()
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        handle.write(f"pid {os.getpid()} since {since}")
        handle.flush()
        try:
            yield path
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
    finally:
        handle.close()
