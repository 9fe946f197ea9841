"""``edume-pipeline up`` (``make up``): the whole local deployment in one command.

Starts, each in its own process group:

- the receiver (``serve``) on ``EDUME_HOST``:``EDUME_PORT`` (default 127.0.0.1:8000);
- Dagster as a production deployment runs it, three processes: a code server (``dagster api
  grpc``) serving the code location ``edume`` (``pipeline.definitions``, as ``workspace.yaml``
  names it) on a Unix socket, and, once it answers, the UI (``dagster-webserver``) on
  ``EDUME_UI_HOST``:``EDUME_UI_PORT`` (default 127.0.0.1:3000: the UI has no authentication, so
  loopback unless told otherwise) and the daemon (``dagster-daemon run``), both reading the code
  location from that server; ``DAGSTER_HOME`` defaults to the project's ``dagster_home/`` (its
  ``dagster.yaml``). ``dagster dev`` would add a proxy code server, a fourth process whose idle
  loops cost about 0.7 CPU-s a minute;
- the live worker (``live``), which keeps ``marts.*`` and the exports fresh in seconds.

It prints where each part listens. SIGINT (Ctrl-C) or SIGTERM stops every part: SIGTERM to each
part's leader (the receiver seals its open segments, the worker finishes its batch), then, after
a grace period, SIGKILL to whatever is left in each part's process group, so nothing is orphaned.
If one part exits on its own, the others are stopped too and the exit code is 1. The code server
and the worker import the definitions once: after changing code, restart ``up`` (the UI's
"Reload" asks the running code server again, it does not re-import).

Every part reads the same ``EDUME_*`` variables (secrets, landing, warehouse, exports, engine).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from pipeline.settings import REPO_ROOT, SettingsError, load_settings

GRACE_S = 90.0  # the worker may be mid-batch: a micro-batch's dbt build takes seconds, not minutes
EXIT_PART_DIED = 1
UP_SENSOR_INTERVAL_S = 60
CODE_LOCATION = "edume"


@dataclass
class Part:
    name: str
    argv: list[str]
    where: str = ""
    after: Path | None = None  # started once this path exists (the code server's socket)
    process: subprocess.Popen[bytes] | None = None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-dagster",
        action="store_true",
        help="leave out Dagster's UI and daemon (receiver and live worker only)",
    )
    parser.add_argument(
        "--dbt-target-path",
        type=Path,
        default=None,
        help="the live worker's dbt target path (default: dbt_project/target)",
    )
    parser.add_argument(
        "--stats-file",
        type=Path,
        default=None,
        help="the live worker appends one JSON line per run here",
    )


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"{name} must be a TCP port number, got {raw!r}")
    return int(raw)


def dagster_parts(run_dir: Path, ui_host: str, ui_port: int) -> list[Part]:
    """Dagster as a production deployment runs it: one code server, and the UI and the daemon
    reading the code location from it (``dagster dev`` adds a proxy code server in between, a
    fourth process whose idle loops cost about as much CPU as the daemon's)."""
    socket = run_dir / "code.sock"
    workspace = run_dir / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - grpc_server:\n      socket: {socket}\n"
        f"      location_name: {CODE_LOCATION}\n"
    )
    bin_dir = Path(sys.executable).parent
    ui_at = ("-h", ui_host, "-p", str(ui_port))
    workspace_at = ("-w", str(workspace))
    return [
        Part(
            "code",
            [
                str(bin_dir / "dagster"),
                *("api", "grpc", "--socket", str(socket), "--location-name", CODE_LOCATION),
                *("--module-name", "pipeline.definitions", "--working-directory", str(REPO_ROOT)),
                *("--log-level", "warning"),
            ],
            f"{socket} (code location {CODE_LOCATION!r}, as workspace.yaml names it)",
        ),
        Part(
            "ui",
            [str(bin_dir / "dagster-webserver"), *workspace_at, *ui_at],
            f"http://{ui_host}:{ui_port}",
            after=socket,
        ),
        Part("daemon", [str(bin_dir / "dagster-daemon"), "run", *workspace_at], after=socket),
    ]


def parts(args: argparse.Namespace, run_dir: Path) -> list[Part]:
    """What ``up`` starts, in start order (the worker last; with Dagster, once the code server
    answers)."""
    settings = load_settings()  # fail early, with the variable's name, on a malformed setting
    host = os.environ.get("EDUME_HOST", "").strip() or "127.0.0.1"
    port = _port("EDUME_PORT", 8000)
    ui_host = os.environ.get("EDUME_UI_HOST", "").strip() or "127.0.0.1"
    ui_port = _port("EDUME_UI_PORT", 3000)
    cli = [sys.executable, "-m", "pipeline.cli"]
    live = [*cli, "live"]
    if args.dbt_target_path is not None:
        live += ["--dbt-target-path", str(args.dbt_target_path)]
    if args.stats_file is not None:
        live += ["--stats-file", str(args.stats_file)]
    found = [
        Part(
            "receiver",
            [*cli, "serve", "--host", host, "--port", str(port)],
            f"http://{host}:{port}/webhooks/edume (health /healthz, metrics /metrics)",
        ),
    ]
    code_socket = None
    if not args.no_dagster:
        found += dagster_parts(run_dir, ui_host, ui_port)
        code_socket = found[-1].after
    found.append(
        Part(
            "live",
            live,
            f"{settings.landing_dir.resolve()} -> {settings.warehouse.resolve()} -> "
            f"{settings.export_dir.resolve()}/query.duckdb",
            # On a fresh checkout the code server writes the dbt manifest first (dbt parse); the
            # worker parses into the same target dir, so it waits instead of racing it.
            after=code_socket,
        )
    )
    return found


def run(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    env.setdefault("DAGSTER_HOME", str(REPO_ROOT / "dagster_home"))
    # The live worker keeps the marts fresh; Dagster's sensor only skips while it runs, and each
    # of its ticks costs the daemon and the code server CPU: once a minute is enough here.
    env.setdefault("EDUME_SENSOR_INTERVAL_S", str(UP_SENSOR_INTERVAL_S))
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    stopping: list[int] = []

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    # The code server's socket and the workspace file naming it: short-lived, so not in the repo.
    with tempfile.TemporaryDirectory(prefix="edume-up-") as run_dir:
        started = parts(args, Path(run_dir))
        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for part in started:
                if part.after is None:
                    _start(part, env)
            print(f"up: DAGSTER_HOME={env['DAGSTER_HOME']}; Ctrl-C stops every part", flush=True)
            died = _wait(started, stopping, env)
        finally:
            _stop(started)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if died is not None:
        print(f"up: {died.name} exited ({died.process.returncode}); stopped the rest", flush=True)
        return EXIT_PART_DIED
    print("up: stopped", flush=True)
    return 0


def _start(part: Part, env: dict[str, str]) -> None:
    part.process = subprocess.Popen(part.argv, cwd=REPO_ROOT, env=env, start_new_session=True)
    where = f" {part.where}" if part.where else ""
    print(f"up: {part.name:<8} pid {part.process.pid:<7}{where}", flush=True)


def _wait(started: list[Part], stopping: list[int], env: dict[str, str]) -> Part | None:
    """Until a stop is requested (None) or a part exits on its own (that part); starts each
    waiting part once its ``after`` path exists."""
    while not stopping:
        for part in started:
            if part.process is None:
                if part.after is not None and part.after.exists():
                    _start(part, env)
            elif part.process.poll() is not None:
                return part
        time.sleep(0.5)
    return None


def _stop(started: list[Part]) -> None:
    running = [p for p in started if p.process is not None]
    for part in reversed(running):  # the worker first: it finishes its batch meanwhile
        if part.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                part.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for part in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            part.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        # The leader is gone (or late): nothing of its group may outlive `up`.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(part.process.pid, signal.SIGKILL)
        part.process.wait()
