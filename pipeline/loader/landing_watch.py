"""Which landing segments were sealed since the last look: a cheap, pure watch (no Dagster).

The receiver seals a segment by renaming ``<id>.ndjson.open`` to ``<id>.ndjson`` inside its
``received_date=YYYY-MM-DD`` partition. A rename sets the file's inode change time (ctime) and the
directory's modification time, so the :class:`Cursor` (the newest ctime seen, and the names seen
at exactly that time) finds every newly sealed segment, and a partition whose directory did not
change since the cursor's time, or since this watcher last listed it, is skipped without listing
its files. A look therefore costs one ``stat`` per partition plus a listing of the partitions
that changed (usually today's), not a glob of months of segments; the landing sensor and the live
worker both use it.

A missed segment is never lost: the loader loads every sealed, unloaded segment whatever
triggered it. The watch only decides WHEN a load is worth starting.

A consumer that found nothing can also ask the receiver to seal at once (:func:`request_seal`)
instead of waiting for its idle seal.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.receiver.landing_format import PARTITION_PREFIX, SEAL_REQUEST, SEALED_SUFFIX

# A directory's mtime comes from a coarse clock (a tick: milliseconds locally, up to seconds on
# some network filesystems), so a change in the same tick as a listing may leave it unmoved; a
# listing is trusted to have seen everything only when it came this long after that mtime.
SETTLED_AFTER_NS = 2_000_000_000


@dataclass(frozen=True)
class Cursor:
    """The newest inode change time seen (a rename sets it) and the names seen at that time.

    ``settled``: partitions this watcher listed in full, at least ``SETTLED_AFTER_NS`` after their
    directory last changed, by name -> that directory's mtime. While it stays the same nothing
    was added, so a look skips them: without it, the partition holding the newest segment (its
    directory changed at the cursor's own time) was listed, with a ``stat`` per segment, at every
    look. Kept in memory only (the live worker's cursor); a parsed cursor lists them once more.
    """

    ctime_ns: int = 0
    names_at: tuple[str, ...] = ()
    settled: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(int(data["ctime_ns"]), tuple(data["names_at"]))

    def dump(self) -> str:
        return json.dumps({"ctime_ns": self.ctime_ns, "names_at": list(self.names_at)})


def _changed_partitions(
    landing_dir: Path, since_ns: int, settled: dict[str, int]
) -> list[tuple[os.DirEntry[str], int]]:
    """Partition directories whose entries may have changed at or after ``since_ns`` and since
    they were last listed (``settled``: see ``Cursor.settled``), each with its directory's mtime."""
    try:
        entries = list(os.scandir(landing_dir))
    except FileNotFoundError:
        return []
    changed = []
    for entry in entries:
        if not entry.name.startswith(PARTITION_PREFIX):
            continue
        try:
            info = entry.stat()
        except FileNotFoundError:
            continue
        if not entry.is_dir():
            continue
        # A rename inside the directory moves its mtime (and ctime) to at least the renamed
        # file's ctime; ">=" keeps a directory touched in the cursor's own clock tick.
        changed_ns = max(info.st_mtime_ns, info.st_ctime_ns)
        if changed_ns >= since_ns and settled.get(entry.name) != changed_ns:
            changed.append((entry, changed_ns))
    return changed


def new_segments(landing_dir: Path, cursor: Cursor) -> tuple[list[str], Cursor]:
    """Sealed segments changed after ``cursor`` (names relative to ``landing_dir``), next cursor.

    Names are ``received_date=YYYY-MM-DD/<id>.ndjson``, sorted by change time then name. Open
    segments (``.ndjson.open``) are never returned.
    """
    seen: list[tuple[int, str]] = []
    settled = dict(cursor.settled)
    for partition, changed_ns in _changed_partitions(landing_dir, cursor.ctime_ns, settled):
        listed_ns = time.time_ns()
        try:
            files = list(os.scandir(partition.path))
        except FileNotFoundError:  # removed by retention between the two listings
            settled.pop(partition.name, None)
            continue
        if listed_ns - changed_ns >= SETTLED_AFTER_NS:
            settled[partition.name] = changed_ns
        else:
            settled.pop(partition.name, None)
        for entry in files:
            if not entry.name.endswith(SEALED_SUFFIX):
                continue
            try:
                ctime_ns = entry.stat().st_ctime_ns
            except FileNotFoundError:  # moved away between listing and stat
                continue
            seen.append((ctime_ns, f"{partition.name}/{entry.name}"))
    fresh = sorted(
        (c, n)
        for c, n in seen
        if c > cursor.ctime_ns or (c == cursor.ctime_ns and n not in cursor.names_at)
    )
    kept = tuple(sorted(settled.items()))
    if not fresh:
        return [], Cursor(cursor.ctime_ns, cursor.names_at, kept)
    newest = max(c for c, _ in fresh)
    names_at = {n for c, n in seen if c == newest}
    if newest == cursor.ctime_ns:
        names_at |= set(cursor.names_at)
    return [n for _, n in fresh], Cursor(newest, tuple(sorted(names_at)), kept)


def request_seal(landing_dir: Path) -> bool:
    """Ask every landing writer to seal the segments it holds now (the request file's mtime set
    to this moment; see :mod:`pipeline.receiver.landing`, "Seal requests"). False if the landing
    dir cannot take it (missing, read-only): the writers then seal by their own clocks."""
    now_ns = time.time_ns()
    path = landing_dir / SEAL_REQUEST
    try:
        path.touch()  # made once; then only its time moves
        os.utime(path, ns=(now_ns, now_ns))
    except OSError:
        return False
    return True
