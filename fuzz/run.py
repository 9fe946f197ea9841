"""Run the coverage-guided fuzz targets (atheris/libFuzzer), each in its own process.

    python fuzz/run.py --seconds 60                  # every target for a minute (``make fuzz``)
    python fuzz/run.py --runs 20000 --seed 1 landing_line
    python fuzz/run.py --runs 5000 --harness my_mutant.py

Each target starts from its committed seeds (``fuzz/corpus/<target>/``, read-only) plus a scratch
corpus for what it discovers. A finding (an uncaught exception in the harness, a hang past
``--timeout`` seconds, a native crash) is saved under ``--findings`` and the exit status is 1.
The last line printed is a JSON summary: per target, the fuzz cases executed, seconds and whether
it crashed; the tests and the README figures read it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
REPO_ROOT = FUZZ_DIR.parent
TARGETS = ("signature_verify", "landing_line", "receiver_app")
_EXECUTED = re.compile(rb"stat::number_of_executed_units: (\d+)")
_PROGRESS = re.compile(rb"^#(\d+)\s", re.MULTILINE)


@dataclass(frozen=True)
class Outcome:
    target: str
    cases: int
    seconds: float
    crashed: bool
    findings: str | None  # where the crashing input and the log were kept


def executed_cases(log: bytes) -> int:
    """Fuzz cases libFuzzer executed, from its final stats (or its last progress line)."""
    found = _EXECUTED.findall(log) or _PROGRESS.findall(log)
    return int(found[-1]) if found else 0


def fuzz(
    harness: Path, target: str, limit: list[str], findings_root: Path, extra: list[str]
) -> Outcome:
    """Run one harness under ``limit`` (libFuzzer ``-runs=``/``-max_total_time=`` flags)."""
    work = Path(tempfile.mkdtemp(prefix=f"edume-fuzz-{target}-"))
    discovered, scratch = work / "corpus", work / "scratch"
    discovered.mkdir()
    scratch.mkdir()
    findings = findings_root / target
    findings.mkdir(parents=True, exist_ok=True)
    seeds = FUZZ_DIR / "corpus" / target
    command = [
        sys.executable,
        str(harness),
        *limit,
        f"-artifact_prefix={findings}/",
        "-print_final_stats=1",
        *extra,
        str(discovered),  # libFuzzer adds new inputs to the first directory only
        *([str(seeds)] if seeds.is_dir() else []),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "EDUME_FUZZ_WORKDIR": str(scratch)}
    started = time.monotonic()
    completed = subprocess.run(command, cwd=work, env=env, capture_output=True, check=False)
    seconds = time.monotonic() - started
    log = completed.stdout + completed.stderr
    crashed = completed.returncode != 0
    if crashed:
        (findings / "fuzz.log").write_bytes(log)
    shutil.rmtree(work, ignore_errors=True)
    return Outcome(
        target, executed_cases(log), round(seconds, 1), crashed, str(findings) if crashed else None
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", default=list(TARGETS), help="default: all")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--seconds", type=int, help="fuzz each target this long")
    budget.add_argument("--runs", type=int, help="fuzz each target for this many cases")
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer seed (0: random)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds before a case is a hang")
    parser.add_argument("--harness", type=Path, help="run this harness file (one target name)")
    parser.add_argument(
        "--findings", type=Path, default=None, help="where crashing inputs go (default: a tmp dir)"
    )
    args = parser.parse_args(argv)
    limit = [f"-runs={args.runs}"] if args.runs else [f"-max_total_time={args.seconds}"]
    extra = [f"-seed={args.seed}", f"-timeout={args.timeout}"]
    findings_root = args.findings or Path(tempfile.mkdtemp(prefix="edume-fuzz-findings-"))
    outcomes = []
    for target in args.targets:
        harness = args.harness or FUZZ_DIR / f"{target}.py"
        outcome = fuzz(harness, target, limit, findings_root, extra)
        verdict = f"CRASH, input and log in {outcome.findings}" if outcome.crashed else "no crash"
        print(f"fuzz {target}: {outcome.cases} cases in {outcome.seconds} s, {verdict}", flush=True)
        outcomes.append(outcome)
    if not any(o.crashed for o in outcomes):
        shutil.rmtree(findings_root, ignore_errors=True)
    print(json.dumps([asdict(o) for o in outcomes]))
    return 1 if any(o.crashed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
