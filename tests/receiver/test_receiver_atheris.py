"""A short run of each coverage-guided fuzz target (``fuzz/``), and proof that a finding fails it.

``make fuzz`` runs the same harnesses for minutes; here each gets a fixed number of cases with a
fixed libFuzzer seed (its Node-made seed corpus first), in a subprocess, a few seconds each.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import atheris  # noqa: F401 - the runner needs it: fail at collection, never skip, without it
import pytest
from system_tools import require

from pipeline.settings import REPO_ROOT

RUNNER = REPO_ROOT / "fuzz" / "run.py"
CASES = 60_000


def _fuzz(tmp_path: Path, target: str, *extra: str) -> tuple[int, dict]:
    if target == "signature_verify":
        require("node")  # the target's oracle is Node's JSON.stringify and crypto
    budget = ["--runs", str(CASES), "--seed", "20261129"]
    findings = ["--findings", str(tmp_path / "findings")]
    completed = subprocess.run(
        [sys.executable, str(RUNNER), *budget, *findings, *extra, target],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        # Only a guard against a hung fuzzer. A run takes about 20 s of CPU, but receiver_app waits
        # for a real fsync per accepted case: on a busy machine its wall time passed 120 s.
        timeout=900,
    )
    print(completed.stdout)
    (outcome,) = json.loads(completed.stdout.strip().splitlines()[-1])
    return completed.returncode, outcome


@pytest.mark.parametrize("target", ["signature_verify", "landing_line", "receiver_app"])
def test_fuzz_target_runs_its_cases_without_a_finding(tmp_path: Path, target: str) -> None:
    returncode, outcome = _fuzz(tmp_path, target)
    assert (returncode, outcome["crashed"]) == (0, False), outcome
    assert outcome["cases"] == CASES


# Mutants: each harness below breaks one production function the way a plausible bug would; the
# run must report a finding and keep the input that shows it.
MUTANTS = {
    "signature_verify": (
        "verify that never re-serialises",
        "from pipeline.receiver import signature\n"
        "signature.js_stringify_bytes = lambda body: None\n",
    ),
    "landing_line": (
        "parse_line that lets a missing key escape as KeyError",
        "from pipeline.receiver import landing_format\n"
        "import orjson\n"
        "real = landing_format.parse_line\n"
        "def leaky(line):\n"
        "    record = orjson.loads(line)\n"
        "    if isinstance(record, dict) and 'body' not in record:\n"
        "        raise KeyError('body')\n"
        "    return real(line)\n"
        "landing_format.parse_line = leaky\n",
    ),
    "receiver_app": (
        "app that trusts every signature",
        "from pipeline.receiver import app, signature\n"
        "app.verify = lambda body, headers, creds: signature.Authentication('hmac', 'raw', 0)\n",
    ),
}


@pytest.mark.parametrize(
    "target",
    ["signature_verify", "landing_line", "receiver_app"],
)
def test_fuzz_target_reports_a_finding_in_a_broken_build(tmp_path: Path, target: str) -> None:
    bug, patch = MUTANTS[target]
    harness = tmp_path / f"mutant_{target}.py"
    harness.write_text(
        f"import sys\nsys.path.insert(0, {str(RUNNER.parent)!r})\nimport {target}\n"
        f"{patch}{target}.main()\n"
    )
    returncode, outcome = _fuzz(tmp_path, target, "--harness", str(harness))
    assert (returncode, outcome["crashed"]) == (1, True), f"missed: {bug}"
    assert list((tmp_path / "findings" / target).glob("crash-*")), "the crashing input was kept"
