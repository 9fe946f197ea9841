"""The parity tests reuse the warehouse tests' fixture company and harness (tests/dbt) and the
materialize kit (tests/defs), whose modules import one another by bare name, as pytest's default
import mode allows there."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from system_tools import require

# Why at import: pytest imports this conftest before collecting test_parity.py, whose imports
# of fixture_company and warehouse_harness need tests/dbt on the path.
# The Spark run is a real `materialize`, driven by tests/defs' kit.
for _shared in ("dbt", "defs"):
    _path = str(Path(__file__).resolve().parent.parent / _shared)
    if _path not in sys.path:
        sys.path.insert(0, _path)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked ``spark`` runs Spark, which needs Java: without it, fail (never skip)."""
    if item.get_closest_marker("spark") is not None:
        require("java")
