"""The receiver stays small: serving webhooks never imports the warehouse stack."""

from __future__ import annotations

import json
import subprocess
import sys

from pipeline.settings import REPO_ROOT

HEAVY = ("dagster", "duckdb", "dbt", "pandas", "pyarrow", "pyspark")


def test_the_receiver_and_its_landing_process_import_no_dagster_duckdb_or_dbt() -> None:
    # What `edume-pipeline serve` imports (the CLI, the app, its metrics) and what the landing
    # process imports, in a fresh interpreter, as a real start would.
    probe = (
        "import json, sys\n"
        "import pipeline.cli, pipeline.cli.serve, pipeline.receiver.app\n"
        "import pipeline.receiver.landing_process, pipeline.receiver.server\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(json.dumps(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == []
