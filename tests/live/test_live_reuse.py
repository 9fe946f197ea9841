"""After its first batch, the live worker leaves in place the views and seeds that cannot have
changed (:func:`pipeline.defs.assets.reusable_nodes`): dbt does not rebuild them, every data test
still runs, and Dagster reports them materialized and not rebuilt. A failed batch makes the next
one rebuild everything, so a view someone dropped comes back.

In-process (the worker's own ``run_batch``: real Dagster runs, a real ``dbt build``, read back
from dbt's ``run_results.json``). No timing is asserted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.defs.assets import REBUILT_METADATA, EdumeDbtTranslator, reusable_nodes
from pipeline.live.worker import BatchReport, LiveWorker
from pipeline.simulator.deliveries import Noise, stream_bodies
from pipeline.simulator.generate import default_end, journeys
from pipeline.simulator.post import land_bodies

pytestmark = [pytest.mark.slow]

SEED = 20261204
DROPPED_VIEW = "stg_edume__course_events"


def _bodies(learners: int) -> list[bytes]:
    truth, batches = journeys(learners, SEED, default_end())
    return list(stream_bodies(batches, Noise(), SEED, truth))


def _batch(worker: LiveWorker, bodies: list[bytes]) -> BatchReport:
    land_bodies(worker.landing, bodies, datetime.now(UTC))
    report = worker.run_batch(worker.poll())
    assert report is not None
    return report


def _dbt_results(target: Path) -> dict[str, str]:
    """unique_id -> status of every node of the latest dbt build."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {result["unique_id"]: result["status"] for result in results}


def _staged(worker: LiveWorker) -> int:
    """Learner events in the staging view."""
    with duckdb.connect(str(worker.warehouse), read_only=True) as con:
        (count,) = con.execute("select count(*) from staging.stg_edume__learner_events").fetchone()
    return int(count)


def _tests(results: dict[str, str]) -> dict[str, str]:
    return {uid: status for uid, status in results.items() if uid.startswith("test.")}


@pytest.fixture
def later_bodies(live_worker: LiveWorker) -> list[bytes]:
    """After a first, successful batch of most of a company's traffic: the rest of it."""
    bodies = _bodies(8)
    assert _batch(live_worker, bodies[:-6]).success
    return bodies[-6:]


def test_a_later_batch_rebuilds_no_reusable_node_and_runs_every_test(
    live_worker: LiveWorker, later_bodies: list[bytes], tmp_path: Path
) -> None:
    target = tmp_path / "dbt_target"
    manifest = json.loads((target / "manifest.json").read_text())
    reusable = reusable_nodes(manifest)
    first = _dbt_results(target)
    staged_before = _staged(live_worker)

    second_report = _batch(live_worker, later_bodies)
    second = _dbt_results(target)

    assert second_report.success
    kinds = {manifest["nodes"][uid]["resource_type"] for uid in reusable}
    assert kinds == {"model", "seed"}
    assert set(reusable) <= set(first)  # the first batch built them
    assert not set(reusable) & set(second)  # the second left them as they were
    assert _tests(second) == _tests(first)  # every data test, on both
    assert set(_tests(second).values()) == {"pass"}
    translator = EdumeDbtTranslator()
    for unique_id in reusable:
        key = translator.get_asset_spec(manifest, unique_id, None).key
        event = live_worker.instance.get_latest_materialization_event(key)
        assert event is not None and event.run_id == second_report.run_id, unique_id
        assert event.asset_materialization.metadata[REBUILT_METADATA].value is False
    assert _staged(live_worker) > staged_before  # a view kept in place reads the new data


def test_after_a_failed_batch_the_next_rebuilds_a_dropped_view(
    live_worker: LiveWorker, later_bodies: list[bytes], tmp_path: Path
) -> None:
    target = tmp_path / "dbt_target"
    with duckdb.connect(str(live_worker.warehouse)) as con:
        con.execute(f"drop view staging.{DROPPED_VIEW}")

    failed = _batch(live_worker, later_bodies)  # kept the views: one is gone
    caught_up = live_worker.run_batch([])  # loaded, not built: the worker catches up

    assert not failed.success
    assert caught_up is not None and caught_up.success
    assert _dbt_results(target)[f"model.edume.{DROPPED_VIEW}"] == "success"
    with duckdb.connect(str(live_worker.warehouse), read_only=True) as con:
        (views,) = con.execute(
            "select count(*) from duckdb_views() where view_name = $name", {"name": DROPPED_VIEW}
        ).fetchone()
    assert views == 1
