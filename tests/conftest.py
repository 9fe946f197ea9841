"""Fixtures shared across test folders."""

from __future__ import annotations

import pytest
from demo_support import DemoRun, demo_run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first: Spark's, then those marked ``slow``, then the rest, each group in
    its collected order. With `make test`'s workers (pytest-xdist, a file at a time), a long file
    that started last would run alone at the end."""
    items.sort(key=_rank)


def _rank(item: pytest.Item) -> int:
    for rank, marker in enumerate(("spark", "slow")):
        if item.get_closest_marker(marker) is not None:
            return rank
    return 2


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    run = demo_run(tmp_path_factory.getbasetemp())
    assert run.returncode == 0, f"demo failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run
