"""A real ``edume-pipeline materialize`` in a temp dir: its paths, a copy of the dbt project, runs.

Shared by the materialize tests (end to end, failing build, crash and re-run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.settings import DBT_PROJECT_DIR, REPO_ROOT

# A deadline, not a speed target: a broken run fails instead of hanging the suite. A run takes
# about a minute on a quiet 2-core machine, several when it is shared.
MATERIALIZE_TIMEOUT_S = 1200


@dataclass
class Pipeline:
    root: Path
    landing: Path
    warehouse: Path
    exports: Path
    dbt_project: Path

    @classmethod
    def under(cls, root: Path, dbt_project: Path) -> Pipeline:
        """Landing, warehouse and exports under ``root``; builds ``dbt_project``."""
        return cls(root, root / "landing", root / "edume.duckdb", root / "exports", dbt_project)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        env.update(
            EDUME_LANDING_DIR=str(self.landing),
            EDUME_WAREHOUSE=str(self.warehouse),
            EDUME_EXPORT_DIR=str(self.exports),
            EDUME_ENGINE="duckdb",
            PYTHONUNBUFFERED="1",  # the log shows each step as it happens
        )
        return env

    @property
    def log_file(self) -> Path:
        """Where materialize writes its full log (``--log-file``)."""
        return self.root / "materialize.log"

    def command(self, *options: str) -> list[str]:
        cli = [sys.executable, "-m", "pipeline.cli", "materialize", *options]
        return [*cli, "--dbt-project-dir", str(self.dbt_project), "--log-file", str(self.log_file)]

    def materialize(self, *options: str) -> subprocess.CompletedProcess[str]:
        """A run with ``options``; its output is the progress view and the summary."""
        return subprocess.run(
            self.command(*options),
            cwd=REPO_ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=MATERIALIZE_TIMEOUT_S,
        )

    def start(self, log: Path) -> subprocess.Popen[bytes]:
        """Start a run in the background, its full log (``--verbose``) to ``log`` (a pipe could
        fill and block it).

        The run leads its own process group (dbt runs in a child process), so a test can kill
        the whole run with ``os.killpg``.
        """
        with open(log, "w") as out:
            return subprocess.Popen(
                self.command("--verbose"),
                cwd=REPO_ROOT,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def export_snapshot(self) -> dict[str, bytes]:
        """Every file under the export dir (monthly versions, quality/, reporting/ included)."""
        return {
            str(p.relative_to(self.exports)): p.read_bytes()
            for p in sorted(self.exports.rglob("*"))
            if p.is_file()
        }


def copy_dbt_project(destination: Path, *, as_of: str | None = None) -> Path:
    """A copy of the dbt project (without build output); with var ``as_of`` pinned if given, so
    marts that depend on "now" are reproducible."""
    shutil.copytree(
        DBT_PROJECT_DIR,
        destination,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    if as_of is not None:
        config = destination / "dbt_project.yml"
        lines = config.read_text().splitlines(keepends=True)
        pinned = [f"  as_of: '{as_of}'\n" if ln.startswith("  as_of:") else ln for ln in lines]
        assert pinned != lines, "dbt_project.yml no longer declares var as_of"
        config.write_text("".join(pinned))
    return destination
