"""An export SIGKILLed while writing leaves its files aside; the next export removes them, and
never the files of an export that is still running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipeline.export import export_marts
from pipeline.settings import REPO_ROOT

ROWS = 3_000_000  # enough that writing the parquet takes a while to kill it in the middle
EXPORT = (
    "import sys; from pathlib import Path; from pipeline.export import export_marts; "
    "export_marts(Path(sys.argv[1]), Path(sys.argv[2]))"
)


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "edume.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            f"create table marts.fct_big as select range as id, md5(range::varchar) as label "
            f"from range({ROWS})"
        )
    return path


def _hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_the_next_export_removes_what_a_killed_export_left_aside(
    tmp_path: Path, warehouse: Path
) -> None:
    # Found by tests/defs/test_materialize_crash.py's kill inside the export step: every killed
    # export left a ".<mart>.parquet.<pid>.tmp" (as big as the mart) behind, for ever.
    exports = tmp_path / "exports"
    export = subprocess.Popen(
        [sys.executable, "-c", EXPORT, str(warehouse), str(exports)],
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not (exports.is_dir() and _hidden(exports)) and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(export.pid, signal.SIGKILL)
    export.wait()
    assert _hidden(exports), "the export was not killed while writing aside"

    export_marts(warehouse, exports)

    assert _hidden(exports) == []
    with duckdb.connect() as con:
        count = con.execute(f"select count(*) from '{exports / 'fct_big.parquet'}'").fetchone()
    assert count == (ROWS,)


def test_export_leaves_the_files_of_a_running_export_alone(tmp_path: Path, warehouse: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        theirs = exports / f".fct_big.parquet.{running.pid}.tmp"
        theirs.write_bytes(b"being written")

        export_marts(warehouse, exports)

        assert theirs.read_bytes() == b"being written"
    finally:
        running.kill()
        running.wait()


def _unfinished_versions(exports: Path) -> list[str]:
    versions = exports / ".fct_learner_activity.versions"
    return sorted(p.name for p in versions.glob(".v*.tmp")) if versions.is_dir() else []


def test_the_next_export_removes_a_monthly_version_a_killed_export_left_unfinished(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "edume.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.fct_learner_activity as select md5(range::varchar) as "
            "learner_event_id, timestamp '2024-01-01' + to_seconds(range * 10) as occurred_at "
            f"from range({ROWS})"
        )
    exports = tmp_path / "exports"
    export = subprocess.Popen(
        [sys.executable, "-c", EXPORT, str(warehouse), str(exports)],
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not _unfinished_versions(exports) and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(export.pid, signal.SIGKILL)
    export.wait()
    assert _unfinished_versions(exports), "the export was not killed while writing a version"
    assert not (exports / "fct_learner_activity").exists()  # nothing published half-written

    export_marts(warehouse, exports)

    assert _unfinished_versions(exports) == []
    assert _hidden(exports) == [".fct_learner_activity.versions"]
    with duckdb.connect(str(exports / "query.duckdb"), read_only=True) as con:
        count = con.execute("select count(*) from fct_learner_activity").fetchone()
    assert count == (ROWS,)
