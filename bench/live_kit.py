"""A live deployment in a temp dir (`up` or `live`), its traffic, and what is visible in it.

Shared by ``bench/freshness.py``, ``bench/microbatch.py`` and the live tests (tests/live): free
ports, its own landing/warehouse/exports/DAGSTER_HOME, the worker's per-run stats file, signed
deliveries posted one by one, and the completions and learner events visible in
``exports/query.duckdb``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import orjson

from pipeline.cli.demo import Workspace
from pipeline.receiver.landing_format import delivery_id
from pipeline.settings import REPO_ROOT, Settings, load_settings
from pipeline.simulator.deliveries import Delivery

if TYPE_CHECKING:
    from dagster import DagsterInstance

SECRET = "whsec_live_bench_secret_4d1f"
WEBHOOK_PATH = "/webhooks/edume"
READY_LINE = "live: watching"
COMPLETED = "learner.course.completed"


@contextlib.contextmanager
def instance_at(home: Path) -> Iterator[DagsterInstance]:
    """The Dagster instance of ``home``, opened as a deployment's processes open it: with
    ``DAGSTER_HOME`` set to ``home`` (the project's event log storage finds its files from that
    variable), restored afterwards."""
    import dagster as dg  # here: the traffic side of a bench need not load Dagster

    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = dg.DagsterInstance.get()
    finally:
        if before is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = before
    with instance:
        yield instance


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_under(root: Path) -> Settings:
    """DuckDB settings with the landing dir (created), warehouse and exports under ``root``, for
    a worker built in this process (no receiver: no secrets)."""
    (root / "landing").mkdir(parents=True, exist_ok=True)
    return load_settings(
        {
            "EDUME_LANDING_DIR": str(root / "landing"),
            "EDUME_WAREHOUSE": str(root / "edume.duckdb"),
            "EDUME_EXPORT_DIR": str(root / "exports"),
        }
    )


def completion_key(body: bytes) -> tuple[int, int] | None:
    """(learner_id, course_id) of a ``learner.course.completed`` body, else None."""
    event = orjson.loads(body)
    if event.get("type") != COMPLETED:
        return None
    payload = event["payload"]
    return int(payload["user"]["userId"]), int(payload["course"]["courseId"])


def is_learner_event(body: bytes) -> bool:
    return str(orjson.loads(body).get("type", "")).startswith("learner.")


@dataclass(frozen=True)
class Deployment(Workspace):
    """Paths (the demo's workspace layout), ports and environment of one local deployment under
    ``root``."""

    port: int = 0
    ui_port: int = 0
    dbt_project: Path | None = None  # default: the checkout's dbt_project/

    @property
    def stats(self) -> Path:
        return self.root / "live-stats.jsonl"

    @property
    def log(self) -> Path:
        return self.root / "deployment.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    @classmethod
    def under(cls, root: Path, dbt_project: Path | None = None) -> Deployment:
        root.mkdir(parents=True, exist_ok=True)
        deployment = cls(root, free_port(), free_port(), dbt_project)
        deployment.dagster_home.mkdir(exist_ok=True)
        shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", deployment.dagster_home)
        return deployment

    def instance(self) -> contextlib.AbstractContextManager[DagsterInstance]:
        """The deployment's Dagster instance (see :func:`instance_at`)."""
        return instance_at(self.dagster_home)

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, **super().env()}
        env.update(
            EDUME_ENGINE="duckdb",
            EDUME_SIGNATURE_SECRETS=SECRET,
            EDUME_PORT=str(self.port),
            EDUME_UI_PORT=str(self.ui_port),
            PYTHONUNBUFFERED="1",
            **extra,
        )
        return env

    def command(self, part: str, *, dagster: bool = True) -> list[str]:
        """``up`` (receiver, Dagster unless ``dagster`` is False, worker) or ``live`` alone."""
        argv = [sys.executable, "-m", "pipeline.cli", part]
        if part == "up" and not dagster:
            argv.append("--no-dagster")
        if self.dbt_project is not None and part == "live":
            argv += ["--dbt-project-dir", str(self.dbt_project)]
        return [
            *argv,
            "--dbt-target-path",
            str(self.root / "dbt_target"),
            "--stats-file",
            str(self.stats),
        ]

    def start(
        self, part: str = "up", *, dagster: bool = True, **env: str
    ) -> subprocess.Popen[bytes]:
        """Start it in its own process group, its output appended to :attr:`log`."""
        with open(self.log, "ab") as out:
            return subprocess.Popen(
                self.command(part, dagster=dagster),
                cwd=REPO_ROOT,
                env=self.env(**env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(
        self,
        ready: Callable[[], bool],
        deadline: float,
        what: str,
        process: subprocess.Popen[bytes],
    ) -> None:
        """Poll ``ready`` until true; AssertionError (with the log's tail) past ``deadline`` or
        when ``process`` exits first."""
        while not ready():
            if process.poll() is not None:
                raise AssertionError(f"exited ({process.returncode}) before {what}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} by the deadline:\n{self.tail()}")
            time.sleep(0.5)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def ready(self) -> bool:
        return READY_LINE in self.log_text()

    def reports(self) -> list[dict]:
        """The worker's per-run records (see pipeline.live.worker.BatchReport)."""
        if not self.stats.exists():
            return []
        return [json.loads(line) for line in self.stats.read_text().splitlines() if line]

    def visible(self) -> tuple[set[tuple[int, int]], set[str]]:
        """Completed (learner_id, course_id) pairs and learner event ids in query.duckdb."""
        query = self.exports / "query.duckdb"
        if not query.exists():
            return set(), set()
        try:
            with duckdb.connect(str(query), read_only=True) as con:
                done = con.execute(
                    "select learner_id, course_id from fct_learner_course_progress "
                    "where completed_at is not null"
                ).fetchall()
                events = con.execute("select learner_event_id from fct_learner_activity").fetchall()
        except duckdb.Error:  # an export swapping files under us: look again next time
            return set(), set()
        return {(int(a), int(b)) for a, b in done}, {e for (e,) in events}


def stop(process: subprocess.Popen[bytes], timeout_s: float = 180.0) -> int:
    """SIGTERM the leader, wait, then SIGKILL whatever is left of its process group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait()


class Poster:
    """One keep-alive connection posting signed deliveries; each call returns the status."""

    def __init__(self, url: str) -> None:
        self.url = url
        host_port = url.split("/")[2]
        self.host, port = host_port.split(":")
        self.port = int(port)
        self.path = WEBHOOK_PATH
        self.connection: http.client.HTTPConnection | None = None

    def post(self, delivery: Delivery) -> int:
        """The status, or 0 when the receiver did not answer within ~5 minutes of retries (a
        loaded machine can stall it for a while; eduMe retries the same way)."""
        headers = {"content-type": "application/json", "x-edume-signature": delivery.signature}
        for attempt in range(10):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.connection.request("POST", self.path, body=delivery.body, headers=headers)
                response = self.connection.getresponse()
                response.read()
                return response.status
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                time.sleep(min(30.0, 0.5 * 2**attempt))
        return 0

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def delivery_key(delivery: Delivery) -> str:
    return delivery_id(delivery.body)


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, utime+stime+cutime+cstime in clock ticks) of every live process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] != "Z":  # a zombie has exited; only its reaping is left
            table[int(stat.parent.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    return table


def _tree(root_pid: int, table: dict[int, tuple[int, int]]) -> list[int]:
    found, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(child for child, (ppid, _) in table.items() if ppid == pid)
    return found


def descendants(root_pid: int) -> set[int]:
    """The live processes under ``root_pid`` (children, theirs, ...), ``root_pid`` excluded."""
    return set(_tree(root_pid, _process_table())) - {root_pid}


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (exited but not yet reaped counts as gone)."""
    return pids & set(_process_table())


def tree_cpu_s(root_pid: int) -> float:
    """utime+stime (with reaped children's) of ``root_pid`` and every descendant, in seconds."""
    table = _process_table()
    ticks = sum(table[pid][1] for pid in _tree(root_pid, table) if pid in table)
    return ticks / os.sysconf("SC_CLK_TCK")


def marts(warehouse: Path) -> dict[str, Counter]:
    """Every relation of schema ``marts`` as a multiset of its rows (compared both ways with
    ``-``: SQL's ``EXCEPT ALL``)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        return {
            name: Counter(con.execute(f'select * from marts."{name}"').fetchall()) for name in names
        }
