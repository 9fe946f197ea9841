"""Fixtures shared across test folders."""

from __future__ import annotations

import pytest
from demo_support import DemoRun, demo_run


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    run = demo_run(tmp_path_factory.getbasetemp())
    assert run.returncode == 0, f"demo failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run
