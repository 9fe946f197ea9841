"""Fixtures shared by the warehouse tests: a dbt runner per warehouse, with fixed vars."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fixture_company import AS_OF
from warehouse_harness import DbtRunner

# as_of is fixed so results are reproducible; the lookback is pinned to the exact 0 (the
# default) so an incremental run reads only the rows of the newer load.
TEST_VARS = json.dumps({"as_of": AS_OF, "incremental_lookback_minutes": 0})


@pytest.fixture(scope="module")
def make_dbt(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], DbtRunner]:
    """A factory of dbt runners, one per warehouse, sharing one parse cache per module."""
    work_dir = tmp_path_factory.mktemp("dbt")

    def make(warehouse: Path) -> DbtRunner:
        return DbtRunner(warehouse=warehouse, work_dir=work_dir, vars_yaml=TEST_VARS)

    return make
