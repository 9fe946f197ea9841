"""One writer at a time: an inter-process lock beside the DuckDB warehouse file.

DuckDB lets one process open a database file for writing, and a second ``connect`` fails at once
with "Could not set lock on file". Every piece of the pipeline that opens the warehouse (loader,
dbt, export, asset checks) does so inside :func:`warehouse_lock`, so a second run WAITS for the
first instead of failing. The lock is an ``flock`` on ``<warehouse>.lock``: the kernel releases it
when the holder dies, so a killed run never leaves a stale lock behind.

The lock is re-entrant within one process (a run that holds it may call the loader, which takes it
again), and exclusive across processes.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


class WarehouseLockTimeout(TimeoutError):
    """The warehouse stayed locked by another process for longer than the caller would wait."""


@dataclass
class _Held:
    handle: IO[str]
    depth: int = 0
    owner: int = field(default_factory=threading.get_ident)


_HELD: dict[Path, _Held] = {}
_GUARD = threading.RLock()


def lock_path(warehouse: Path) -> Path:
    """Where the lock for ``warehouse`` lives: ``<warehouse>.lock``, beside it."""
    warehouse = Path(warehouse).resolve()
    return warehouse.with_name(warehouse.name + ".lock")


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def warehouse_lock(
    warehouse: Path,
    *,
    timeout_s: float | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the exclusive writer lock of ``warehouse`` for the ``with`` block.

    Waits (polling every 0.2 s) while another process holds it; ``on_wait`` is called once with a
    message naming the holder. Raises :class:`WarehouseLockTimeout` after ``timeout_s`` seconds
    (``None``: wait forever).
    """
    path = lock_path(warehouse)
    with _GUARD:
        held = _HELD.get(path)
        if held is not None and held.owner == threading.get_ident():
            held.depth += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _GUARD:
                held.depth -= 1
        return

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - closed in the finally below, which releases the lock
    try:
        _acquire(handle, path, timeout_s, on_wait)
        handle.seek(0)
        handle.truncate()
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        handle.write(f"pid {os.getpid()} since {since}")
        handle.flush()
        with _GUARD:
            _HELD[path] = _Held(handle)
        try:
            yield
        finally:
            with _GUARD:
                del _HELD[path]
            handle.seek(0)
            handle.truncate()
            handle.flush()
    finally:
        handle.close()  # closing releases the flock


def _acquire(
    handle: IO[str],
    path: Path,
    timeout_s: float | None,
    on_wait: Callable[[str], None] | None,
) -> None:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    warned = False
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if not warned:
            warned = True
            if on_wait is not None:
                on_wait(f"waiting for the warehouse lock {path} (held by {_holder(path)})")
        if deadline is not None and time.monotonic() >= deadline:
            raise WarehouseLockTimeout(
                f"the warehouse lock {path} is still held by {_holder(path)} after {timeout_s} s"
            )
        time.sleep(0.2)
