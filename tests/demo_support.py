"""One real ``edume-pipeline demo`` run per test session, shared by test_demo and test_report.

The demo is the slowest thing these tests do (a receiver, a few thousand signed deliveries, a
full dbt build), so it runs once: :func:`demo_run` is cached per base directory, and both test
modules' fixtures pass the session's base temp directory.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.settings import REPO_ROOT

DEMO_LEARNERS = 150
DEMO_SEED = 11
DEMO_TIMEOUT_S = 600


@dataclass(frozen=True)
class DemoRun:
    returncode: int
    stdout: str
    stderr: str
    workspace: Path

    @property
    def warehouse(self) -> Path:
        return self.workspace / "warehouse" / "edume.duckdb"


def run_demo(workspace: Path, *extra: str, env: dict[str, str] | None = None) -> DemoRun:
    """``python -m pipeline.cli demo --workspace <workspace> ...`` from the repo root."""
    command = [sys.executable, "-m", "pipeline.cli", "demo", "--workspace", str(workspace), *extra]
    completed = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=DEMO_TIMEOUT_S, env=env
    )
    return DemoRun(completed.returncode, completed.stdout, completed.stderr, workspace)


@functools.cache
def demo_run(base: Path) -> DemoRun:
    """The session's shared demo run: a fixed seed and 150 learners, to keep CI quick."""
    return run_demo(
        base / "shared-demo", "--learners", str(DEMO_LEARNERS), "--seed", str(DEMO_SEED)
    )
