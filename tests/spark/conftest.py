"""The parity tests reuse the warehouse tests' fixture company and harness (tests/dbt), whose
modules import one another by bare name, as pytest's default import mode allows there."""

from __future__ import annotations

import sys
from pathlib import Path

# Why at import: pytest imports this conftest before collecting test_parity.py, whose imports
# of fixture_company and warehouse_harness need tests/dbt on the path.
_WAREHOUSE_TESTS = str(Path(__file__).resolve().parent.parent / "dbt")
if _WAREHOUSE_TESTS not in sys.path:
    sys.path.insert(0, _WAREHOUSE_TESTS)
