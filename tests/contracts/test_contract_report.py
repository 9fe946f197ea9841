"""``edume-pipeline contract-report``, run as the operator runs it, on a real warehouse."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pytest
from contract_kit import body, documented_samples, land_and_check, learner_added

from pipeline.contracts.report import JSON_KEYS
from pipeline.contracts.schema import load_contracts
from pipeline.warehouse_lock import warehouse_lock

REPO = Path(__file__).resolve().parents[2]


def _deviating_events() -> list[dict[str, Any]]:
    """One of each kind: a renamed field, a wrong type, an extra field, a missing required
    field, an array item of a new shape."""
    renamed = learner_added(1, userId=None, id=1)
    wrong_type = learner_added(2, userId="2")
    extra = learner_added(3)
    extra["payload"]["locale"] = "en-GB"
    missing = documented_samples()[0]
    del missing["payload"]["course"]["title"]
    new_item = documented_samples()[1]
    new_item["payload"]["activities"] = [{"activityId": 1, "type": "video", "durationS": 30}]
    return [renamed, wrong_type, extra, missing, new_item]


def _cli(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "EDUME_WAREHOUSE": str(workspace / "warehouse.duckdb"),
        "EDUME_EXPORT_DIR": str(workspace / "exports"),
    }
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "contract-report", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


@pytest.fixture
def deviating(tmp_path: Path) -> Path:
    land_and_check(tmp_path, [body(e) for e in _deviating_events()])
    return tmp_path


def test_json_lists_each_deviation_with_the_documented_keys_and_exits_0(deviating: Path) -> None:
    done = _cli(deviating, "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert all(tuple(row) == JSON_KEYS for row in rows)
    found = {(r["event_type"], r["path"], r["problem"], r["seen"], r["deliveries"]) for r in rows}
    assert found == {
        ("learner.added", "payload.user.userId", "missing", "absent", 1),
        ("learner.added", "payload.user.id", "unexpected", "integer", 1),
        ("learner.added", "payload.user.userId", "type", "string", 1),
        ("learner.added", "payload.locale", "unexpected", "string", 1),
        ("course.added", "payload.course.title", "missing", "absent", 1),
        ("course.deleted", "payload.activities[].published", "missing", "absent", 1),
        ("course.deleted", "payload.activities[].durationS", "unexpected", "integer", 1),
    }


def test_strict_exits_1_on_a_deviation(deviating: Path) -> None:
    assert _cli(deviating, "--strict").returncode == 1


def test_strict_exits_0_when_every_delivery_matches(tmp_path: Path) -> None:
    land_and_check(tmp_path, [body(s) for s in documented_samples()])
    done = _cli(tmp_path, "--strict")
    assert done.returncode == 0, done.stderr
    assert "No deviation" in done.stdout


def test_text_names_the_staging_column_and_the_envelope(deviating: Path) -> None:
    done = _cli(deviating)
    assert done.returncode == 0, done.stderr
    assert "read by stg_edume__learner_events.learner_id" in done.stdout
    assert "content_type" in done.stdout


def test_proposed_contracts_accept_the_deviating_payloads(deviating: Path) -> None:
    proposals = deviating / "proposed"
    done = _cli(deviating, "--propose", str(proposals))
    assert done.returncode == 0, done.stderr
    for event in _deviating_events():
        shipped = jsonschema.Draft202012Validator(load_contracts()[event["type"]])
        proposed = json.loads((proposals / f"{event['type']}.json").read_text())
        jsonschema.Draft202012Validator.check_schema(proposed)
        assert not shipped.is_valid(event)
        jsonschema.Draft202012Validator(proposed).validate(event)
    # Nothing else changes: the documented samples still validate.
    for sample in documented_samples():
        proposed = json.loads((proposals / f"{sample['type']}.json").read_text())
        jsonschema.Draft202012Validator(proposed).validate(copy.deepcopy(sample))


def test_a_locked_warehouse_is_reported_from_the_last_runs_exports(deviating: Path) -> None:
    quality = deviating / "exports" / "quality"
    quality.mkdir(parents=True)
    warehouse = deviating / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:  # the export's layout
        con.execute(
            "copy (select * exclude (deliveries), deliveries as count_deliveries, "
            "null::varchar as feeds_marts from raw.edume_contract_deviations) "
            f"to '{quality / 'contract_deviations.parquet'}'"
        )
    with warehouse_lock(warehouse):
        done = _cli(deviating, "--format", "json", "--strict")
    assert done.returncode == 1, done.stderr
    assert len(json.loads(done.stdout)) == 7


def test_nothing_to_read_is_a_clear_error(tmp_path: Path) -> None:
    done = _cli(tmp_path)
    assert done.returncode == 2
    assert "materialize" in done.stderr
