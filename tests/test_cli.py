"""The command line explains itself: --version, a top-level help written for users (every
command on one line, every variable the code reads, no reStructuredText markup), serve's help
naming what it needs, and progress for simulate --landing as for --url."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

from pipeline.cli import COMMANDS
from pipeline.settings import REPO_ROOT

VARIABLE = re.compile(r"""["'(]((?:EDUME|DAGSTER)_[A-Z0-9_]*[A-Z0-9])["')]""")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def variables_read() -> set[str]:
    """Every EDUME_* (and DAGSTER_HOME) name the runtime code or dbt's profile reads."""
    sources = [*(REPO_ROOT / "pipeline").rglob("*.py"), REPO_ROOT / "dbt_project" / "profiles.yml"]
    found = {name for path in sources for name in VARIABLE.findall(path.read_text())}
    return {name for name in found if name.startswith("EDUME_") or name == "DAGSTER_HOME"}


def test_version_prints_the_installed_version() -> None:
    result = cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"edume-pipeline {importlib.metadata.version('edume-pipeline')}"


def test_top_level_help_lists_every_command_on_one_line_without_rst_markup() -> None:
    result = cli("--help")
    assert result.returncode == 0, result.stderr
    assert "`" not in result.stdout and "::" not in result.stdout
    lines = result.stdout.splitlines()
    for name, (_, help_text) in COMMANDS.items():
        assert any(re.fullmatch(rf"  {name} +{re.escape(help_text)}", line) for line in lines), name
    assert "make demo" in result.stdout


def test_top_level_help_names_every_environment_variable_the_code_reads() -> None:
    names = variables_read()
    assert {"EDUME_WAREHOUSE", "EDUME_SIGNATURE_SECRETS", "EDUME_SPARK_MASTER"} <= names
    help_lines = cli("--help").stdout.splitlines()
    for name in sorted(names):
        assert any(re.match(rf"  {name} +\S", line) for line in help_lines), name


def test_serve_help_says_a_secret_or_a_token_is_required() -> None:
    result = cli("serve", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "A secret or a token is required" in text
    assert "EDUME_SIGNATURE_SECRETS" in text and "EDUME_BEARER_TOKENS" in text


def test_simulate_landing_shows_progress_unless_quiet(tmp_path: Path) -> None:
    shown = cli("simulate", "--learners", "40", "--landing", str(tmp_path / "shown"))
    assert shown.returncode == 0, shown.stderr
    progress = [line for line in shown.stderr.splitlines() if "landing learners" in line]
    assert progress and progress[-1].split("]")[1].split()[0] == "41/41"
    assert "landed" in shown.stdout

    quiet = cli("simulate", "--learners", "40", "--landing", str(tmp_path / "quiet"), "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert "landing learners" not in quiet.stderr
    assert quiet.stdout.split("sealed")[0] == shown.stdout.split("sealed")[0]  # same lines
