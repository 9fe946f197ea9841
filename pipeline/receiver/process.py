"""Run a real receiver as a child process on a free loopback port (for the demo and tests).

    with ReceiverProcess(landing_dir, secrets=["s3cret"]) as receiver:
        post(receiver.webhook_url, ...)
        code = receiver.stop()          # SIGTERM: flush, seal, exit 0

The child is ``python -m pipeline.cli serve --host 127.0.0.1 --port <free port>`` with
``EDUME_*`` set from the arguments; its stdout and stderr go to ``log_path`` (read it with
:meth:`ReceiverProcess.log_text`). No web framework is imported here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.settings import REPO_ROOT


def _no_proxy() -> urllib.request.OpenerDirector:
    """An opener that ignores http_proxy: loopback is never reached through a proxy."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _temporary_log() -> Path:
    fd, name = tempfile.mkstemp(prefix="edume-receiver-", suffix=".log")
    os.close(fd)
    return Path(name)


class ReceiverStartError(RuntimeError):
    """The receiver exited or did not answer ``/healthz`` in time; the message has its log."""


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ReceiverProcess:
    """A receiver child process. Starts in the constructor; waits until ``/healthz`` answers."""

    def __init__(
        self,
        landing_dir: Path,
        *,
        secrets: Sequence[str] = (),
        tokens: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        log_path: Path | None = None,
        startup_timeout_s: float = 30.0,
        preexec_fn: object = None,
        source_root: Path = REPO_ROOT,
    ) -> None:
        """``source_root``: the checkout whose ``pipeline`` package runs (the child's working
        directory); another one lets a benchmark compare an older version side by side."""
        self.landing_dir = Path(landing_dir)
        self._source_root = Path(source_root)
        self.log_path = Path(log_path) if log_path else _temporary_log()
        child_env = dict(os.environ if env is None else env)
        child_env.update(
            EDUME_LANDING_DIR=str(self.landing_dir),
            EDUME_SIGNATURE_SECRETS=",".join(secrets),
            EDUME_BEARER_TOKENS=",".join(tokens),
            PYTHONUNBUFFERED="1",
        )
        self._env = child_env
        self._args = list(args)
        self._preexec_fn = preexec_fn
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        for _attempt in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            self._spawn()
            if self._wait_healthy(startup_timeout_s):
                return
            if self.process is not None and self.process.poll() is None:
                self.kill()
                break
            if "address already in use" not in self.log_text().lower():
                break
        raise ReceiverStartError(f"receiver did not start; its log:\n{self.log_text()[-4000:]}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/edume"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _spawn(self) -> None:
        command = [
            sys.executable,
            "-m",
            "pipeline.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self._args,
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self._source_root,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=self._preexec_fn,  # type: ignore[arg-type]
            )

    def _wait_healthy(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with _no_proxy().open(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        return False

    def log_text(self) -> str:
        """Everything the receiver wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM, wait for the graceful exit, return the exit code (SIGKILL after timeout)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()

    def kill(self) -> int:
        """SIGKILL: the crash case. Returns the (negative) exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()

    def __enter__(self) -> ReceiverProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.running():
            self.stop()
