"""Dagster resources: where the pipeline's files are, and the dbt project and CLI.

Everything is read from the ``EDUME_*`` variables through :func:`pipeline.settings.load_settings`
when :func:`build_resources` is called (by the Definitions), never at import time.
"""

import os
import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject

from pipeline.settings import DBT_PROJECT_DIR, Settings, load_settings


class EdumePaths(dg.ConfigurableResource):
    """The landing dir (read), the DuckDB warehouse (written) and the export dir (written)."""

    landing_dir: str
    warehouse: str
    export_dir: str
    engine: str = "duckdb"

    @classmethod
    def from_settings(cls, settings: Settings) -> "EdumePaths":
        return cls(
            landing_dir=str(settings.landing_dir.resolve()),
            warehouse=str(settings.warehouse.resolve()),
            export_dir=str(settings.export_dir.resolve()),
            engine=settings.engine,
        )

    @property
    def landing_path(self) -> Path:
        return Path(self.landing_dir)

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse)

    @property
    def export_path(self) -> Path:
        return Path(self.export_dir)

    def dbt_env(self) -> dict[str, str]:
        """The variables dbt's profiles.yml reads: an ABSOLUTE warehouse path, and the engine."""
        return {"EDUME_WAREHOUSE": self.warehouse, "EDUME_ENGINE": self.engine}


def edume_dbt_project(
    project_dir: Path | None = None, target_path: Path | None = None
) -> DbtProject:
    """The dbt project (default ``dbt_project/``, profiles.yml inside it); its manifest goes to
    ``target_path`` (default ``<project>/target``)."""
    project_dir = project_dir or DBT_PROJECT_DIR
    return DbtProject(
        project_dir=project_dir, profiles_dir=project_dir, target_path=target_path or Path("target")
    )


def ensure_dbt_on_path() -> None:
    """Put this interpreter's bin dir on PATH when ``dbt`` is not on it.

    dagster-dbt runs ``dbt`` from PATH (its preparer has no other setting), and
    ``.venv/bin/edume-pipeline`` or ``.venv/bin/dagster`` run without the venv activated.
    """
    if shutil.which("dbt") is None:
        bin_dir = str(Path(sys.executable).parent)
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])


def prepare_dbt_project(
    project: DbtProject, settings: Settings | None = None, *, in_process: bool = False
) -> None:
    """Run ``dbt parse`` now, writing the manifest the dbt assets are built from.

    With ``settings``, dbt parses with the variables the runs give it (:meth:`EdumePaths.dbt_env`):
    otherwise the first run's dbt finds a changed profile and parses everything again instead of
    reusing this parse (partial parsing). ``in_process`` (DuckDB): parse inside this process and
    keep the result for the builds that run there (:mod:`pipeline.defs.dbt_in_process`).
    """
    ensure_dbt_on_path()
    if settings is not None:
        os.environ.update(EdumePaths.from_settings(settings).dbt_env())
    if in_process and (settings or load_settings()).engine == "duckdb":
        from pipeline.defs import dbt_in_process

        dbt_in_process.parse(
            Path(project.project_dir), Path(project.profiles_dir), Path(project.target_path)
        )
    else:
        project.preparer.prepare(project)


def build_resources(
    project: DbtProject, settings: Settings | None = None, *, dbt_in_process: bool = False
) -> dict[str, object]:
    """``dbt_in_process``: dbt runs inside this process (the live worker, DuckDB only; see
    :mod:`pipeline.defs.dbt_in_process`), else as a ``dbt`` subprocess per run."""
    settings = settings or load_settings()
    dbt_cli = DbtCliResource
    if dbt_in_process and settings.engine == "duckdb":
        from pipeline.defs.dbt_in_process import InProcessDbtCliResource

        dbt_cli = InProcessDbtCliResource
    return {
        # The files the assets read and write, from the EDUME_* variables.
        "paths": EdumePaths.from_settings(settings),
        # The dbt CLI over dbt_project/ (profiles.yml beside it picks the target by EDUME_ENGINE).
        # Hard-coded: every run of this process gets this very object. dagster-dbt runs
        # `dbt --version` once per DbtCliResource object (a cached property), and would otherwise
        # build a new object, and ask again (a process start, and a request to PyPI), every run.
        "dbt": dg.ResourceDefinition.hardcoded_resource(
            dbt_cli(project_dir=project, profiles_dir=str(project.profiles_dir)),
            "dbt CLI over the project (one object per process)",
        ),
    }
