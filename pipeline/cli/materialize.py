"""``edume-pipeline materialize``: every asset once (load -> dbt build -> export), in-process.

Parses the dbt project first (so new models are picked up), then executes the pipeline job
with the ``DAGSTER_HOME`` instance when one is configured (the run then shows in ``dagster dev``),
else an ephemeral one. Prints one line per asset and failed check; exits 0 only when every step
succeeded. A second ``materialize`` (or a sensor run) waits for the warehouse lock.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # dagster is imported by run() only: `--help` stays fast
    from dagster import DagsterInstance, ExecuteInProcessResult

EXIT_FAILED = 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dbt-project-dir",
        type=Path,
        default=None,
        help="the dbt project to build (default: dbt_project/ of this checkout)",
    )
    parser.add_argument(
        "--dbt-target-path",
        type=Path,
        default=None,
        help="where dbt parse writes its manifest (default: dbt_project/target)",
    )


def run(args: argparse.Namespace) -> int:
    import dagster as dg

    from pipeline.definitions import build_definitions
    from pipeline.defs.jobs import PIPELINE_JOB
    from pipeline.defs.resources import edume_dbt_project, prepare_dbt_project
    from pipeline.settings import load_settings

    settings = load_settings()
    print(
        f"materialize: landing {settings.landing_dir.resolve()} -> warehouse "
        f"{settings.warehouse.resolve()} -> exports {settings.export_dir.resolve()} "
        f"(engine {settings.engine})",
        flush=True,
    )
    project = edume_dbt_project(args.dbt_project_dir, args.dbt_target_path)
    prepare_dbt_project(project)
    defs = build_definitions(project, settings)
    job = defs.resolve_job_def(PIPELINE_JOB)
    with _instance(dg) as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        _print_summary(result)
    if result.success:
        print("materialize: OK", flush=True)
        return 0
    print("materialize: FAILED (see the errors above)", file=sys.stderr, flush=True)
    return EXIT_FAILED


def _instance(dg: ModuleType) -> DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral(tempdir=tempfile.gettempdir())


def _print_summary(result: ExecuteInProcessResult) -> None:
    """One line per materialized asset, failed step and asset check, in the order they happened."""
    for event in result.all_events:
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            meta = {
                k: v.value for k, v in mat.metadata.items() if k.startswith(("rows", "segments"))
            }
            extra = f" {meta}" if meta else ""
            print(f"  materialized {mat.asset_key.to_user_string()}{extra}", flush=True)
        elif event.is_step_failure:
            error = event.step_failure_data.error
            message = error.message.strip() if error else "unknown error"
            print(f"  FAILED step {event.step_key}: {message}", file=sys.stderr, flush=True)
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                print(
                    f"  check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} "
                    f"did not pass ({evaluation.severity.value})",
                    flush=True,
                )
